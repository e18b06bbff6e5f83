"""What a delivery sends: the signed JSON envelope, or Slack's and Discord's native messages.

Every event uses one envelope, `{"id", "type", "timestamp", "workspaceId", "data"}` (D12). URLs
of Slack incoming webhooks (`hooks.slack.com`) get a Block Kit message and Discord webhooks
(`discord.com/api/webhooks`, `discordapp.com`) an embed, because those services reject or
mangle anything else; every other URL receives the envelope itself.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

# The events an endpoint can subscribe to (`*` means all of these). Other outbox events
# (`mailbox.created`, `campaign.error`, …) are internal and never leave the system.
EVENT_TYPES = (
    "reply.received",
    "email.bounced",
    "email.unsubscribed",
    "email.opened",
    "email.clicked",
    "prospect.suppressed",
    "limit.hit",
    "linkedin.reply_received",
    "linkedin.invite_accepted",
    "linkedin.message_sent",
    "linkedin.account_disconnected",
)
# Sent by the Test button only, to the one endpoint tested, whatever it subscribes to.
TEST_EVENT = "webhook.test"

SLACK_HOSTS = ("hooks.slack.com",)
DISCORD_HOSTS = (
    "discord.com",
    "discordapp.com",
    "ptb.discord.com",
    "canary.discord.com",
)
DISCORD_BLUE, DISCORD_GREEN, DISCORD_RED, DISCORD_GREY = 3447003, 3066993, 15158332, 9807270


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def envelope(
    *, event_id: str, type: str, occurred_at: datetime, workspace_id: object, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": type,
        "timestamp": iso(occurred_at),
        "workspaceId": str(workspace_id),
        "data": data,
    }


def destination(url: str) -> str:
    """`slack`, `discord` or `json`, by the URL's host (and path, for Discord)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host in SLACK_HOSTS:
        return "slack"
    if host in DISCORD_HOSTS and parts.path.startswith("/api/webhooks"):
        return "discord"
    return "json"


def body_for(url: str, env: dict[str, Any]) -> bytes:
    """The bytes to POST (and sign) for this envelope at this URL."""
    kind = destination(url)
    if kind == "slack":
        message: dict[str, Any] = slack_message(env)
    elif kind == "discord":
        message = discord_message(env)
    else:
        message = env
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


# --- human summaries, shared by Slack and Discord ----------------------------------------------


def _who(data: dict[str, Any]) -> str:
    return str(
        data.get("prospectName") or data.get("prospectEmail") or data.get("email") or "A prospect"
    )


def summary(env: dict[str, Any]) -> tuple[str, str]:
    """(title, one-line text) for an event."""
    data: dict[str, Any] = env.get("data") or {}
    kind = env["type"]
    who = _who(data)
    if kind == "reply.received":
        return "New reply", f"{who} replied: {data.get('subject', '')}".strip()
    if kind == "email.bounced":
        bounce = data.get("bounceType", "hard")
        return "Email bounced", f"{bounce.title()} bounce for {who}: {data.get('bounceReason', '')}"
    if kind == "email.unsubscribed":
        return "Unsubscribed", f"{who} unsubscribed"
    if kind == "email.opened":
        return "Email opened", f"{who} opened step {data.get('stepIndex', '?')}"
    if kind == "email.clicked":
        return "Link clicked", f"{who} clicked {data.get('url', 'a link')}"
    if kind == "prospect.suppressed":
        return "Address suppressed", f"{who} was suppressed ({data.get('reason', 'manual')})"
    if kind == "limit.hit":
        return (
            "Daily limit reached",
            f"{data.get('limitType', 'limit')}: {data.get('currentValue', '?')} of "
            f"{data.get('limitValue', '?')}",
        )
    if kind == "linkedin.reply_received":
        return f"New LinkedIn reply: {who}", str(data.get("messageText", ""))
    if kind == "linkedin.invite_accepted":
        return "New connection accepted", f"{who} accepted the connection request"
    if kind == "linkedin.account_disconnected":
        return "LinkedIn account disconnected", "A LinkedIn account needs to be reconnected"
    if kind == TEST_EVENT:
        return "Test event", str(data.get("message", "Webhook test from WarmySender"))
    return kind, kind


def _facts(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (key, str(value))
        for key, value in data.items()
        if isinstance(value, str | int | float | bool) and value != ""
    ][:10]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn treats these three as control characters (links, mentions).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(env: dict[str, Any]) -> dict[str, Any]:
    title, text = summary(env)
    facts = _facts(env.get("data") or {})
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(title, 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(_slack_escape(text), 400)}},
    ]
    if facts:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": _cut(f"*{k}*\n{_slack_escape(v)}", 2000)}
                    for k, v in facts
                ],
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"{env['type']} · {env['timestamp']} · {env['id']}"}
            ],
        }
    )
    return {"text": _cut(f"{title}: {text}", 3000), "blocks": blocks}


def discord_message(env: dict[str, Any]) -> dict[str, Any]:
    title, text = summary(env)
    kind = env["type"]
    color = {
        "reply.received": DISCORD_BLUE,
        "linkedin.reply_received": DISCORD_BLUE,
        "linkedin.invite_accepted": DISCORD_GREEN,
        "linkedin.account_disconnected": DISCORD_RED,
        "email.bounced": DISCORD_RED,
        "limit.hit": DISCORD_RED,
    }.get(kind, DISCORD_GREY)
    embed = {
        "title": _cut(title, 256),
        "description": _cut(text, 4000),
        "color": color,
        "timestamp": env["timestamp"],
        "fields": [
            {"name": _cut(k, 256), "value": _cut(v, 1024), "inline": True}
            for k, v in _facts(env.get("data") or {})
        ],
        "footer": {"text": f"WarmySender · {kind}"},
    }
    # Prospect-written text must never ping a channel (`@everyone` in a reply).
    return {"content": _cut(text, 2000), "embeds": [embed], "allowed_mentions": {"parse": []}}
