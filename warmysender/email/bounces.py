"""Recognising returned mail: delivery status notifications (RFC 3464 `message/delivery-status`),
the non-standard notices many servers still send, and spam complaints (RFC 5965 feedback
reports). Pure: a parsed message in, a `Bounce` or `Complaint` (or None) out.

Classification: an enhanced status 5.x.x is hard (the address will never take mail), 4.x.x soft
(try again later), except the 5.x.x codes that describe a temporary state of a real mailbox —
mailbox full (5.2.2) and message too large (5.3.4) — which are soft. Without a status code the
diagnostic text decides; with nothing to go on, flufl.bounce's verdict (permanent or temporary)
does.
"""

from __future__ import annotations

import email.message
import logging
import re
from dataclasses import dataclass
from email.utils import getaddresses, parseaddr

import flufl.bounce

log = logging.getLogger(__name__)
# flufl.bounce logs every detector it tries at INFO: noise in a worker's log.
logging.getLogger("flufl.bounce").setLevel(logging.WARNING)

HARD = "hard"
SOFT = "soft"

ACTION_HEADER = "X-WarmySender-Action"
_ACTION_RE = re.compile(
    r"^X-WarmySender-Action:\s*([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})",
    re.IGNORECASE | re.MULTILINE,
)
_MESSAGE_ID_RE = re.compile(r"^Message-ID:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
_STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_SMTP_CODE_RE = re.compile(r"(?<![\d.])([45]\d\d)(?:[ :-])")
_EMAIL_RE = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")

# Enhanced status codes under class 5 that still describe a mailbox that exists.
_SOFT_PERMANENT = {"5.2.2": "mailbox full", "5.3.4": "message too large"}
_SOFT_PHRASES = (
    "mailbox full",
    "mailbox is full",
    "over quota",
    "quota exceeded",
    "exceeded storage",
    "insufficient storage",
    "try again later",
    "temporarily",
    "greylist",
)
_HARD_PHRASES = (
    "user unknown",
    "unknown user",
    "no such user",
    "does not exist",
    "doesn't exist",
    "mailbox unavailable",
    "address rejected",
    "recipient rejected",
    "invalid recipient",
    "no mailbox",
    "account has been disabled",
    "account is disabled",
    "not found",
    "host not found",
    "domain not found",
)
_NDR_SENDERS = ("mailer-daemon", "postmaster", "mail delivery subsystem", "mail delivery system")
_NDR_SUBJECTS = (
    "undeliverable",
    "undelivered mail",
    "delivery status notification",
    "mail delivery failed",
    "delivery failure",
    "failure notice",
    "returned mail",
    "delivery has failed",
    "could not be delivered",
    "message not delivered",
    "unzustellbar",
    "non remis",
    "onbestelbaar",
    "no se puede entregar",
)


@dataclass(frozen=True)
class Bounce:
    bounce_type: str  # "hard" or "soft"
    reason: str
    recipient: str  # the address that bounced, lower-cased ("" when the notice does not say)
    status: str  # enhanced status code, e.g. "5.1.1" ("" when none was given)
    original_message_id: str  # "<...>" of the message that bounced, when the notice has it
    action_id: str  # our X-WarmySender-Action of that message, when the notice has it


@dataclass(frozen=True)
class Complaint:
    recipient: str
    feedback_type: str
    original_message_id: str
    action_id: str


def parse_complaint(message: email.message.Message) -> Complaint | None:
    """An RFC 5965 abuse report (Yahoo, Outlook.com and others send these through their
    feedback loops)."""
    if not _is_report(message, "feedback-report"):
        return None
    feedback_type, recipient = "abuse", ""
    for part in message.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        fields = _report_fields(part)
        feedback_type = fields.get("feedback-type", feedback_type).strip().lower()
        recipient = _address(fields.get("original-rcpt-to", ""))
    message_id, action_id = _original_ids(message)
    if not recipient:
        recipient = _original_header(message, "To")
    return Complaint(recipient, feedback_type, message_id, action_id)


def parse_bounce(message: email.message.Message) -> Bounce | None:
    """The bounce this message reports, or None when it is not a delivery failure notice."""
    if _is_report(message, "delivery-status"):
        bounce = _from_dsn(message)
        if bounce is not None:
            return bounce
    if not _looks_like_ndr(message):
        return None
    return _from_free_text(message)


def _is_report(message: email.message.Message, report_type: str) -> bool:
    if message.get_content_type() == "multipart/report":
        return (message.get_param("report-type") or "").lower() == report_type  # type: ignore[union-attr]
    # Some gateways wrap the report one level down.
    return any(part.get_content_type() == f"message/{report_type}" for part in message.walk())


def _from_dsn(message: email.message.Message) -> Bounce | None:
    recipients: list[dict[str, str]] = []
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        # The first block describes the reporting server; the others one recipient each.
        for block in blocks[1:] if len(blocks) > 1 else blocks:
            if not isinstance(block, email.message.Message):
                continue
            fields = {k.lower(): str(v) for k, v in block.items()}
            if "final-recipient" in fields or "original-recipient" in fields:
                recipients.append(fields)
    failed = [f for f in recipients if f.get("action", "failed").strip().lower() == "failed"]
    if not (failed or recipients):
        return None
    chosen = (failed or recipients)[0]
    recipient = _address(chosen.get("final-recipient") or chosen.get("original-recipient", ""))
    diagnostic = _one_line(chosen.get("diagnostic-code", ""))
    status = _status(chosen.get("status", "")) or _status(diagnostic)
    action = chosen.get("action", "failed").strip().lower()
    bounce_type, reason = _classify(status, diagnostic, permanent=action == "failed")
    if action == "delayed":
        bounce_type, reason = SOFT, f"delayed: {reason}"
    message_id, action_id = _original_ids(message)
    return Bounce(bounce_type, reason, recipient, status, message_id, action_id)


def _from_free_text(message: email.message.Message) -> Bounce | None:
    text = _all_text(message)
    temporary, permanent = _flufl_failures(message)
    recipient = next(iter(sorted(permanent or temporary)), "")
    if not recipient:
        recipient = _first_recipient_in(text, message)
    status = _status(text)
    diagnostic = _diagnostic_line(text, recipient)
    if not status and not permanent and not temporary and not diagnostic:
        return None
    bounce_type, reason = _classify(
        status, diagnostic, permanent=bool(permanent) or not temporary, smtp_text=text
    )
    message_id, action_id = _original_ids(message)
    return Bounce(bounce_type, reason, recipient, status, message_id, action_id)


def _classify(
    status: str, diagnostic: str, *, permanent: bool, smtp_text: str = ""
) -> tuple[str, str]:
    detail = diagnostic[:300]
    lowered = (diagnostic or smtp_text).lower()
    if status in _SOFT_PERMANENT:
        return SOFT, _reason(status, _SOFT_PERMANENT[status], detail)
    if status.startswith("5."):
        return HARD, _reason(status, "permanent failure", detail)
    if status.startswith("4."):
        return SOFT, _reason(status, "temporary failure", detail)
    code = _SMTP_CODE_RE.search(diagnostic or smtp_text)
    if any(p in lowered for p in ("mailbox full", "mailbox is full", "over quota", "quota")):
        return SOFT, _reason("", "mailbox full", detail)
    if code and code.group(1).startswith("5"):
        return HARD, _reason(code.group(1), "permanent failure", detail)
    if code and code.group(1).startswith("4"):
        return SOFT, _reason(code.group(1), "temporary failure", detail)
    if any(p in lowered for p in _SOFT_PHRASES):
        return SOFT, _reason("", "temporary failure", detail)
    if any(p in lowered for p in _HARD_PHRASES):
        return HARD, _reason("", "permanent failure", detail)
    return (
        (HARD, _reason("", "permanent failure", detail))
        if permanent
        else (
            SOFT,
            _reason("", "temporary failure", detail),
        )
    )


def _reason(code: str, summary: str, detail: str) -> str:
    head = f"{code} {summary}".strip()
    return f"{head}: {detail}" if detail else head


def _looks_like_ndr(message: email.message.Message) -> bool:
    sender = _h(message, "From").lower()
    subject = _h(message, "Subject").lower()
    if _h(message, "Return-Path").strip() == "<>":
        return True
    return any(s in sender for s in _NDR_SENDERS) or any(s in subject for s in _NDR_SUBJECTS)


def _flufl_failures(message: email.message.Message) -> tuple[set[str], set[str]]:
    try:
        temporary, permanent = flufl.bounce.all_failures(message)
    except Exception:  # a detector choking on odd input must not stop the sync
        log.warning("flufl.bounce failed on a notice", exc_info=True)
        return set(), set()
    return _decoded(temporary), _decoded(permanent)


def _decoded(addresses: frozenset[bytes]) -> set[str]:
    out = set()
    for raw in addresses:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        if "@" in text:
            out.add(text.strip().strip("<>").lower())
    return out


def _original_ids(message: email.message.Message) -> tuple[str, str]:
    """Message-ID and X-WarmySender-Action of the returned message: from an attached
    message/rfc822 or text/rfc822-headers part, else quoted anywhere in the notice's body."""
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner:
                original = inner[0]
                if isinstance(original, email.message.Message):
                    return (
                        _h(original, "Message-ID").strip(),
                        _h(original, ACTION_HEADER).strip().lower(),
                    )
        if ctype == "text/rfc822-headers":
            headers = _payload_text(part)
            return _search(_MESSAGE_ID_RE, headers), _search(_ACTION_RE, headers).lower()
    body = "\n".join(_payload_text(p) for p in message.walk() if not p.is_multipart())
    return _search(_MESSAGE_ID_RE, body), _search(_ACTION_RE, body).lower()


def _original_header(message: email.message.Message, name: str) -> str:
    for part in message.walk():
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], email.message.Message):
                return _address(_h(inner[0], name))
        if part.get_content_type() == "text/rfc822-headers":
            match = re.search(rf"^{name}:\s*(.+)$", _payload_text(part), re.I | re.M)
            if match:
                return _address(match.group(1))
    return ""


def _report_fields(part: email.message.Message) -> dict[str, str]:
    payload = part.get_payload()
    if isinstance(payload, list):
        fields: dict[str, str] = {}
        for block in payload:
            if isinstance(block, email.message.Message):
                fields.update({k.lower(): str(v) for k, v in block.items()})
        return fields
    text = _payload_text(part)
    return {
        k.strip().lower(): v.strip()
        for k, _, v in (line.partition(":") for line in text.splitlines())
        if v
    }


def _all_text(message: email.message.Message) -> str:
    texts = []
    for part in message.walk():
        if part.get_content_maintype() == "text" or part.get_content_type() == (
            "message/delivery-status"
        ):
            texts.append(_payload_text(part))
    return "\n".join(texts)


def _payload_text(part: email.message.Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            return payload.decode(charset, "replace")
        except LookupError:
            return payload.decode("utf-8", "replace")
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list):
        return "\n".join(str(p) for p in raw)
    return ""


def _diagnostic_line(text: str, recipient: str) -> str:
    """The most telling line of a free-text notice: one with a status or SMTP code."""
    for line in text.splitlines():
        stripped = line.strip()
        if _STATUS_RE.search(stripped) or _SMTP_CODE_RE.match(stripped + " "):
            return _one_line(stripped)
    for line in text.splitlines():
        lowered = line.lower()
        if any(p in lowered for p in _HARD_PHRASES + _SOFT_PHRASES):
            return _one_line(line.strip())
    return ""


def _first_recipient_in(text: str, message: email.message.Message) -> str:
    ours = {a.lower() for _, a in getaddresses([str(v) for v in message.get_all("To", [])])}
    for match in _EMAIL_RE.finditer(text):
        found = match.group(0).lower()
        if found not in ours and not found.startswith(("mailer-daemon@", "postmaster@")):
            return found
    return ""


def _status(text: str) -> str:
    match = _STATUS_RE.search(text or "")
    return ".".join(match.groups()) if match else ""


def _search(pattern: re.Pattern[str], text: str) -> str:
    match = pattern.search(text)
    return match.group(1) if match else ""


def _address(field: str) -> str:
    """`rfc822; Ada@Example.com` or `<ada@example.com>` → `ada@example.com`."""
    value = field.split(";", 1)[1] if ";" in field else field
    return parseaddr(value.strip())[1].lower()


def _h(message: email.message.Message, name: str) -> str:
    # compat32 hands back a Header object for raw non-ASCII values.
    value = message.get(name)
    return "" if value is None else str(value)


def _one_line(text: str) -> str:
    return " ".join(text.split())
