"""Out-of-office detection: the corpus in English, Dutch, German, French and Spanish, the
headers alone, and replies written by people that must not be taken for one."""

from __future__ import annotations

import email
import email.policy

import pytest

from warmysender.email.autoreply import auto_reply_reason, fold
from warmysender.email.tests.corpus import AUTOREPLIES, autoreply
from warmysender.inbox.parsing import parse_message

EXPECTED = {
    "en_outlook": "header X-Auto-Response-Suppress: All",
    "nl": "subject: afwezig",
    "de": "subject: abwesenheitsnotiz",
    "fr": "subject: reponse automatique",
    "es": "subject: respuesta automatica",
    "gmail_vacation_header_only": "header Auto-Submitted: auto-replied",
    "precedence_auto_reply": "header Precedence: auto_reply",
}


def raw(name: str) -> bytes:
    return autoreply(
        name,
        sender="prospect@example.com",
        to="sales@acme.com",
        subject="Hello there",
        message_id="<m1@acme.com>",
        token="t1",
    )


def test_the_corpus_covers_five_languages_and_the_headers() -> None:
    assert set(AUTOREPLIES) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_out_of_office_is_recognised_with_its_reason(name: str) -> None:
    parsed = parse_message(raw(name))
    assert parsed.kind == "auto_reply"
    assert parsed.classified_by == EXPECTED[name]
    assert parsed.thread_ids == ("<m1@acme.com>",)


def message(subject: str, body: str, **headers: str) -> email.message.Message:
    lines = ["From: p@example.com", "To: s@acme.com", f"Subject: {subject}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return email.message_from_string("\n".join(lines) + "\n\n" + body)


@pytest.mark.parametrize(
    ("subject", "body", "reason"),
    [
        ("Re: Hello", "Ik ben momenteel afwezig tot maandag.", "body: ik ben momenteel afwezig"),
        ("Re: Hello", "Ich bin derzeit nicht im Büro.", "body: ich bin derzeit nicht im buro"),
        ("Re: Hello", "Je serai absente jusqu'au 3.", "body: je serai absente"),
        ("Re: Hello", "Estaré fuera de la oficina.", "body: estare fuera de la oficina"),
        ("Re: Hello", "I'm currently out of the office.", "body: i'm currently out of the office"),
        ("Out of Office: Hello", "", "subject: out of office"),
        ("Außer Haus", "", "subject: ausser haus"),
    ],
)
def test_phrases_in_every_language(subject: str, body: str, reason: str) -> None:
    assert auto_reply_reason(message(subject, body), body=body) == reason


@pytest.mark.parametrize(
    ("subject", "body", "headers"),
    [
        ("Re: Hello", "Sounds good, let's talk Thursday.", {}),
        ("Re: Hello", "I'll be on vacation next week, but yes, interested!", {}),
        ("Re: Hello", "Nee, geen interesse.", {"Auto_Submitted": "no"}),
        ("Re: Hello", "Ja gerne, rufen Sie mich an.", {"Precedence": "bulk"}),
        ("Re: Presente", "Claro que sí.", {}),  # "ausente" must not match inside a word
        ("Re: Hello", "Merci, je suis intéressée.", {}),
    ],
)
def test_replies_written_by_people_are_not_auto_replies(
    subject: str, body: str, headers: dict[str, str]
) -> None:
    assert auto_reply_reason(message(subject, body, **headers), body=body) is None


def test_fold_removes_accents_and_case() -> None:
    assert fold("Réponse  AUTOMATIQUE — Straße") == "reponse automatique — strasse"


def test_a_reply_in_a_body_only_html_message_is_read_from_its_text() -> None:
    body = "<p>Estoy fuera de la oficina.</p>"
    raw_html = (
        "From: p@example.com\r\nSubject: Re: Hola\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        + body
    ).encode()
    assert parse_message(raw_html).kind == "auto_reply"
    assert email.message_from_bytes(raw_html, policy=email.policy.compat32) is not None
