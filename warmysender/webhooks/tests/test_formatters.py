"""Slack and Discord URLs get their native message shapes; everything else the envelope."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from warmysender.webhooks import formatters

ENV = formatters.envelope(
    event_id="0b7c6f1e-0000-4000-8000-000000000001",
    type="reply.received",
    occurred_at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
    workspace_id=7,
    data={
        "prospectId": "p1",
        "prospectEmail": "ada@example.com",
        "subject": "Re: <b>pricing</b> & terms @everyone",
    },
)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://hooks.slack.com/services/T0/B0/XYZ", "slack"),
        ("https://discord.com/api/webhooks/1/abc", "discord"),
        ("https://discordapp.com/api/webhooks/1/abc", "discord"),
        ("https://discord.com/channels/1", "json"),
        ("https://hooks.slack.com.evil.example/x", "json"),
        ("https://n8n.example.com/webhook/abc", "json"),
    ],
)
def test_destination_is_chosen_by_host(url: str, kind: str) -> None:
    assert formatters.destination(url) == kind


def test_slack_gets_text_and_blocks_with_mrkdwn_escaped() -> None:
    body = json.loads(formatters.body_for("https://hooks.slack.com/services/T/B/X", ENV))
    assert set(body) == {"text", "blocks"}
    assert body["text"].startswith("New reply: ada@example.com replied")
    assert body["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "New reply"},
    }
    section = body["blocks"][1]["text"]["text"]
    assert "&lt;b&gt;pricing&lt;/b&gt; &amp; terms" in section and "<b>" not in section
    assert ENV["id"] in body["blocks"][-1]["elements"][0]["text"]


def test_discord_gets_content_and_an_embed_without_mentions() -> None:
    body = json.loads(formatters.body_for("https://discord.com/api/webhooks/1/abc", ENV))
    assert body["content"].startswith("ada@example.com replied: Re: <b>pricing</b>")
    assert body["allowed_mentions"] == {"parse": []}
    [embed] = body["embeds"]
    assert embed["title"] == "New reply"
    assert embed["color"] == formatters.DISCORD_BLUE
    assert embed["timestamp"] == "2026-12-01T09:00:00Z"
    assert {"name": "prospectEmail", "value": "ada@example.com", "inline": True} in embed["fields"]


def test_other_urls_get_the_envelope_byte_for_byte() -> None:
    body = formatters.body_for("https://example.com/hook", ENV)
    assert json.loads(body) == ENV
    assert b" " not in body.split(b'"subject"')[0]  # compact JSON
