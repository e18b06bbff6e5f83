"""The fixture corpus of returned mail and automatic replies (fixtures/bounces, fixtures/autoreply):
real-world shapes with @@PLACEHOLDERS@@ filled in per test, so the same files serve the parser
tests and the end-to-end tests against Dovecot."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
BOUNCES = sorted(p.stem for p in (FIXTURES / "bounces").glob("*.eml"))
AUTOREPLIES = sorted(p.stem for p in (FIXTURES / "autoreply").glob("*.eml"))


def fixture(kind: str, name: str, **values: str) -> bytes:
    text = (FIXTURES / kind / f"{name}.eml").read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@@{key.upper()}@@", value)
    assert "@@" not in text, f"unfilled placeholder in {kind}/{name}.eml"
    # Mail travels with CRLF line ends; the files keep LF to stay readable.
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def bounce(name: str, *, sender: str, recipient: str, message_id: str, action_id: str) -> bytes:
    values = {"sender": sender, "recipient": recipient, "message_id": message_id}
    values["action_id"] = action_id
    return fixture("bounces", name, **values)


def autoreply(
    name: str, *, sender: str, to: str, subject: str, message_id: str, token: str
) -> bytes:
    return fixture(
        "autoreply",
        name,
        **{"from": sender, "to": to, "subject": subject, "message_id": message_id, "token": token},
    )
