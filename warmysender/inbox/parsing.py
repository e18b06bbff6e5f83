"""Reading one raw inbound message into what the inbox needs: addresses, threading ids, bodies,
and its kind (bounce, complaint, auto-reply or a person's reply). Pure: bytes in, a dataclass out.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import hashlib
import re
from dataclasses import dataclass
from email.utils import getaddresses, parseaddr

from warmysender.email import autoreply, bounces
from warmysender.email.sanitize import html_to_text, sanitize_html
from warmysender.inbox.models import InboundKind

_ID_RE = re.compile(r"<[^<>\s]+>")
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_BODY = 200_000  # characters kept of each body; enough for any human reply


@dataclass(frozen=True)
class ParsedMessage:
    dedup_key: str
    message_id: str
    in_reply_to: str
    references: str
    thread_ids: tuple[str, ...]  # In-Reply-To first, then References newest first
    action_header: str  # X-WarmySender-Action, when a client kept it
    from_email: str
    from_name: str
    to_email: str
    subject: str
    text_body: str
    html_body: str
    kind: str
    classified_by: str
    bounce: bounces.Bounce | None
    complaint: bounces.Complaint | None


def parse_message(raw: bytes) -> ParsedMessage:
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    message_id = _header(message, "Message-ID")
    in_reply_to = _header(message, "In-Reply-To")
    references = _header(message, "References")
    thread_ids = tuple(
        dict.fromkeys(_ID_RE.findall(in_reply_to) + _ID_RE.findall(references)[::-1])
    )
    from_name, from_email = parseaddr(_header(message, "From"))
    to = getaddresses([_header(message, "To")])
    text, html = _bodies(message)
    action_header = _header(message, bounces.ACTION_HEADER).lower()
    complaint = bounces.parse_complaint(message)
    bounce = None if complaint else bounces.parse_bounce(message)
    if complaint is not None:
        kind, why = InboundKind.COMPLAINT, f"feedback report ({complaint.feedback_type})"
    elif bounce is not None:
        kind, why = InboundKind.BOUNCE, f"{bounce.bounce_type} bounce"
    else:
        auto = autoreply.auto_reply_reason(message, body=text)
        kind, why = (InboundKind.AUTO_REPLY, auto) if auto else (InboundKind.REPLY, "")
    return ParsedMessage(
        dedup_key=dedup_key_of(message_id, raw),
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        thread_ids=thread_ids,
        action_header=action_header if _UUID_RE.match(action_header) else "",
        from_email=from_email.strip().lower(),
        from_name=_decoded(from_name)[:200],
        to_email=(to[0][1].strip().lower() if to else "")[:254],
        subject=_decoded(_header(message, "Subject")),
        text_body=text[:MAX_BODY],
        html_body=html[:MAX_BODY],
        kind=kind,
        classified_by=why[:200],
        bounce=bounce,
        complaint=complaint,
    )


def dedup_key_of(message_id: str, raw: bytes) -> str:
    """The normalised Message-ID; a hash of the whole message when it has none (or an absurd
    one), so identical copies in two folders still collide."""
    found = _ID_RE.search(message_id)
    normalized = (found.group(0) if found else message_id.strip()).lower()
    if normalized and len(normalized) <= 290:
        return normalized
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _header(message: email.message.Message, name: str) -> str:
    value = message.get(name)
    return " ".join(str(value).split()) if value is not None else ""


def _decoded(value: str) -> str:
    from email.header import decode_header, make_header

    try:
        return str(make_header(decode_header(value)))
    except (LookupError, ValueError, UnicodeDecodeError):
        return value


def _bodies(message: email.message.Message) -> tuple[str, str]:
    """(text, sanitised html) of the message's own content; attached messages are not read."""
    text, html = "", ""
    for part in _own_parts(message):
        ctype = part.get_content_type()
        if part.get_content_disposition() == "attachment":
            continue
        if ctype == "text/plain" and not text:
            text = _part_text(part)
        elif ctype == "text/html" and not html:
            html = sanitize_html(_part_text(part))
    if not text and html:
        text = html_to_text(html)
    return text.strip(), html


def _own_parts(message: email.message.Message) -> list[email.message.Message]:
    if not message.is_multipart():
        return [message]
    parts: list[email.message.Message] = []
    payload = message.get_payload()
    assert isinstance(payload, list)
    for part in payload:
        if not isinstance(part, email.message.Message) or part.get_content_maintype() == "message":
            continue
        parts.extend(_own_parts(part) if part.is_multipart() else [part])
    return parts


def _part_text(part: email.message.Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")
