"""Reading replies, bounces and complaints from the mailboxes' IMAP servers.

Per mailbox: log in (imapclient, `ssl=` always explicit), find INBOX and the spam folder (the
`\\Junk` special-use flag, else a provider's name for it), and in each folder fetch only the
messages above the last UID done under the folder's current UIDVALIDITY. Messages are fetched
with BODY.PEEK so nothing is marked read. Each message is stored and applied in its own
transaction together with the folder's new last UID (inbox/services.py), so a sync killed
mid-folder resumes after the last message it finished, and a message it re-reads (two folders,
a renumbered folder) is recognised by its dedup key.

One sync per mailbox at a time, fleet-wide: a session advisory lock, which the database drops
by itself when a killed process's connection goes away. A connection that drops mid-sync is
recorded on the folder's state and the next run continues from there.
"""

from __future__ import annotations

import imaplib
import logging
import socket
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from warmysender.inbox import services
from warmysender.inbox.models import MailboxFolderState
from warmysender.mailboxes.models import Mailbox, MailboxKind, Security
from warmysender.mailboxes.transports import client_tls_context

log = logging.getLogger(__name__)
IMAP_LOCK_SPACE = 0x494D  # "IM": first key of the (space, mailbox) advisory lock
FETCH_BATCH = 25
MAX_MESSAGE = 10_000_000  # bytes: larger messages are read by their headers only
TIMEOUT = 30.0
INBOX = "INBOX"
# Names providers give the spam folder when the server does not flag it \Junk, compared on the
# last path component, case-insensitively (Gmail's is "[Gmail]/Spam", Yahoo's "Bulk Mail").
SPAM_NAMES = {"spam", "junk", "junk e-mail", "junk email", "bulk mail", "bulk", "spamverdacht"}
# How far before a mailbox's first campaign email the first read of a folder starts: nothing
# older can answer one of ours, and an inbox of ten years is not read for nothing.
FIRST_READ_MARGIN = timedelta(days=1)
NETWORK_ERRORS = (IMAPClientError, imaplib.IMAP4.error, OSError, socket.timeout, ssl.SSLError)


@dataclass
class FolderReport:
    folder: str
    stored: int = 0
    duplicates: int = 0
    ignored: int = 0
    error: str = ""


@dataclass
class SyncReport:
    mailbox_id: str
    skipped: str = ""  # why nothing was done ("locked", "no IMAP server", ...)
    error: str = ""
    folders: list[FolderReport] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return sum(f.stored for f in self.folders)

    def summary(self) -> str:
        if self.skipped:
            return f"mailbox={self.mailbox_id} skipped: {self.skipped}"
        parts = [
            f"{f.folder}: stored={f.stored} duplicates={f.duplicates} ignored={f.ignored}"
            + (f" error={f.error}" if f.error else "")
            for f in self.folders
        ]
        head = f"mailbox={self.mailbox_id}" + (f" error={self.error}" if self.error else "")
        return "; ".join([head, *parts])


def syncable_mailboxes() -> list[str]:
    return [
        str(pk)
        for pk in Mailbox.objects.filter(kind=MailboxKind.SMTP)
        .exclude(imap_host="")
        .exclude(imap_port=None)
        .values_list("pk", flat=True)
    ]


def sync_mailbox(mailbox_id: str, *, clock: Callable[[], datetime]) -> SyncReport:
    report = SyncReport(str(mailbox_id))
    if not _try_lock(mailbox_id):
        report.skipped = "another sync of this mailbox is running"
        return report
    try:
        mailbox = Mailbox.objects.select_related("workspace").filter(pk=mailbox_id).first()
        if mailbox is None:
            report.skipped = "no such mailbox"
        elif mailbox.kind != MailboxKind.SMTP or not mailbox.imap_host or not mailbox.imap_port:
            report.skipped = "no IMAP server configured"
        else:
            _sync(mailbox, clock, report)
    finally:
        _unlock(mailbox_id)
    return report


def _sync(mailbox: Mailbox, clock: Callable[[], datetime], report: SyncReport) -> None:
    try:
        client = connect(mailbox)
    except NETWORK_ERRORS as exc:
        report.error = f"could not log in: {_text(exc)}"
        state = services.folder_state(mailbox, INBOX, is_spam=False)
        services.record_folder_error(state, report.error, now=clock())
        return
    try:
        folders = find_folders(client.list_folders())
        for name, is_spam in folders:
            state = services.folder_state(mailbox, name, is_spam=is_spam)
            folder_report = FolderReport(name)
            report.folders.append(folder_report)
            try:
                _sync_folder(client, state, clock, folder_report)
            except NETWORK_ERRORS as exc:
                folder_report.error = _text(exc)
                services.record_folder_error(state, folder_report.error, now=clock())
                # The connection is probably gone: the next run picks up where this one stopped.
                report.error = f"{name}: {folder_report.error}"
                return
    except NETWORK_ERRORS as exc:
        report.error = _text(exc)
        services.record_folder_error(
            services.folder_state(mailbox, INBOX, is_spam=False), report.error, now=clock()
        )
    finally:
        try:
            client.logout()
        except NETWORK_ERRORS:
            pass


def connect(mailbox: Mailbox, *, timeout: float = TIMEOUT) -> IMAPClient:
    from warmysender.mailboxes.services import mailbox_passwords

    tls = client_tls_context()
    # imapclient defaults to ssl=True: always say which one is meant.
    client = IMAPClient(
        mailbox.imap_host,
        port=mailbox.imap_port,
        ssl=mailbox.imap_security == Security.SSL,
        ssl_context=tls,
        timeout=timeout,
    )
    client.normalise_times = False  # INTERNALDATE with its zone, not converted to local time
    try:
        if mailbox.imap_security == Security.STARTTLS:
            client.starttls(ssl_context=tls)
        password = mailbox_passwords(mailbox).get("imap_password", "")
        client.login(mailbox.imap_username or mailbox.smtp_username or mailbox.email, password)
    except BaseException:
        try:
            client.shutdown()
        except NETWORK_ERRORS:
            pass
        raise
    return client


def find_folders(
    listing: Iterable[tuple[Sequence[bytes], bytes | None, str]],
) -> list[tuple[str, bool]]:
    """INBOX, then the spam folder: the one flagged \\Junk, else the first with a spam name."""
    flagged, named = None, None
    for flags, delimiter, name in listing:
        lowered = {f.lower() if isinstance(f, bytes) else str(f).lower().encode() for f in flags}
        if b"\\noselect" in lowered or b"\\nonexistent" in lowered:
            continue
        if b"\\junk" in lowered and flagged is None:
            flagged = name
        sep = delimiter.decode() if isinstance(delimiter, bytes) else (delimiter or "/")
        leaf = name.rsplit(sep, 1)[-1].strip().lower() if sep else name.lower()
        if leaf in SPAM_NAMES and named is None:
            named = name
    spam = flagged or named
    return [(INBOX, False)] + ([(spam, True)] if spam else [])


def _sync_folder(
    client: IMAPClient,
    state: MailboxFolderState,
    clock: Callable[[], datetime],
    report: FolderReport,
) -> None:
    selected = client.select_folder(state.folder, readonly=True)
    uidvalidity = int(selected[b"UIDVALIDITY"])
    if state.uidvalidity != uidvalidity:
        services.reset_folder(state, uidvalidity)
    if state.last_uid == 0:
        since = _first_read_since(state.mailbox)
        if since is None:
            # Nothing was ever sent from this mailbox: nothing here can concern a campaign.
            # Start after what exists now.
            uidnext = int(selected.get(b"UIDNEXT", 1))
            services.skip_folder_to(state, max(uidnext - 1, 0))
            services.record_folder_synced(state, now=clock())
            return
        uids = client.search(["SINCE", since])
    else:
        # "n:*" always matches the last message, even below n: filter again below.
        uids = client.search(["UID", f"{state.last_uid + 1}:*"])
    todo = sorted(int(u) for u in uids if int(u) > state.last_uid)
    for start in range(0, len(todo), FETCH_BATCH):
        batch = todo[start : start + FETCH_BATCH]
        sizes = client.fetch(batch, ["RFC822.SIZE"])
        small = [u for u in batch if int(sizes.get(u, {}).get(b"RFC822.SIZE", 0)) <= MAX_MESSAGE]
        fetched = client.fetch(small, ["BODY.PEEK[]", "INTERNALDATE"]) if small else {}
        large = [u for u in batch if u in sizes and u not in small]
        if large:
            # A huge message (attachments) is judged on its headers alone; no reply needs more.
            headers = client.fetch(large, ["BODY.PEEK[HEADER]", "INTERNALDATE"])
            for uid, data in headers.items():
                fetched[uid] = {**data, b"BODY[]": data.get(b"BODY[HEADER]", b"")}
        for uid in batch:
            data = fetched.get(uid)
            if not data or b"BODY[]" not in data:
                continue  # expunged between SEARCH and FETCH
            now = clock()
            result = services.ingest_message(
                state=state,
                uidvalidity=uidvalidity,
                uid=uid,
                raw=bytes(data[b"BODY[]"]),
                received_at=_aware(data.get(b"INTERNALDATE"), now),
                now=now,
            )
            state.last_uid = max(state.last_uid, uid)
            if result.outcome == "stored":
                report.stored += 1
            elif result.outcome == "duplicate":
                report.duplicates += 1
            else:
                report.ignored += 1
    services.record_folder_synced(state, now=clock())


def _first_read_since(mailbox: Mailbox) -> datetime | None:
    from warmysender.sequences.models import Action

    first = (
        Action.objects.filter(mailbox=mailbox)
        .exclude(finished_at=None)
        .order_by("finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    return None if first is None else (first - FIRST_READ_MARGIN)


def _aware(value: object, fallback: datetime) -> datetime:
    if not isinstance(value, datetime):
        return fallback
    # imapclient returns INTERNALDATE in local time without a zone unless told otherwise.
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, (socket.timeout, TimeoutError)):
        text = f"timed out ({text})"
    return text[:500]


def _try_lock(mailbox_id: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_lock(%s, hashtext(%s))", [IMAP_LOCK_SPACE, str(mailbox_id)]
        )
        return bool(cursor.fetchone()[0])


def _unlock(mailbox_id: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_unlock(%s, hashtext(%s))", [IMAP_LOCK_SPACE, str(mailbox_id)]
        )
