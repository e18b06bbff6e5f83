"""IMAP sync end to end: the campaign's first email really goes out through aiosmtpd, the
prospect's answer is APPENDed into a real Dovecot mailbox, and one sync applies it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from warmysender.audit.models import AuditEntry, DomainEvent
from warmysender.conftest import Tenant
from warmysender.email.tests.corpus import autoreply, bounce
from warmysender.inbox.models import InboundMessage, MailboxFolderState
from warmysender.inbox.tests.helpers import (
    T0,
    World,
    campaign_that_sent,
    enrollment_of,
    make_world,
    reply_to,
    sent_action,
)
from warmysender.prospects.models import Suppression
from warmysender.sequences.models import CampaignEvent, EnrollmentStatus
from warmysender.sequences.tests.flow import drive
from warmysender.testing.imap import DovecotServer
from warmysender.testing.smtp import SmtpServer, free_port

pytestmark = pytest.mark.django_db
ADA = "ada@example.com"
BOB = "bob@example.org"


@pytest.fixture
def world(
    tenant: Tenant, smtp_server: SmtpServer, imap_server: DovecotServer, settings: object
) -> World:
    settings.SMTP_CA_FILE = str(imap_server.ca_file)  # type: ignore[attr-defined]
    return make_world(tenant, smtp_server, imap_server)


def events(type: str) -> list[DomainEvent]:
    return list(DomainEvent.objects.filter(type=type))


def test_a_reply_stops_the_sequence_within_one_sync(world: World) -> None:
    campaign = campaign_that_sent(world, [ADA])
    action = sent_action(campaign, ADA)
    world.append(reply_to(action))

    report = world.sync(T0 + timedelta(hours=2))

    assert report.error == "" and report.stored == 1
    enrollment = enrollment_of(campaign, ADA)
    assert enrollment.status == EnrollmentStatus.REPLIED
    assert enrollment.next_action_at is None
    stored = InboundMessage.objects.get()
    assert (stored.kind, stored.matched_by, stored.folder) == ("reply", "in_reply_to", "INBOX")
    assert stored.action == action and stored.campaign == campaign
    assert "can we talk on Thursday" in stored.text_body
    assert stored.in_reply_to == action.message_id
    [event] = events("reply.received")
    assert event.data["prospectEmail"] == ADA
    assert event.data["campaignId"] == str(campaign.pk)
    assert event.data["mailboxId"] == str(world.mailbox.pk)
    assert event.data["subject"] == f"Re: {action.subject}"
    assert CampaignEvent.objects.filter(campaign=campaign, type="reply").count() == 1
    assert AuditEntry.objects.filter(action="inbound.reply", object_id=str(stored.pk)).exists()

    # Nothing is read twice, and the follow-up never goes.
    assert world.sync(T0 + timedelta(hours=3)).stored == 0
    drive(T0 + timedelta(days=3))
    assert len(world.smtp.messages) == 1
    state = MailboxFolderState.objects.get(mailbox=world.mailbox, folder="INBOX")
    assert state.last_uid == stored.uid and state.last_error == ""


def test_a_second_reply_later_is_stored_but_emits_no_second_event(world: World) -> None:
    campaign = campaign_that_sent(world, [ADA])
    action = sent_action(campaign, ADA)
    world.append(reply_to(action, body="First answer"))
    world.sync(T0 + timedelta(hours=2))
    world.append(reply_to(action, body="And another thing"), at=T0 + timedelta(hours=5))
    assert world.sync(T0 + timedelta(hours=6)).stored == 1
    assert InboundMessage.objects.count() == 2
    assert len(events("reply.received")) == 1  # once per prospect per campaign, ever


def test_a_reply_without_threading_headers_is_matched_by_its_sender(world: World) -> None:
    campaign = campaign_that_sent(world, [ADA, BOB])
    world.append(reply_to(sent_action(campaign, BOB), threaded=False))
    world.sync(T0 + timedelta(hours=2))
    stored = InboundMessage.objects.get()
    assert stored.matched_by == "sender"
    assert enrollment_of(campaign, BOB).status == EnrollmentStatus.REPLIED
    assert enrollment_of(campaign, ADA).status == EnrollmentStatus.PENDING


def test_mail_that_concerns_no_campaign_is_left_alone(world: World) -> None:
    campaign = campaign_that_sent(world, [ADA])
    newsletter = (
        b"From: news@shop.example\r\nTo: x@acme.com\r\nSubject: Deals\r\n"
        b"Message-ID: <n1@shop.example>\r\n\r\nBuy now.\r\n"
    )
    world.append(newsletter)
    report = world.sync(T0 + timedelta(hours=2))
    assert report.folders[0].ignored == 1
    assert InboundMessage.objects.count() == 0
    assert enrollment_of(campaign, ADA).status == EnrollmentStatus.PENDING
    with world.client() as client:  # read with PEEK: the user's unread mail stays unread
        client.select_folder("INBOX")
        assert client.search(["UNSEEN"]) != []


def test_stop_on_reply_off_keeps_the_sequence_going(world: World) -> None:
    campaign = campaign_that_sent(world, [ADA], stop_on_reply=False)
    world.append(reply_to(sent_action(campaign, ADA)))
    world.sync(T0 + timedelta(hours=2))
    assert enrollment_of(campaign, ADA).status == EnrollmentStatus.PENDING
    assert len(events("reply.received")) == 1


def test_an_out_of_office_does_not_stop_the_sequence(world: World) -> None:
    campaign = campaign_that_sent(world, [ADA])
    action = sent_action(campaign, ADA)
    for name in ("en_outlook", "de"):
        raw = autoreply(
            name,
            sender=ADA,
            to=world.login,
            subject=action.subject,
            message_id=action.message_id,
            token=name,
        )
        world.append(raw)
    world.sync(T0 + timedelta(hours=2))

    assert sorted(InboundMessage.objects.values_list("kind", flat=True)) == ["auto_reply"] * 2
    enrollment = enrollment_of(campaign, ADA)
    assert enrollment.status == EnrollmentStatus.PENDING
    assert events("reply.received") == []
    assert CampaignEvent.objects.filter(campaign=campaign, type="auto_reply").count() == 2
    # The follow-up goes out when it falls due.
    assert enrollment.next_action_at is not None
    drive(enrollment.next_action_at + timedelta(minutes=1))
    assert len(world.smtp.messages) == 2


def test_a_hard_bounce_suppresses_the_address_and_stops_the_enrollment(world: World) -> None:
    campaign = campaign_that_sent(world, [ADA])
    action = sent_action(campaign, ADA)
    world.append(
        bounce(
            "postfix_user_unknown",
            sender=world.login,
            recipient=ADA,
            message_id=action.message_id,
            action_id=str(action.pk),
        )
    )
    world.sync(T0 + timedelta(hours=2))

    stored = InboundMessage.objects.get()
    assert (stored.kind, stored.bounce_type, stored.matched_by) == (
        "bounce",
        "hard",
        "action_header",
    )
    assert "5.1.1" in stored.bounce_reason
    assert stored.original_message_id == action.message_id
    assert enrollment_of(campaign, ADA).status == EnrollmentStatus.BOUNCED
    entry = Suppression.objects.get(workspace=world.tenant.workspace, value=ADA)
    assert entry.reason.startswith("bounce: 5.1.1")
    [bounced] = events("email.bounced")
    assert bounced.data["bounceType"] == "hard" and bounced.data["prospectEmail"] == ADA
    assert len(events("prospect.suppressed")) == 1


def test_a_soft_bounce_is_recorded_and_stops_nothing(world: World) -> None:
    campaign = campaign_that_sent(world, [ADA])
    action = sent_action(campaign, ADA)
    world.append(
        bounce(
            "gmail_mailbox_full",
            sender=world.login,
            recipient=ADA,
            message_id=action.message_id,
            action_id=str(action.pk),
        )
    )
    world.sync(T0 + timedelta(hours=2))
    assert InboundMessage.objects.get().bounce_type == "soft"
    assert enrollment_of(campaign, ADA).status == EnrollmentStatus.PENDING
    assert not Suppression.objects.exists()
    assert events("email.bounced") == []


def test_a_reply_filed_as_spam_is_found_in_the_junk_folder(world: World) -> None:
    campaign = campaign_that_sent(world, [ADA])
    world.append(reply_to(sent_action(campaign, ADA)), folder="Junk")
    report = world.sync(T0 + timedelta(hours=2))
    assert [f.folder for f in report.folders] == ["INBOX", "Junk"]
    stored = InboundMessage.objects.get()
    assert stored.folder == "Junk" and stored.in_spam_folder
    assert enrollment_of(campaign, ADA).status == EnrollmentStatus.REPLIED


def test_the_same_reply_in_two_folders_is_processed_once(world: World) -> None:
    campaign = campaign_that_sent(world, [ADA])
    raw = reply_to(sent_action(campaign, ADA))
    world.append(raw)
    world.append(raw, folder="Junk")
    report = world.sync(T0 + timedelta(hours=2))
    assert [(f.stored, f.duplicates) for f in report.folders] == [(1, 0), (0, 1)]
    assert InboundMessage.objects.count() == 1
    assert len(events("reply.received")) == 1
    assert (
        AuditEntry.objects.filter(
            action="enrollment.status_changed", to_state=EnrollmentStatus.REPLIED
        ).count()
        == 1
    )


def test_a_changed_uidvalidity_rescans_without_doubling(world: World) -> None:
    campaign = campaign_that_sent(world, [ADA, BOB])
    ada_reply = reply_to(sent_action(campaign, ADA))
    world.append(ada_reply, folder="Junk")
    world.sync(T0 + timedelta(hours=2))
    before = MailboxFolderState.objects.get(mailbox=world.mailbox, folder="Junk")

    # The server renumbers the folder: recreated, the old message back in it and a new one.
    with world.client() as client:
        client.delete_folder("Junk")
        client.create_folder("Junk")
    world.append(ada_reply, folder="Junk")
    world.append(reply_to(sent_action(campaign, BOB)), folder="Junk")
    report = world.sync(T0 + timedelta(hours=3))

    after = MailboxFolderState.objects.get(pk=before.pk)
    assert after.uidvalidity != before.uidvalidity
    assert [(f.folder, f.stored, f.duplicates) for f in report.folders] == [
        ("INBOX", 0, 0),
        ("Junk", 1, 1),
    ]
    assert InboundMessage.objects.count() == 2
    assert len(events("reply.received")) == 2


def test_a_wrong_password_is_recorded_and_the_next_run_recovers(
    world: World, imap_server: DovecotServer
) -> None:
    campaign = campaign_that_sent(world, [ADA])
    world.append(reply_to(sent_action(campaign, ADA)))
    other = f"x{world.login}"
    imap_server.add_user(other, "something-else")
    world.mailbox.imap_username = other
    world.mailbox.save(update_fields=["imap_username"])

    report = world.sync(T0 + timedelta(hours=2))
    assert report.error.startswith("could not log in")
    state = MailboxFolderState.objects.get(mailbox=world.mailbox, folder="INBOX")
    assert state.last_error.startswith("could not log in") and state.last_error_at is not None

    world.mailbox.imap_username = ""
    world.mailbox.save(update_fields=["imap_username"])
    assert world.sync(T0 + timedelta(hours=3)).stored == 1
    state.refresh_from_db()
    assert state.last_error == ""


@pytest.fixture
def hang_up_server() -> Iterator[int]:
    """An IMAP server that greets, then drops the connection at the first command: a
    disconnect we cannot provoke in Dovecot on cue."""
    listener = socket.create_server(("127.0.0.1", free_port()))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n")
            conn.recv(1024)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


def test_a_server_that_hangs_up_leaves_an_error_not_a_crash(
    world: World, hang_up_server: int
) -> None:
    world.mailbox.imap_port = hang_up_server
    world.mailbox.save(update_fields=["imap_port"])
    report = world.sync(T0 + timedelta(hours=2))
    assert report.error.startswith("could not log in")
    assert MailboxFolderState.objects.get(mailbox=world.mailbox).last_error != ""


def test_a_second_sync_of_the_same_mailbox_is_turned_away(world: World) -> None:
    import psycopg

    from warmysender.email import imap_sync
    from warmysender.testing.processes import url_of_test_database

    campaign = campaign_that_sent(world, [ADA])
    world.append(reply_to(sent_action(campaign, ADA)))
    with psycopg.connect(url_of_test_database(), autocommit=True) as other:
        # Another process is syncing this mailbox.
        other.execute(
            "SELECT pg_advisory_lock(%s, hashtext(%s))",
            [imap_sync.IMAP_LOCK_SPACE, str(world.mailbox.pk)],
        )
        report = world.sync(T0 + timedelta(hours=2))
        assert report.skipped == "another sync of this mailbox is running"
        assert InboundMessage.objects.count() == 0
        # It finished. (Unlocked explicitly: a closed session's backend lets go of its locks
        # a moment after the client has gone, which would make this check racy.)
        other.execute(
            "SELECT pg_advisory_unlock(%s, hashtext(%s))",
            [imap_sync.IMAP_LOCK_SPACE, str(world.mailbox.pk)],
        )
    assert world.sync(T0 + timedelta(hours=3)).stored == 1


def test_a_huge_message_is_judged_on_its_headers(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from warmysender.email import imap_sync

    campaign = campaign_that_sent(world, [ADA])
    raw = reply_to(sent_action(campaign, ADA), body="x" * 5000)
    world.append(raw)
    monkeypatch.setattr(imap_sync, "MAX_MESSAGE", 1000)
    assert world.sync(T0 + timedelta(hours=2)).stored == 1
    stored = InboundMessage.objects.get()
    assert stored.kind == "reply" and stored.text_body == ""
    assert enrollment_of(campaign, ADA).status == EnrollmentStatus.REPLIED


def test_implicit_tls_works_too(world: World, imap_server: DovecotServer) -> None:
    world.mailbox.imap_port = imap_server.ssl_port
    world.mailbox.imap_security = "ssl"
    world.mailbox.save(update_fields=["imap_port", "imap_security"])
    campaign = campaign_that_sent(world, [ADA])
    world.append(reply_to(sent_action(campaign, ADA)))
    assert world.sync(T0 + timedelta(hours=2)).stored == 1


def test_a_reply_touches_only_the_workspace_of_the_mailbox_it_arrived_in(
    world: World, outsider: Tenant, smtp_server: SmtpServer, imap_server: DovecotServer
) -> None:
    # The same person is a prospect of another workspace, which also wrote to them.
    theirs = make_world(outsider, smtp_server, imap_server)
    their_campaign = campaign_that_sent(theirs, [ADA])
    campaign = campaign_that_sent(world, [ADA])
    world.append(reply_to(sent_action(campaign, ADA), threaded=False))
    world.sync(T0 + timedelta(hours=2))

    assert enrollment_of(campaign, ADA).status == EnrollmentStatus.REPLIED
    assert enrollment_of(their_campaign, ADA).status == EnrollmentStatus.PENDING
    assert InboundMessage.objects.get().workspace == world.tenant.workspace
    assert not DomainEvent.objects.filter(workspace=outsider.workspace, type="reply.received")


class CuttingProxy:
    """A TCP proxy to Dovecot that drops both sides once the server has sent `limit` bytes: the
    connection lost in the middle of a folder, which Dovecot cannot be told to do on cue."""

    def __init__(self, target: tuple[str, int], limit: int) -> None:
        self.target, self.limit = target, limit
        self.listener = socket.create_server(("127.0.0.1", free_port()))
        self.port = self.listener.getsockname()[1]
        self.cut = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        client, _ = self.listener.accept()
        upstream = socket.create_connection(self.target)
        sent = 0

        def pump_up() -> None:
            try:
                while data := client.recv(65536):
                    upstream.sendall(data)
            except OSError:
                pass

        threading.Thread(target=pump_up, daemon=True).start()
        try:
            while sent < self.limit and (data := upstream.recv(4096)):
                client.sendall(data)
                sent += len(data)
        except OSError:
            pass
        self.cut.set()
        for sock in (client, upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self.listener.close()


def test_a_connection_lost_mid_folder_is_recorded_and_the_next_run_finishes(
    world: World, imap_server: DovecotServer
) -> None:
    emails = [f"p{i}@example.com" for i in range(6)]
    campaign = campaign_that_sent(world, emails)
    for email in emails:
        world.append(reply_to(sent_action(campaign, email), body="y" * 6000))
    proxy = CuttingProxy((imap_server.host, imap_server.port), limit=20_000)
    world.mailbox.imap_port = proxy.port
    world.mailbox.save(update_fields=["imap_port"])

    first = world.sync(T0 + timedelta(hours=2))
    proxy.close()
    assert proxy.cut.is_set()
    assert first.error.startswith("INBOX: ")
    done = InboundMessage.objects.count()
    assert done < len(emails)
    state = MailboxFolderState.objects.get(mailbox=world.mailbox, folder="INBOX")
    assert state.last_error != "" and state.last_error_at is not None

    world.mailbox.imap_port = imap_server.port
    world.mailbox.save(update_fields=["imap_port"])
    second = world.sync(T0 + timedelta(hours=3))
    assert second.error == ""
    assert second.folders[0].stored == len(emails) - done
    assert InboundMessage.objects.count() == len(emails)
    assert len(events("reply.received")) == len(emails)
    state.refresh_from_db()
    assert state.last_error == ""
