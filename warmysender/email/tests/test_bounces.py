"""Bounce and complaint parsing over the fixture corpus (Postfix, Exchange, Gmail, Yahoo, Exim
styles and a feedback-loop report), plus the classification rules and malformed input."""

from __future__ import annotations

import email
import email.policy
from email.message import Message

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmysender.email import bounces
from warmysender.email.tests.corpus import BOUNCES, bounce
from warmysender.inbox.parsing import parse_message

SENDER = "sales@acme.com"
RECIPIENT = "ada@example.com"
MESSAGE_ID = "<176458.1.abc@acme.com>"
ACTION_ID = "0b7c1a52-3f7e-4a57-9d0e-1c2b3a4d5e6f"


def parsed(name: str) -> Message:
    raw = bounce(
        name, sender=SENDER, recipient=RECIPIENT, message_id=MESSAGE_ID, action_id=ACTION_ID
    )
    return email.message_from_bytes(raw, policy=email.policy.compat32)


# name -> (type, status, reason fragment, action id expected in the notice)
EXPECTED = {
    "postfix_user_unknown": ("hard", "5.1.1", "user unknown in virtual mailbox table", True),
    "postfix_delayed": ("soft", "4.7.1", "greylisted", False),
    "exchange_recipient_not_found": ("hard", "5.1.10", "recipientnotfound", True),
    "gmail_mailbox_full": ("soft", "5.2.2", "mailbox full", True),
    "yahoo_failure_notice": ("hard", "", "doesn't have a yahoo.com account", True),
    "exim_nonstandard": ("hard", "", "no such user", True),
}


def test_the_corpus_has_every_style() -> None:
    assert set(EXPECTED) | {"yahoo_complaint_arf"} == set(BOUNCES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_it_classifies_and_ties_each_notice_to_the_original(name: str) -> None:
    kind, status, fragment, has_action = EXPECTED[name]
    found = bounces.parse_bounce(parsed(name))
    assert found is not None
    assert found.bounce_type == kind
    assert found.status == status
    assert fragment in found.reason.lower()
    assert found.recipient == RECIPIENT
    assert found.original_message_id == MESSAGE_ID
    assert found.action_id == (ACTION_ID if has_action else "")


def test_a_feedback_report_is_a_complaint_not_a_bounce() -> None:
    message = parsed("yahoo_complaint_arf")
    complaint = bounces.parse_complaint(message)
    assert complaint == bounces.Complaint(RECIPIENT, "abuse", MESSAGE_ID, ACTION_ID)
    for name in EXPECTED:
        assert bounces.parse_complaint(parsed(name)) is None


def plain(
    subject: str, body: str, sender: str = "Ada <ada@example.com>", **headers: str
) -> Message:
    lines = [f"From: {sender}", "To: sales@acme.com", f"Subject: {subject}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return email.message_from_string("\n".join(lines) + "\n\n" + body)


def test_a_persons_reply_is_no_bounce_even_when_it_talks_about_failures() -> None:
    reply = plain("Re: Hello", "Delivery failed last week on our side, 550 units short. Call me?")
    assert bounces.parse_bounce(reply) is None
    assert bounces.parse_complaint(reply) is None


@pytest.mark.parametrize(
    ("diagnostic", "expected"),
    [
        ("550 5.1.1 user unknown", ("hard", "5.1.1")),
        ("552 5.2.2 mailbox full", ("soft", "5.2.2")),
        ("552 5.3.4 message size exceeds fixed limit", ("soft", "5.3.4")),
        ("421 4.4.2 connection timed out", ("soft", "4.4.2")),
        ("550 5.7.1 rejected by policy", ("hard", "5.7.1")),
        ("452 insufficient system storage", ("soft", "")),
        ("550 mailbox unavailable", ("hard", "")),
        ("mailbox is full, quota exceeded", ("soft", "")),
    ],
)
def test_non_standard_notices_are_classified_from_their_text(
    diagnostic: str, expected: tuple[str, str]
) -> None:
    notice = plain(
        "Returned mail: see transcript for details",
        f"The original message was received.\n\n<ada@example.com>\n    {diagnostic}\n",
        sender="Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>",
    )
    found = bounces.parse_bounce(notice)
    assert found is not None
    assert (found.bounce_type, found.status) == expected
    assert found.recipient == "ada@example.com"


def test_a_notice_without_any_failure_detail_is_not_a_bounce() -> None:
    notice = plain("Undeliverable", "", sender="postmaster@example.org")
    assert bounces.parse_bounce(notice) is None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"garbage without headers",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n"
        b"Content-Type: message/delivery-status\r\n\r\n\r\n--x--\r\n",
        b"From: MAILER-DAEMON@x\r\nSubject: failure notice\r\nContent-Type: multipart/mixed;"
        b' boundary="unterminated\r\n\r\n--unterminated\r\n\xff\xfe\x00',
    ],
)
def test_malformed_input_never_raises(raw: bytes) -> None:
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    bounces.parse_bounce(message)
    bounces.parse_complaint(message)


HEADERS = st.sampled_from(
    [
        b"From: MAILER-DAEMON@x\r\n",
        b"Subject: Undeliverable: hi\r\n",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n",
        b"Content-Type: multipart/report; report-type=feedback-report; boundary=b\r\n",
        b"Auto-Submitted: auto-replied\r\n",
        b"Message-ID: <a@b>\r\n",
        b"In-Reply-To: <a@b>\r\n",
    ]
)
PARTS = st.sampled_from(
    [
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; x@y\r\n",
        b"--b\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <m@n>\r\n",
        b"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nX-WarmySender-Action: nope\r\n",
        b"--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n",
        b"--b--\r\n",
        b"550 5.1.1 user unknown\r\n",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    headers=st.lists(HEADERS, max_size=6),
    parts=st.lists(PARTS, max_size=6),
    noise=st.binary(max_size=200),
)
def test_any_mix_of_report_pieces_parses_without_raising(
    headers: list[bytes], parts: list[bytes], noise: bytes
) -> None:
    raw = b"".join(headers) + b"\r\n" + b"".join(parts) + noise
    parsed = parse_message(raw)
    assert parsed.kind in {"reply", "auto_reply", "bounce", "complaint"}
    assert parsed.dedup_key
    if parsed.bounce is not None:
        assert parsed.bounce.bounce_type in {"hard", "soft"}
