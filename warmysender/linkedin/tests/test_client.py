"""UnipileClient against the bundled simulator over real loopback HTTP: every answer is a typed
result or a Failure the engine can act on, retries happen only where they cannot act twice."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from warmysender.linkedin.client import (
    INVITATION_NOTE_MAX_CHARS,
    AccountConnected,
    ChatStarted,
    CheckpointRequired,
    CookieLogin,
    CredentialsLogin,
    Done,
    Failure,
    HostedAuthLink,
    InvitationSent,
    MessageSent,
    Page,
    Proxy,
    UnipileClient,
    base_url_for,
    failure_from_response,
    fetch_all,
)
from warmysender.linkedin.simulator import SimulatorServer
from warmysender.linkedin.simulator.errors import STATUS_BY_SLUG


class Sleeps(list[float]):
    """Records the client's back-off instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(unipile_sim: SimulatorServer, sleeps: Sleeps) -> Iterator[UnipileClient]:
    with UnipileClient(unipile_sim.base_url, unipile_sim.api_key, sleep=sleeps) as c:
        yield c


@pytest.fixture
def account(unipile_sim: SimulatorServer) -> str:
    return str(unipile_sim.add_account(username="ann.lee@example.com")["id"])


def ops(sim: SimulatorServer, operation: str) -> list[dict[str, Any]]:
    return [r for r in sim.requests() if r["operation"] == operation]


# --- base URL and accounts --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "base"),
    [
        ("api13.unipile.com:14376", "https://api13.unipile.com:14376/api/v1"),
        ("https://api13.unipile.com:14376/", "https://api13.unipile.com:14376/api/v1"),
        ("https://api13.unipile.com:14376/api/v1", "https://api13.unipile.com:14376/api/v1"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765/api/v1"),
    ],
)
def test_it_builds_the_v1_base_url_from_the_dsn(dsn: str, base: str) -> None:
    assert base_url_for(dsn) == base


def test_it_refuses_an_empty_dsn_or_key() -> None:
    with pytest.raises(ValueError, match="DSN is empty"):
        base_url_for("  ")
    with pytest.raises(ValueError, match="API key is empty"):
        UnipileClient("api1.unipile.com:1", "")


def test_it_reads_an_account_and_its_status(
    client: UnipileClient, unipile_sim: SimulatorServer
) -> None:
    made = unipile_sim.add_account(username="bob+sales@example.com", name="Bob Stone")
    account = client.get_account(made["id"])
    assert not isinstance(account, Failure)
    assert (account.id, account.name, account.type, account.status) == (
        made["id"],
        "Bob Stone",
        "LINKEDIN",
        "OK",
    )
    assert account.provider_id.startswith("ACoAA")
    assert account.premium_features == ("premium", "sales_navigator")
    assert account.created_at is not None and account.created_at.tzinfo is not None
    unipile_sim.set_status(made["id"], "STOPPED")
    assert client.account_status(made["id"]) == "STOPPED"


def test_it_pages_through_accounts_with_cursors(
    client: UnipileClient, unipile_sim: SimulatorServer
) -> None:
    ids = [unipile_sim.add_account(username=f"u{i}@example.com")["id"] for i in range(5)]
    first = client.list_accounts(limit=2)
    assert isinstance(first, Page) and len(first.items) == 2 and first.cursor
    everything = fetch_all(lambda cursor: client.list_accounts(cursor=cursor, limit=2))
    assert not isinstance(everything, Failure)
    assert [a.id for a in everything] == ids
    assert len(ops(unipile_sim, "list_accounts")) == 1 + 3


def test_a_failure_on_a_later_page_answers_the_failure_not_a_partial_list(
    client: UnipileClient, unipile_sim: SimulatorServer
) -> None:
    for i in range(3):
        unipile_sim.add_account(username=f"u{i}@example.com")
    first = client.list_accounts(limit=2)
    assert isinstance(first, Page)
    unipile_sim.fault("invalid_parameters", operation="list_accounts", times=1)
    pages = iter([first])
    result = fetch_all(
        lambda cursor: next(pages) if cursor is None else client.list_accounts(cursor=cursor)
    )
    assert isinstance(result, Failure) and result.kind == "invalid_request"


def test_own_profile_tells_the_account_type(
    client: UnipileClient, unipile_sim: SimulatorServer
) -> None:
    kinds = {}
    for tag in ("free", "premium", "sales", "recruiter"):
        account_id = unipile_sim.add_account(username=f"x+{tag}@example.com")["id"]
        me = client.get_own_profile(account_id)
        assert not isinstance(me, Failure)
        kinds[tag] = (me.premium, me.sales_navigator, me.recruiter)
    assert kinds == {
        "free": (False, False, False),
        "premium": (True, False, False),
        "sales": (True, True, False),
        "recruiter": (True, False, True),
    }


# --- error mapping ----------------------------------------------------------------------------

EXPECTED_KINDS = {
    "cannot_resend_yet": "cannot_resend_yet",
    "cannot_resend_within_24hrs": "cannot_resend_yet",
    "limit_exceeded": "limit_reached",
    "insufficient_credits": "limit_reached",
    "too_many_requests": "rate_limited",
    "disconnected_account": "credentials",
    "expired_credentials": "credentials",
    "invalid_credentials": "credentials",
    "multiple_sessions": "credentials",
    "checkpoint_error": "credentials",
    "wrong_account": "credentials",
    "account_mismatch": "credentials",
    "invalid_authorization": "credentials",
    "account_restricted": "restricted",
    "missing_credentials": "api_key",
    "already_connected": "already_done",
    "already_invited_recently": "already_done",
    "action_already_performed": "already_done",
    "cannot_invite_attendee": "recipient_unavailable",
    "user_unreachable": "recipient_unavailable",
    "blocked_recipient": "recipient_unavailable",
    "no_connection_with_recipient": "recipient_unavailable",
    "not_allowed_inmail": "recipient_unavailable",
    "invalid_recipient": "recipient_unavailable",
    "comments_disabled": "recipient_unavailable",
    "feature_not_subscribed": "forbidden",
    "subscription_required": "forbidden",
    "resource_not_found": "not_found",
    "invalid_parameters": "invalid_request",
    "too_many_characters": "invalid_request",
    "missing_parameters": "invalid_request",
    "feature_not_implemented": "not_supported",
    "unexpected_error": "server_error",
    "provider_error": "server_error",
    "service_unavailable": "server_error",
    "network_down": "server_error",
    "no_client_session": "server_error",
    "request_timeout": "server_error",
}


@pytest.mark.parametrize(("slug", "kind"), sorted(EXPECTED_KINDS.items()))
def test_each_unipile_error_type_becomes_a_typed_failure(
    client: UnipileClient, unipile_sim: SimulatorServer, account: str, slug: str, kind: str
) -> None:
    unipile_sim.fault(slug, operation="send_invitation", account_id=account)
    result = client.send_invitation(account, "jane-doe")
    assert isinstance(result, Failure)
    assert (result.kind, result.status, result.error_type) == (kind, STATUS_BY_SLUG[slug], slug)
    assert result.detail
    assert not result.outcome_unknown


def test_every_error_type_the_simulator_knows_has_a_kind(
    client: UnipileClient, unipile_sim: SimulatorServer, account: str
) -> None:
    unknown = []
    for slug in STATUS_BY_SLUG:
        unipile_sim.fault(slug, operation="send_invitation")
        result = client.send_invitation(account, "jane-doe")
        assert isinstance(result, Failure), slug
        if result.kind == "unknown":
            unknown.append(slug)
    assert unknown == []


def test_a_404_on_the_account_is_a_strike_kind_and_passes_when_cleared(
    client: UnipileClient, unipile_sim: SimulatorServer, account: str
) -> None:
    unipile_sim.not_found(account, times=2)
    first, second, third = (client.account_status(account) for _ in range(3))
    assert isinstance(first, Failure) and first.kind == "account_not_found" and first.status == 404
    assert isinstance(second, Failure) and second.kind == "account_not_found"
    assert third == "OK"
    # A 404 is an answer, not a fault: it is never retried.
    assert len(ops(unipile_sim, "get_account")) == 3


def test_a_404_on_a_profile_is_not_an_account_strike(
    client: UnipileClient, unipile_sim: SimulatorServer, account: str
) -> None:
    unipile_sim.fault("resource_not_found", operation="get_profile")
    result = client.get_profile(account, "gone-person")
    assert isinstance(result, Failure) and result.kind == "not_found"


def test_an_unknown_account_answers_account_not_found(client: UnipileClient) -> None:
    result = client.get_account("no-such-account")
    assert isinstance(result, Failure) and result.kind == "account_not_found"


def test_a_wrong_api_key_is_an_installation_problem_not_an_account_one(
    unipile_sim: SimulatorServer, account: str, sleeps: Sleeps
) -> None:
    with UnipileClient(unipile_sim.base_url, "not-the-key", sleep=sleeps) as wrong:
        result = wrong.account_status(account)
    assert isinstance(result, Failure)
    assert (result.kind, result.status, result.error_type) == (
        "api_key",
        401,
        "missing_credentials",
    )
    assert sleeps == []


def test_an_expired_session_answers_credentials_and_reconnect_restores_it(
    client: UnipileClient, unipile_sim: SimulatorServer, account: str
) -> None:
    unipile_sim.expire_session(account)
    assert client.account_status(account) == "CREDENTIALS"
    refused = client.send_invitation(account, "jane-doe")
    assert isinstance(refused, Failure) and refused.kind == "credentials"
    assert refused.error_type == "disconnected_account"
    again = client.reconnect(account, CredentialsLogin("ann.lee@example.com", "s3cret"))
    assert again == AccountConnected(account)
    assert client.account_status(account) == "OK"
    assert isinstance(client.send_invitation(account, "jane-doe"), InvitationSent)


def test_a_restricted_account_answers_restricted(
    client: UnipileClient, unipile_sim: SimulatorServer, account: str
) -> None:
    unipile_sim.restrict(account)
    result = client.start_chat(account, "jane-doe", "hello")
    assert isinstance(result, Failure) and result.kind == "restricted"


def test_a_2xx_answer_that_is_not_json_is_a_failure_not_an_exception() -> None:
    class Garbage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>maintenance</html>"
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with UnipileClient(f"http://127.0.0.1:{server.server_address[1]}", "k") as c:
            result = c.get_account("a1")
    finally:
        server.shutdown()
        server.server_close()
    assert isinstance(result, Failure) and result.kind == "unknown"
    assert "not JSON" in result.detail


def test_retry_after_is_read_in_seconds_and_as_an_http_date() -> None:
    request = httpx.Request("GET", "https://x/api/v1/accounts")
    seconds = httpx.Response(429, headers={"retry-after": "7"}, request=request, json={})
    dated = httpx.Response(
        503,
        headers={
            "retry-after": "Tue, 01 Dec 2026 10:00:30 GMT",
            "date": "Tue, 01 Dec 2026 10:00:00 GMT",
        },
        request=request,
        json={"type": "errors/service_unavailable"},
    )
    assert failure_from_response(seconds).retry_after == 7.0
    assert failure_from_response(seconds).kind == "rate_limited"
    assert failure_from_response(dated).retry_after == 30.0
    assert failure_from_response(dated).kind == "server_error"


# --- retries only where safe ------------------------------------------------------------------


def test_a_get_is_retried_on_5xx_with_backoff_then_succeeds(
    client: UnipileClient, unipile_sim: SimulatorServer, account: str, sleeps: Sleeps
) -> None:
    unipile_sim.fault("service_unavailable", operation="get_account", times=2)
    assert client.account_status(account) == "OK"
    assert [r["status"] for r in ops(unipile_sim, "get_account")] == [503, 503, 200]
    assert sleeps == [0.5, 1.0]


def test_a_get_gives_up_after_its_retries_with_the_last_failure(
    client: UnipileClient, unipile_sim: SimulatorServer, account: str, sleeps: Sleeps
) -> None:
    unipile_sim.fault("provider_error", operation="list_relations", times=None)
    result = client.list_relations(account)
    assert isinstance(result, Failure) and result.kind == "server_error"
    assert len(ops(unipile_sim, "list_relations")) == 3


def test_a_429_retry_honours_retry_after(
    client: UnipileClient, unipile_sim: SimulatorServer, account: str, sleeps: Sleeps
) -> None:
    unipile_sim.fault("too_many_requests", operation="get_profile", times=1, retry_after=3)
    assert not isinstance(client.get_profile(account, "jane-doe"), Failure)
    assert sleeps == [3.0]


@pytest.mark.parametrize("slug", ["provider_error", "service_unavailable", "too_many_requests"])
def test_an_invite_post_is_never_retried(
    client: UnipileClient, unipile_sim: SimulatorServer, account: str, sleeps: Sleeps, slug: str
) -> None:
    unipile_sim.fault(slug, operation="send_invitation", times=1, retry_after=1)
    result = client.send_invitation(account, "jane-doe", note="Hi Jane")
    assert isinstance(result, Failure) and result.kind in ("server_error", "rate_limited")
    assert len(ops(unipile_sim, "send_invitation")) == 1
    assert sleeps == []
    assert result.retry_after == 1.0


def test_message_sends_are_never_retried(
    client: UnipileClient, unipile_sim: SimulatorServer, account: str, sleeps: Sleeps
) -> None:
    unipile_sim.connect_person(account, "jane-doe")
    unipile_sim.fault("network_down", operation="start_chat", times=1)
    assert isinstance(client.start_chat(account, "jane-doe", "Hello"), Failure)
    assert len(ops(unipile_sim, "start_chat")) == 1 and sleeps == []


def test_while_unipile_is_down_calls_fail_as_server_errors_and_recover(
    client: UnipileClient, unipile_sim: SimulatorServer, account: str
) -> None:
    unipile_sim.go_down()
    status = client.account_status(account)
    assert isinstance(status, Failure) and status.kind == "server_error" and status.status == 503
    invite = client.send_invitation(account, "jane-doe")
    assert isinstance(invite, Failure) and invite.error_type == "service_unavailable"
    unipile_sim.come_back()
    assert client.account_status(account) == "OK"


def test_an_unreachable_unipile_is_a_network_failure(sleeps: Sleeps) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port now: the connection is refused before anything is sent.
    with UnipileClient(f"http://127.0.0.1:{port}", "k", sleep=sleeps) as c:
        get = c.account_status("a1")
        invite = c.send_invitation("a1", "jane-doe")
    assert isinstance(get, Failure) and get.kind == "network"
    assert isinstance(invite, Failure) and invite.kind == "network"
    assert not invite.outcome_unknown
    assert sleeps == [0.5, 1.0]  # the GET was retried, the invite was not


def test_no_answer_after_sending_is_an_unknown_outcome_never_retried(sleeps: Sleeps) -> None:
    # A listening socket that never answers: the request goes out, no reply comes back.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        with UnipileClient(
            f"http://127.0.0.1:{port}", "k", timeout=httpx.Timeout(0.3), sleep=sleeps
        ) as c:
            invite = c.send_invitation("a1", "jane-doe")
    assert isinstance(invite, Failure) and invite.kind == "timeout"
    assert invite.outcome_unknown
    assert sleeps == []


# --- invitations ------------------------------------------------------------------------------


def test_a_note_over_300_characters_is_refused_before_any_call(
    client: UnipileClient, unipile_sim: SimulatorServer, account: str
) -> None:
    result = client.send_invitation(account, "jane-doe", note="x" * (INVITATION_NOTE_MAX_CHARS + 1))
    assert isinstance(result, Failure)
    assert (result.kind, result.error_type) == ("invalid_request", "too_many_characters")
    assert "301 characters" in result.detail and "300" in result.detail
    assert unipile_sim.requests() == []
    exact = client.send_invitation(account, "jane-doe", note="y" * INVITATION_NOTE_MAX_CHARS)
    assert isinstance(exact, InvitationSent)


def test_invitations_are_listed_newest_first_and_withdrawn(
    client: UnipileClient, unipile_sim: SimulatorServer, account: str
) -> None:
    for name in ("amy-one", "ben-two", "cat-three"):
        unipile_sim.advance(60)
        assert isinstance(client.send_invitation(account, name, note=f"Hi {name}"), InvitationSent)
    listed = fetch_all(lambda c: client.list_sent_invitations(account, cursor=c, limit=2))
    assert not isinstance(listed, Failure)
    assert [i.invited_user_public_id for i in listed] == ["cat-three", "ben-two", "amy-one"]
    assert listed[0].invitation_text == "Hi cat-three"
    assert client.withdraw_invitation(account, listed[0].id) == Done()
    again = client.send_invitation(account, "cat-three")
    assert isinstance(again, Failure) and again.kind == "already_done"
    unipile_sim.advance(timedelta(weeks=3, seconds=1).total_seconds())
    assert isinstance(client.send_invitation(account, "cat-three"), InvitationSent)


def test_the_provider_limit_answers_cannot_resend_yet_and_usage_crossings(
    client: UnipileClient, unipile_sim: SimulatorServer, account: str
) -> None:
    unipile_sim.set_limits(account, invites_per_week=4)
    answers = [client.send_invitation(account, f"person-{i}") for i in range(5)]
    usages = [a.usage for a in answers[:4] if isinstance(a, InvitationSent)]
    assert usages == [None, 50, 75, 100]
    refused = answers[4]
    assert isinstance(refused, Failure) and refused.kind == "cannot_resend_yet"
    assert refused.status == 422 and "temporary provider limit" in refused.detail
    unipile_sim.set_limits(account, mode="limit_exceeded")
    limited = client.send_invitation(account, "person-9")
    assert isinstance(limited, Failure) and limited.kind == "limit_reached"


def test_inviting_a_relation_or_a_pending_invitee_is_already_done(
    client: UnipileClient, unipile_sim: SimulatorServer, account: str
) -> None:
    unipile_sim.connect_person(account, "old-friend")
    friend = client.send_invitation(account, "old-friend")
    assert isinstance(friend, Failure) and friend.error_type == "already_connected"
    assert isinstance(client.send_invitation(account, "new-face"), InvitationSent)
    twice = client.send_invitation(account, "new-face")
    assert isinstance(twice, Failure) and twice.error_type == "already_invited_recently"


def test_relations_page_newest_first_after_acceptance(
    client: UnipileClient, unipile_sim: SimulatorServer, account: str
) -> None:
    for name in ("first-person", "second-person", "third-person"):
        sent = client.send_invitation(account, name)
        assert isinstance(sent, InvitationSent)
        unipile_sim.advance(30)
        unipile_sim.accept(sent.invitation_id)
    page = client.list_relations(account, limit=2)
    assert isinstance(page, Page) and page.cursor
    assert [r.public_identifier for r in page.items] == ["third-person", "second-person"]
    rest = client.list_relations(account, cursor=page.cursor, limit=2)
    assert isinstance(rest, Page) and rest.cursor is None
    assert [r.public_identifier for r in rest.items] == ["first-person"]
    assert rest.items[0].connected_at is not None and rest.items[0].provider_id.startswith("ACo")
    profile = client.get_profile(account, "first-person")
    assert not isinstance(profile, Failure) and profile.network_distance == "FIRST_DEGREE"


# --- chats, messages, InMail, reactions -------------------------------------------------------


def test_a_chat_needs_a_connection_then_messages_page(
    client: UnipileClient, unipile_sim: SimulatorServer, account: str
) -> None:
    stranger = client.start_chat(account, "jane-doe", "Hello")
    assert isinstance(stranger, Failure) and stranger.error_type == "no_connection_with_recipient"
    unipile_sim.connect_person(account, "jane-doe")
    started = client.start_chat(account, "jane-doe", "Hello Jane")
    assert isinstance(started, ChatStarted)
    unipile_sim.inbound(account, "jane-doe", "Hi! Thanks for reaching out")
    sent = client.send_message(started.chat_id, "Great — a call on Monday?")
    assert isinstance(sent, MessageSent)
    chats = client.list_chats(account)
    assert isinstance(chats, Page) and [c.id for c in chats.items] == [started.chat_id]
    messages = fetch_all(lambda c: client.list_messages(started.chat_id, cursor=c, limit=2))
    assert not isinstance(messages, Failure)
    assert [(m.text, m.is_sender) for m in messages] == [
        ("Great — a call on Monday?", True),
        ("Hi! Thanks for reaching out", False),
        ("Hello Jane", True),
    ]
    # Starting a chat again with the same person lands in the same chat.
    reused = client.start_chat(account, "jane-doe", "One more thing")
    assert isinstance(reused, ChatStarted) and reused.chat_id == started.chat_id


def test_inmail_spends_credits_and_respects_the_recipient(
    client: UnipileClient, unipile_sim: SimulatorServer, account: str
) -> None:
    unipile_sim.set_limits(account, inmail_credits=1)
    unipile_sim.control(
        "POST", "/people", {"public_identifier": "no-inmail", "flags": ["not_allowed_inmail"]}
    )
    first = client.send_inmail(account, "far-away", subject="Quick question", text="Hello there")
    assert isinstance(first, ChatStarted)
    broke = client.send_inmail(account, "far-off", subject="Another", text="Hello again")
    assert isinstance(broke, Failure) and broke.error_type == "insufficient_credits"
    assert broke.kind == "limit_reached"
    refused = client.send_inmail(account, "no-inmail", subject="Hi", text="Hello")
    assert isinstance(refused, Failure) and refused.kind == "recipient_unavailable"
    no_seat = client.send_inmail(
        account, "far-away", subject="Hi", text="Hello", api="sales_navigator"
    )
    assert isinstance(no_seat, Failure) and no_seat.kind == "forbidden"


def test_a_post_reaction_is_done_once(client: UnipileClient, account: str) -> None:
    assert client.react_to_post(account, "urn:li:activity:7001", "celebrate") == Done()
    twice = client.react_to_post(account, "urn:li:activity:7001")
    assert isinstance(twice, Failure) and twice.kind == "already_done"


# --- connection, checkpoints, hosted auth, delete ---------------------------------------------


def test_credentials_connect_without_a_checkpoint_is_live_at_once(
    client: UnipileClient, unipile_sim: SimulatorServer
) -> None:
    proxy = Proxy("socks5", "10.1.2.3", 1080, "user", "pass")
    result = client.connect(CredentialsLogin("dan@example.com", "pw"), proxy=proxy, country="de")
    assert isinstance(result, AccountConnected)
    account = client.get_account(result.account_id)
    assert not isinstance(account, Failure) and account.status == "OK"
    assert account.proxy == {
        "protocol": "socks5",
        "host": "10.1.2.3",
        "port": 1080,
        "username": "user",
    }
    assert (
        unipile_sim.account(result.account_id)["connection_params"]["im"]["proxy"]["host"]
        == "10.1.2.3"
    )


def test_wrong_credentials_and_a_bad_proxy_are_refused(client: UnipileClient) -> None:
    wrong = client.connect(CredentialsLogin("dan@example.com", "wrong-password"))
    assert isinstance(wrong, Failure) and wrong.error_type == "invalid_credentials"
    proxy = Proxy("http", "proxy.example", 8080, "u", "wrong-password")
    bad_proxy = client.connect(CredentialsLogin("dan@example.com", "pw"), proxy=proxy)
    assert isinstance(bad_proxy, Failure) and bad_proxy.error_type == "invalid_proxy_credentials"


def test_a_cookie_connect_works(client: UnipileClient) -> None:
    login = CookieLogin(access_token="AQEDAR-li-at", user_agent="Mozilla/5.0 Test")
    assert isinstance(client.connect(login), AccountConnected)


def test_a_2fa_checkpoint_answered_within_its_validity_connects(
    client: UnipileClient, unipile_sim: SimulatorServer
) -> None:
    pending = client.connect(CredentialsLogin("eve+2fa@example.com", "pw"))
    assert isinstance(pending, CheckpointRequired) and pending.type == "2FA"
    assert client.account_status(pending.account_id) == "CONNECTING"
    code = unipile_sim.account(pending.account_id)["checkpoint"]["code"]
    wrong = client.solve_checkpoint(pending.account_id, "000000" if code != "000000" else "111111")
    assert isinstance(wrong, Failure) and wrong.kind == "checkpoint_invalid"
    unipile_sim.advance(9 * 60)
    assert client.solve_checkpoint(pending.account_id, code) == AccountConnected(pending.account_id)
    assert client.account_status(pending.account_id) == "OK"


def test_an_expired_checkpoint_fails_and_the_connection_starts_over(
    client: UnipileClient, unipile_sim: SimulatorServer
) -> None:
    pending = client.connect(CredentialsLogin("eve+otp@example.com", "pw"))
    assert isinstance(pending, CheckpointRequired) and pending.type == "OTP"
    code = unipile_sim.account(pending.account_id)["checkpoint"]["code"]
    unipile_sim.advance(10 * 60 + 1)
    late = client.solve_checkpoint(pending.account_id, code)
    assert isinstance(late, Failure) and late.kind == "checkpoint_failed"
    assert "expired" in late.detail
    gone = client.get_account(pending.account_id)
    assert isinstance(gone, Failure) and gone.kind == "account_not_found"


def test_resending_a_checkpoint_renews_its_validity(
    client: UnipileClient, unipile_sim: SimulatorServer
) -> None:
    pending = client.connect(CredentialsLogin("eve+2fa@example.com", "pw"))
    assert isinstance(pending, CheckpointRequired)
    code = unipile_sim.account(pending.account_id)["checkpoint"]["code"]
    unipile_sim.advance(8 * 60)
    assert client.resend_checkpoint(pending.account_id) == Done()
    unipile_sim.advance(8 * 60)
    assert isinstance(client.solve_checkpoint(pending.account_id, code), AccountConnected)


def test_try_another_way_switches_2fa_to_otp(
    client: UnipileClient, unipile_sim: SimulatorServer
) -> None:
    pending = client.connect(CredentialsLogin("eve+2fa@example.com", "pw"))
    assert isinstance(pending, CheckpointRequired)
    switched = client.solve_checkpoint(pending.account_id, "TRY_ANOTHER_WAY")
    assert isinstance(switched, CheckpointRequired) and switched.type == "OTP"


def test_in_app_validation_waits_for_the_phone(
    client: UnipileClient, unipile_sim: SimulatorServer
) -> None:
    pending = client.connect(CredentialsLogin("fay+inapp@example.com", "pw"))
    assert isinstance(pending, CheckpointRequired) and pending.type == "IN_APP_VALIDATION"
    still = client.solve_checkpoint(pending.account_id, "poll")
    assert isinstance(still, CheckpointRequired) and still.type == "IN_APP_VALIDATION"
    unipile_sim.control("POST", f"/accounts/{pending.account_id}/checkpoint/approve")
    assert isinstance(client.solve_checkpoint(pending.account_id, "poll"), AccountConnected)


def test_a_captcha_checkpoint_is_answered_with_the_characters(
    client: UnipileClient, unipile_sim: SimulatorServer
) -> None:
    pending = client.connect(CredentialsLogin("gus+captcha@example.com", "pw"))
    assert isinstance(pending, CheckpointRequired) and pending.type == "CAPTCHA"
    characters = pending.raw["checkpoint"]["data"]
    assert isinstance(client.solve_checkpoint(pending.account_id, characters), AccountConnected)


def test_a_reconnect_can_need_a_checkpoint_too(
    client: UnipileClient, unipile_sim: SimulatorServer, account: str
) -> None:
    unipile_sim.expire_session(account)
    unipile_sim.control("POST", "/config", {"next_checkpoint": "2FA"})
    pending = client.reconnect(account, CredentialsLogin("ann.lee@example.com", "pw"))
    assert isinstance(pending, CheckpointRequired) and pending.account_id == account
    code = unipile_sim.account(account)["checkpoint"]["code"]
    assert client.solve_checkpoint(account, code) == AccountConnected(account)
    assert client.account_status(account) == "OK"


def test_solving_without_a_checkpoint_fails_clearly(client: UnipileClient, account: str) -> None:
    result = client.solve_checkpoint(account, "123456")
    assert isinstance(result, Failure) and result.kind == "checkpoint_failed"
    assert "no checkpoint" in result.detail


def test_a_hosted_auth_link_for_connect_and_reconnect(
    client: UnipileClient, unipile_sim: SimulatorServer, account: str
) -> None:
    expires = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    urls = dict(
        name="ws-1:user-7",
        notify_url="http://127.0.0.1:9/notify",
        success_redirect_url="http://127.0.0.1:9/ok",
        failure_redirect_url="http://127.0.0.1:9/ko",
    )
    create = client.create_hosted_auth_link(expires_on=expires, **urls)
    reconnect = client.create_hosted_auth_link(
        expires_on=expires, reconnect_account=account, **urls
    )
    assert isinstance(create, HostedAuthLink) and isinstance(reconnect, HostedAuthLink)
    assert create.url.startswith(unipile_sim.base_url + "/hosted/") and create.url != reconnect.url
    links = {link.type: link for link in unipile_sim.state.links.values()}
    assert links["reconnect"].reconnect_account == account
    assert links["create"].expires_at == expires and links["create"].name == "ws-1:user-7"
    missing = client.create_hosted_auth_link(expires_on=expires, reconnect_account="nope", **urls)
    assert isinstance(missing, Failure) and missing.kind == "not_found"


def test_deleting_an_account(client: UnipileClient, account: str) -> None:
    assert client.delete_account(account) == Done()
    gone = client.delete_account(account)
    assert isinstance(gone, Failure) and gone.kind == "account_not_found"


def test_the_client_is_usable_as_the_protocol(unipile_sim: SimulatorServer) -> None:
    from warmysender.linkedin.client import UnipileApi

    api: UnipileApi = unipile_sim.client()
    assert isinstance(api.list_accounts(), Page)
