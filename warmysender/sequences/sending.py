"""Sending reserved email actions, at most once.

Per message: read the reserved action and render it (nothing external yet); connect; mark it
`sending` (committed) right before the SMTP transaction; hand it over; record the outcome. A
crash before the `sending` commit leaves it `reserved` and the watchdog gives it back to the
scheduler; a crash after leaves it `sending`, and the watchdog turns that into `unknown`, which
is never retried automatically — a person decides. A duplicate cold email is worse than a miss.

Only the `sending` marker must be durable before its hand-over: it is one short statement per
message (sql/mark_sending.sql, committed synchronously) that runs on a helper thread while the
server answers the envelope. The outcomes of accepted messages are recorded a batch at a time
(sql/record_sent.sql, not waiting for the disk) while the server reads a later message — a lost
or not yet recorded outcome leaves the action `sending`, which the watchdog makes `unknown`,
never a second send. Any other outcome is recorded at once, after the batch. The next message is
rendered while the server reads the current one.

Sends of one mailbox are serialised with a session advisory lock held for the whole run, so one
SMTP conversation per mailbox exists at any time, on any machine.
"""

from __future__ import annotations

import email.policy
import json
import logging
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from functools import cache, partial
from typing import Any, TypeVar

import psycopg
from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, NullIf

from warmysender.accounts.models import Workspace
from warmysender.audit.services import Actor, emit_event, record_audit
from warmysender.email import rendering, tracking
from warmysender.email.unsubscribe import unsubscribe_url
from warmysender.lib.sql import load
from warmysender.mailboxes.models import Mailbox
from warmysender.mailboxes.transports import SendResult, Transport, open_transport
from warmysender.prospects.models import Prospect
from warmysender.prospects.services import is_suppressed
from warmysender.sequences import caps, engine
from warmysender.sequences.models import (
    Action,
    ActionState,
    Campaign,
    CampaignStatus,
    Enrollment,
    EnrollmentStatus,
    MailboxThrottle,
    Step,
    Variant,
)
from warmysender.sequences.services import log_event, set_enrollment_status, window_of

log = logging.getLogger(__name__)
T = TypeVar("T")
SENDER = Actor.system("sender")
# RFC 5322 allows 998 characters a line; the default 78 would encode long headers such as
# List-Unsubscribe into MIME words that mail clients do not read as a URL.
MESSAGE_POLICY = email.policy.SMTP.clone(max_line_length=998)
MAILBOX_LOCK_SPACE = 0x5753  # "WS": first key of the (space, mailbox) advisory lock


@dataclass
class Prepared:
    action: Action
    enrollment: Enrollment
    campaign: Campaign
    mailbox: Mailbox
    message: EmailMessage
    message_id: str
    subject: str


@dataclass
class Delivered:
    """A message the server accepted at `at`, whose outcome is yet to be recorded."""

    prepared: Prepared
    result: SendResult
    at: datetime


@dataclass
class CampaignInfo:
    """What the sender needs of a campaign to schedule the next step, read once per run."""

    window: Any
    randomize: bool
    steps: dict[int, Any]


def send_for_mailbox(
    mailbox_id: str,
    *,
    clock: Callable[[], datetime],
    rng: random.Random | None = None,
    limit: int = 1000,
) -> int:
    """Send every reserved action of one mailbox, one SMTP connection for the run. Returns how
    many messages were handed over. Returns 0 at once when another sender holds the mailbox: it
    sends ours too, since it loops until nothing reserved is left."""
    rng = rng or random.Random()
    sent = 0
    while True:
        if not _try_lock(mailbox_id):
            return sent
        try:
            sent += _drain(mailbox_id, clock, rng, limit - sent)
        finally:
            _unlock(mailbox_id)
        # A reservation committed while we were finishing may have seen the lock held and left
        # its job to us: look once more after letting go.
        if (
            sent >= limit
            or not Action.objects.filter(mailbox_id=mailbox_id, state=ActionState.RESERVED).exists()
        ):
            return sent


def _try_lock(mailbox_id: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_lock(%s, hashtext(%s))", [MAILBOX_LOCK_SPACE, str(mailbox_id)]
        )
        return bool(cursor.fetchone()[0])


def _unlock(mailbox_id: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_unlock(%s, hashtext(%s))", [MAILBOX_LOCK_SPACE, str(mailbox_id)]
        )


# Reservations read per query: one select per batch instead of one per message. Whether each
# may still go is checked again, in one statement, at the moment it is marked `sending`.
FETCH_BATCH = 50
# Outcomes of accepted messages are recorded together (sql/record_sent.sql), while the server
# reads a later message: once this many are waiting, or the oldest has waited this long — and
# always before any other outcome and at the end of the run. Until then such a message reads
# `sending`; were the sender to die meanwhile, the watchdog would make those `unknown` (never a
# second send), so the batch is kept short.
RECORD_BATCH = 20
RECORD_EVERY_SECONDS = 1.0


def _drain(mailbox_id: str, clock: Callable[[], datetime], rng: random.Random, limit: int) -> int:
    mailbox = Mailbox.objects.filter(pk=mailbox_id).first()
    if mailbox is None:
        return 0
    transport: Transport | None = None
    # The marker and the outcome batches run on this thread's database connection from a helper
    # thread, while this one talks to the SMTP server; never both at once (this thread waits
    # for the helper's statements before it reads or writes through the ORM).
    connection.ensure_connection()
    raw_connection = connection.connection
    statements = ThreadPoolExecutor(max_workers=1, thread_name_prefix="send-record")
    outcomes = SentOutcomes(raw_connection, statements, mailbox, rng)
    shared = SharedRows()
    sent = 0
    with _prepared_statements(raw_connection):
        try:
            while sent < limit:
                outcomes.wait()
                batch = fetch_reserved(mailbox, FETCH_BATCH, shared)
                if not batch:
                    break
                stop = False
                # The next message is rendered while the server reads this one (once the whole
                # message is written, before its reply is read): the server's time is ours too.
                ahead: dict[Any, Future[Prepared]] = {}
                for i, action in enumerate(batch):
                    now = clock()
                    rendering_ahead = ahead.pop(action.pk, None)
                    if rendering_ahead is None:
                        outcomes.wait()
                        prepared = prepare(action, mailbox, now)
                    else:
                        prepared = settle_rendering(
                            action, now, rendering_ahead.result, before_parking=outcomes.wait
                        )
                    if prepared is None:
                        continue
                    if transport is None:
                        outcomes.wait()
                        transport = open_transport(mailbox)
                        refused = transport.connect()
                        if refused is not None:
                            outcomes.flush()
                            record_outcome(prepared, refused, now=clock(), rng=rng, started=False)
                            # The mailbox is refused or backing off: the rest of its reservations
                            # wait for it.
                            stop = True
                            break
                    # The `sending` marker commits while the server answers this message's
                    # envelope; DATA waits for the commit (the go-ahead).
                    recording = start(
                        statements, execute_mark, raw_connection, mark_params(prepared, clock())
                    )
                    following = batch[i + 1] if i + 1 < len(batch) else None
                    ready = Ready(recording, following, outcomes)
                    result = transport.send(
                        prepared.message,
                        now=clock(),
                        go_ahead=ready.go_ahead,
                        meanwhile=partial(ready.render_following, mailbox, ahead),
                    )
                    if not recording.result():
                        # Not wanted any more (or someone else took it): nothing was handed over.
                        outcomes.wait()
                        _settle_refused_mark(prepared, mailbox, clock())
                        continue
                    if result.outcome == "sent":
                        outcomes.add(Delivered(prepared, result, clock()))
                        sent += 1
                    else:
                        outcomes.flush()
                        record_outcome(prepared, result, now=clock(), rng=rng, started=True)
                    if result.outcome in ("unknown", "deferred", "auth_failed"):
                        # The connection is in doubt or refused: start a fresh one next time.
                        transport.close()
                        transport = None
                        if result.outcome != "unknown":
                            stop = True
                            break
                    if sent >= limit:
                        break
                if stop:
                    break
        finally:
            statements.shutdown(wait=True)
            outcomes.flush()
            if transport is not None:
                transport.close()
            _release_leftovers_if_blocked(mailbox, clock())
    return sent


def start(statements: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> Future[T]:
    """Run `fn` on the helper thread, returning once it has started. The helper needs the
    interpreter lock to send its statement, and this thread, busy rendering or serialising,
    would otherwise keep it until it next waits on the SMTP server: this way the statement is
    with the database before this thread goes on."""
    started = threading.Event()

    def run() -> T:
        started.set()
        return fn(*args)

    future = statements.submit(run)
    started.wait()
    return future


@contextmanager
def _prepared_statements(raw_connection: Any) -> Iterator[None]:
    """Server-side prepared statements for the statements this run asks it of (`prepare=True`):
    planned once per connection instead of once per message. Django leaves them off because a
    transaction pooler would lose them; a send run holds a session advisory lock for its whole
    length, so it needs a session of its own anyway. Other queries stay unprepared."""
    before = raw_connection.prepare_threshold
    if before is None:
        raw_connection.prepare_threshold = sys.maxsize
    try:
        yield
    finally:
        raw_connection.prepare_threshold = before


class Ready:
    """One message's go-ahead and what is done in its shadow. The go-ahead waits for the
    `sending` marker; once it is committed, the database reads for rendering the following
    message are made (the helper thread has nothing running then) and a due batch of outcomes
    goes to the helper, which records it while the server reads this message and the following
    one renders."""

    def __init__(
        self, recording: Future[bool], following: Action | None, outcomes: SentOutcomes
    ) -> None:
        self.recording = recording
        self.following = following
        self.outcomes = outcomes
        self.inputs: RenderInputs | None = None

    def go_ahead(self) -> bool:
        if not self.recording.result():
            return False
        if self.following is not None:
            self.inputs = inputs_of(self.following)
        self.outcomes.record_if_due()
        return True

    def render_following(self, mailbox: Mailbox, ahead: dict[Any, Future[Prepared]]) -> None:
        """Render the following message while the server reads this one, keeping what comes of
        it (the message, or why it cannot be rendered) for its turn. Touches no database, and
        must not raise."""
        if self.following is None or self.inputs is None:
            return
        rendered: Future[Prepared] = Future()
        try:
            rendered.set_result(render(self.following, mailbox, self.inputs))
        except Exception as exc:
            rendered.set_exception(exc)
        ahead[self.following.pk] = rendered


def _release_leftovers_if_blocked(mailbox: Mailbox, now: datetime) -> None:
    """If the mailbox stopped mid-run (backoff, auth failure), its other reservations go back to
    the scheduler, which waits them with the reason instead of holding capacity."""
    throttle = MailboxThrottle.objects.filter(mailbox=mailbox).first()
    mailbox.refresh_from_db(fields=["status"])
    blocked = mailbox.status != "connected" or (
        throttle is not None and throttle.backoff_until and throttle.backoff_until > now
    )
    if not blocked:
        return
    from warmysender.sequences.services import release_action

    for action in Action.objects.filter(mailbox=mailbox, state=ActionState.RESERVED).select_related(
        "enrollment"
    ):
        release_action(action, now=now, error="mailbox backing off")
        Enrollment.objects.filter(pk=action.enrollment_id, status=EnrollmentStatus.SENDING).update(
            status=EnrollmentStatus.PENDING,
            next_action_at=throttle.backoff_until
            if throttle and throttle.backoff_until
            else now + timedelta(hours=1),
            wait_reason=f"mailbox {mailbox.email} is backing off",
            updated_at=now,
        )


class SharedRows:
    """The steps, variants, campaigns and workspaces of a run's reservations, read once per run
    (many reservations share each): a reservation is read with its enrollment and prospect only.
    Whether a campaign is still running is read again by the `sending` marker."""

    def __init__(self) -> None:
        self.steps: dict[Any, Step] = {}
        self.variants: dict[Any, Variant] = {}
        self.campaigns: dict[Any, Campaign] = {}
        self.workspaces: dict[Any, Workspace] = {}

    def attach(self, actions: list[Action]) -> None:
        _read_missing(self.steps, Step, {a.step_id for a in actions})
        _read_missing(
            self.variants, Variant, {a.variant_id for a in actions if a.variant_id is not None}
        )
        _read_missing(self.campaigns, Campaign, {a.campaign_id for a in actions})
        _read_missing(self.workspaces, Workspace, {a.workspace_id for a in actions})
        for a in actions:
            a.step = self.steps[a.step_id]
            if a.variant_id is not None:
                a.variant = self.variants[a.variant_id]
            a.campaign = self.campaigns[a.campaign_id]
            a.workspace = self.workspaces[a.workspace_id]


def _read_missing(known: dict[Any, Any], model: Any, ids: set[Any]) -> None:
    missing = ids - known.keys()
    if missing:
        known.update(model.objects.in_bulk(list(missing)))


_FETCHED_MODELS = (Action, Enrollment, Prospect)


@cache
def _fetch_statement() -> tuple[str, list[tuple[Any, list[str], list[tuple[int, Any]]]]]:
    """sql/fetch_reserved.sql with every column of the three models, and per model: the model,
    its attribute names and the fields whose database value needs converting (JSON)."""
    layout = []
    columns = []
    for alias, model in zip("aep", _FETCHED_MODELS, strict=True):
        fields = list(model._meta.concrete_fields)
        columns += [f"{alias}.{f.column}" for f in fields]
        converted = [(i, f) for i, f in enumerate(fields) if hasattr(f, "from_db_value")]
        layout.append((model, [f.attname for f in fields], converted))
    sql = load("warmysender.sequences", "fetch_reserved").format(columns=", ".join(columns))
    return sql, layout


def fetch_reserved(mailbox: Mailbox, limit: int, shared: SharedRows | None = None) -> list[Action]:
    """The oldest reserved actions of `mailbox`, with what rendering them needs: the enrollment
    and the prospect read with each action, the rest shared (see SharedRows)."""
    sql, layout = _fetch_statement()
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, {"mailbox_id": mailbox.pk, "limit": limit}, prepare=True)
        rows = cursor.fetchall()
    actions: list[Action] = []
    db = connection.alias
    for row in rows:
        instances = []
        start = 0
        for model, names, converted in layout:
            values = list(row[start : start + len(names)])
            start += len(names)
            for i, field in converted:
                values[i] = field.from_db_value(values[i], None, connection)
            instances.append(model.from_db(db, names, values))
        action, enrollment, prospect = instances
        enrollment.prospect = prospect
        action.enrollment = enrollment
        action.mailbox = mailbox
        actions.append(action)
    (shared or SharedRows()).attach(actions)
    return actions


def prepare(action: Action, mailbox: Mailbox, now: datetime) -> Prepared | None:
    """Render `action`; None when its template cannot be rendered (the prospect is parked in
    `pending_template_fix`). No row locks: the mailbox's advisory lock keeps other senders away
    and the `sending` marker re-checks, at the last moment, that the send is still wanted."""
    return settle_rendering(action, now, lambda: render(action, mailbox, inputs_of(action)))


@dataclass(frozen=True)
class RenderInputs:
    """What rendering needs from the database, read beforehand, so that `render` touches no ORM
    and may run on a helper thread."""

    variant: Variant
    tracking_base: str


def inputs_of(action: Action) -> RenderInputs:
    return RenderInputs(_variant(action, action.enrollment), tracking.base_url(action.campaign))


def render(action: Action, mailbox: Mailbox, inputs: RenderInputs) -> Prepared:
    """The message of `action`. Raises rendering.MissingVariable / TemplateProblem."""
    enrollment, campaign = action.enrollment, action.campaign
    message, message_id, subject = build_message(action, enrollment, campaign, mailbox, inputs)
    return Prepared(
        action, enrollment, campaign, mailbox, message, message_id=message_id, subject=subject
    )


def settle_rendering(
    action: Action,
    now: datetime,
    rendered: Callable[[], Prepared],
    *,
    before_parking: Callable[[], None] | None = None,
) -> Prepared | None:
    """The prepared message, or None after parking the prospect when it cannot be rendered
    (`before_parking` runs first: the helper thread must be done with the connection)."""
    try:
        return rendered()
    except (rendering.MissingVariable, rendering.TemplateProblem) as exc:
        if before_parking is not None:
            before_parking()
        with transaction.atomic():
            if Action.objects.filter(pk=action.pk, state=ActionState.RESERVED).exists():
                _park_for_template_fix(action, action.enrollment, action.campaign, str(exc), now)
        return None


def _settle_refused_mark(prepared: Prepared, mailbox: Mailbox, now: datetime) -> None:
    """`mark_sending` found the send no longer wanted: settle it on fresh rows (or leave it,
    when someone else already took the reservation)."""
    with transaction.atomic():
        action = (
            Action.objects.select_for_update(of=("self",))
            .select_related("campaign", "workspace")
            .filter(pk=prepared.action.pk, state=ActionState.RESERVED)
            .first()
        )
        if action is None:
            return
        enrollment = (
            Enrollment.objects.select_for_update(of=("self",))
            .select_related("prospect", "workspace")
            .get(pk=action.enrollment_id)
        )
        mailbox.refresh_from_db(fields=["status", "sending_enabled"])
        _settle_if_not_sendable(action, enrollment, action.campaign, mailbox, now)


def _give_back(
    action: Action,
    enrollment: Enrollment,
    *,
    now: datetime,
    reason: str,
    until: datetime | None = None,
) -> None:
    from warmysender.sequences.services import release_action

    release_action(action, now=now, error=reason)
    Enrollment.objects.filter(pk=enrollment.pk).update(
        status=EnrollmentStatus.PENDING,
        next_action_at=until or now,
        wait_reason=reason[:255],
        updated_at=now,
    )


def _settle_if_not_sendable(
    action: Action, enrollment: Enrollment, campaign: Campaign, mailbox: Mailbox, now: datetime
) -> bool:
    if enrollment.status != EnrollmentStatus.SENDING:
        # Stopped (reply, unsubscribe, removal) after the reservation: nothing goes out.
        from warmysender.sequences.services import release_action

        release_action(action, now=now, error=f"enrollment is {enrollment.status}")
        return True
    if campaign.status != CampaignStatus.RUNNING:
        _give_back(action, enrollment, now=now, reason=f"campaign is {campaign.status}")
        return True
    if not mailbox.is_usable:
        _give_back(
            action,
            enrollment,
            now=now + timedelta(hours=1),
            reason=f"mailbox {mailbox.email} is {mailbox.status}",
        )
        return True
    entry = is_suppressed(enrollment.workspace, enrollment.prospect.email)
    if entry is not None:
        from warmysender.sequences.services import release_action

        release_action(action, now=now, error="suppressed")
        Action.objects.filter(pk=action.pk).update(
            state=ActionState.FAILED,
            error=f"suppressed ({entry.kind} {entry.value})",
            finished_at=now,
        )
        set_enrollment_status(
            enrollment,
            EnrollmentStatus.UNSUBSCRIBED,
            actor=SENDER,
            now=now,
            reason=f"on the suppression list ({entry.kind} {entry.value})",
            next_action_at=None,
            wait_reason="",
        )
        return True
    return False


def _park_for_template_fix(
    action: Action, enrollment: Enrollment, campaign: Campaign, problem: str, now: datetime
) -> None:
    from warmysender.sequences.services import release_action

    release_action(action, now=now, error=problem)
    set_enrollment_status(
        enrollment,
        EnrollmentStatus.PENDING_TEMPLATE_FIX,
        actor=SENDER,
        now=now,
        reason=problem,
        wait_reason=f"template needs a fix: {problem}"[:255],
    )
    log_event(
        campaign,
        "template_error",
        problem,
        now=now,
        reason="pending_template_fix",
        data={"enrollmentId": str(enrollment.pk)},
    )


def _variant(action: Action, enrollment: Enrollment) -> Variant:
    if action.variant is not None:
        return action.variant
    chosen = enrollment.variants.get(str(action.step.step_index))
    qs = Variant.objects.filter(step=action.step)
    return (qs.filter(pk=chosen).first() if chosen else None) or qs.order_by("label").first()  # type: ignore[return-value]


def build_message(
    action: Action,
    enrollment: Enrollment,
    campaign: Campaign,
    mailbox: Mailbox,
    inputs: RenderInputs,
) -> tuple[EmailMessage, str, str]:
    """The message, its Message-ID and its subject (reading them back from the message would
    parse the headers again)."""
    variant = inputs.variant
    sender = rendering.Sender(
        email=mailbox.email,
        name=mailbox.from_name,
        signature=mailbox.signature,
        signature_is_html=mailbox.signature_is_html,
    )
    context = rendering.prospect_context(enrollment.prospect, sender)
    # The same action always renders the same spintax choices, even if it is prepared twice.
    rendered = rendering.render_email(
        subject=variant.subject,
        body_html=variant.body_html,
        context=context,
        rng=random.Random(str(action.pk)),
    )
    threaded = action.step.same_thread and bool(enrollment.last_message_id)
    subject = rendered.subject
    # A follow-up without a subject of its own replies in the thread: "Re: <first subject>".
    if threaded and not subject:
        base = enrollment.thread_subject or subject
        subject = base if base.lower().startswith("re:") else f"Re: {base}"
    link = unsubscribe_url(enrollment)
    message = EmailMessage(policy=MESSAGE_POLICY)
    message["From"] = (
        formataddr((mailbox.from_name, mailbox.email)) if mailbox.from_name else mailbox.email
    )
    message["To"] = enrollment.prospect.email
    message["Subject"] = subject
    domain = mailbox.email.rsplit("@", 1)[-1]

    def raw(name: str, value: str) -> None:
        # ASCII headers go in as they are: parsing them into header objects costs more than
        # the rest of the message. (The generator still folds a line that is too long.)
        if value.isascii():
            message.set_raw(name, value)
        else:
            message[name] = value

    raw("Date", format_datetime(action.reserved_at or action.created_at))
    message_id = action.message_id or make_msgid(domain=domain)
    raw("Message-ID", message_id)
    if threaded:
        raw("In-Reply-To", enrollment.last_message_id)
        raw("References", enrollment.last_message_id)
    raw("List-Unsubscribe", f"<{link}>")
    raw("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
    # Ties what a server received back to the action row (reply matching, the fault oracle).
    raw("X-WarmySender-Action", str(action.pk))
    text = f"{rendered.text}\n\n--\nUnsubscribe: {link}\n"
    html = (
        # Tracking rewrites the body only: the unsubscribe link added after it stays as it is.
        f"{tracking.instrument(rendered.html, action=action, campaign=campaign, base=inputs.tracking_base)}"
        f'<p style="font-size:12px;color:#888"><a href="{link}">Unsubscribe</a></p>'
    )
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message, message_id, subject


def record_outcome(
    prepared: Prepared, result: SendResult, *, now: datetime, rng: random.Random, started: bool
) -> None:
    action, campaign, mailbox = prepared.action, prepared.campaign, prepared.mailbox
    if result.outcome == "sent":
        record_sent([Delivered(prepared, result, now)], rng=rng)
        return
    with transaction.atomic():
        # Only the `sending` marker must be durable before the hand-over. If this outcome's
        # commit were lost in a database crash the action would read `sending` again and the
        # watchdog would make it `unknown` — never a second send — so it need not wait for
        # the disk.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        enrollment = Enrollment.objects.select_for_update().get(pk=prepared.enrollment.pk)
        enrollment.prospect = prepared.enrollment.prospect
        enrollment.workspace = action.workspace
        if result.outcome == "unknown":
            Action.objects.filter(pk=action.pk).update(
                state=ActionState.UNKNOWN, finished_at=now, error=result.message[:2000]
            )
            set_enrollment_status(
                enrollment,
                EnrollmentStatus.NEEDS_REVIEW,
                actor=SENDER,
                now=now,
                reason=result.message,
                wait_reason="the server may have accepted the last email; mark it as sent or send it again",
                next_action_at=None,
            )
            log_event(
                campaign,
                "error",
                f"Outcome unknown for {enrollment.prospect.email}: {result.message}",
                now=now,
                reason="unknown_outcome",
            )
            return
        if result.outcome == "rejected":
            Action.objects.filter(pk=action.pk).update(
                state=ActionState.FAILED,
                finished_at=now,
                error=result.message[:2000],
                smtp_code=result.code,
            )
            set_enrollment_status(
                enrollment,
                EnrollmentStatus.FAILED,
                actor=SENDER,
                now=now,
                reason=f"refused by the server: {result.message}",
                failure_reason=f"refused by the server: {result.message}"[:2000],
                next_action_at=None,
                wait_reason="",
            )
            return
        # deferred or auth_failed: it never reached the server. Capacity back, try again later.
        if started:
            Action.objects.filter(pk=action.pk).update(state=ActionState.RESERVED)
        throttle = _throttle_backoff(mailbox, now)
        until = throttle.backoff_until or now + caps.BACKOFF_LADDER[0]
        from warmysender.sequences.services import release_action

        action.state = ActionState.RESERVED
        release_action(action, now=now, error=result.message[:2000])
        if result.outcome == "auth_failed":
            from warmysender.mailboxes import services as mailbox_services

            mailbox_services.set_status(
                mailbox, "error", error=result.message, actor=SENDER, now=now
            )
            until = now + engine.RETRY_WITHOUT_MAILBOX
            reason = f"mailbox {mailbox.email} could not log in: {result.message}"
        else:
            reason = f"temporary refusal ({result.message}); retry at {until:%H:%M} UTC"
        Enrollment.objects.filter(pk=enrollment.pk).update(
            status=EnrollmentStatus.PENDING,
            next_action_at=until,
            wait_reason=reason[:255],
            updated_at=now,
        )


def mark_params(prepared: Prepared, now: datetime) -> dict[str, Any]:
    return {
        "id": prepared.action.pk,
        "now": now,
        "message_id": prepared.message_id,
        "subject": prepared.subject,
    }


def execute_mark(raw_connection: Any, params: dict[str, Any]) -> bool:
    """Commit the `sending` marker (sql/mark_sending.sql) on `raw_connection` (psycopg,
    autocommit) if the send is still wanted; whether it was. Touches no ORM, so it may run on
    a helper thread."""
    with psycopg.Cursor(raw_connection) as cursor:
        cursor.execute(load("warmysender.sequences", "mark_sending"), params, prepare=True)
        return cursor.fetchone() is not None


def record_sent(deliveries: list[Delivered], *, rng: random.Random) -> None:
    """Record messages the server accepted, now, on this thread (sql/record_sent.sql)."""
    if not deliveries:
        return
    mailbox = deliveries[0].prepared.mailbox
    rows = [_sent_row(d, rng) for d in deliveries]
    connection.ensure_connection()
    paced = execute_record(connection.connection, record_params(rows, mailbox))
    after_record(deliveries, paced)


# The columns of sql/record_sent.sql, one array each.
_SENT_COLUMNS = (
    "action_ids", "workspace_ids", "enrollment_ids", "ats", "codes", "message_ids", "subjects",
    "statuses", "next_step_indexes", "next_action_ats", "wait_reasons", "finished_ats", "data",
    "completed_data",
)  # fmt: skip


def _sent_row(delivered: Delivered, rng: random.Random) -> tuple[Any, ...]:
    """One message's values for sql/record_sent.sql, in the order of _SENT_COLUMNS. Reads the
    campaign's steps (cached), so it runs on the sender's thread."""
    prepared, at = delivered.prepared, delivered.at
    action, enrollment = prepared.action, prepared.enrollment
    fields, _ = next_step_fields(enrollment.campaign_id, action.step.step_index, at, rng)
    data, completed_data = _sent_event_data(enrollment, action, prepared.message_id)
    return (
        action.pk,
        action.workspace_id,
        enrollment.pk,
        at,
        delivered.result.code or 250,
        prepared.message_id,
        prepared.subject,
        fields["status"],
        fields["next_step_index"],
        fields["next_action_at"],
        fields["wait_reason"],
        fields["finished_at"],
        json.dumps(data),
        json.dumps(completed_data),
    )


def record_params(rows: list[tuple[Any, ...]], mailbox: Mailbox) -> dict[str, Any]:
    columns = zip(*rows, strict=True)
    params: dict[str, Any] = {
        name: list(column) for name, column in zip(_SENT_COLUMNS, columns, strict=True)
    }
    params.update(mailbox_id=mailbox.pk, last_at=max(row[3] for row in rows), actor=SENDER.label)
    return params


def execute_record(raw_connection: Any, params: dict[str, Any]) -> bool:
    """Run sql/record_sent.sql on `raw_connection` (psycopg, autocommit); whether the mailbox's
    last send was moved on (False: it is on the backoff ladder, see after_record). Touches no
    ORM, so it may run on a helper thread."""
    with psycopg.Cursor(raw_connection) as cursor:
        cursor.execute(load("warmysender.sequences", "record_sent"), params, prepare=True)
        row = cursor.fetchone()
    assert row is not None
    return bool(row[1])


def after_record(deliveries: list[Delivered], paced: bool) -> None:
    if not paced:
        # On the backoff ladder: each success counts toward clearing it.
        for delivered in deliveries:
            with transaction.atomic():
                _throttle_success(delivered.prepared.mailbox, delivered.at)


class SentOutcomes:
    """Messages the server accepted whose outcome is not recorded yet. A due batch is recorded
    on the helper thread, behind the `sending` marker that gave the go-ahead, while this thread
    talks to the SMTP server; `wait` before this thread uses the database itself."""

    def __init__(
        self,
        raw_connection: Any,
        statements: ThreadPoolExecutor,
        mailbox: Mailbox,
        rng: random.Random,
    ) -> None:
        self.raw_connection = raw_connection
        self.statements = statements
        self.mailbox = mailbox
        self.rng = rng
        self.pending: list[Delivered] = []
        self.oldest = 0.0
        self.recording: tuple[Future[bool], list[Delivered]] | None = None

    def add(self, delivered: Delivered) -> None:
        if not self.pending:
            self.oldest = time.monotonic()
        self.pending.append(delivered)

    def record_if_due(self) -> None:
        """Hand the pending outcomes to the helper thread when there are enough of them or the
        oldest has waited long enough. Reads the campaign's steps (see `_sent_row`), so only
        while the helper has nothing running."""
        if not self.pending or (
            len(self.pending) < RECORD_BATCH
            and time.monotonic() - self.oldest < RECORD_EVERY_SECONDS
        ):
            return
        self.wait()
        deliveries, self.pending = self.pending, []
        params = record_params([_sent_row(d, self.rng) for d in deliveries], self.mailbox)
        future = start(self.statements, execute_record, self.raw_connection, params)
        self.recording = (future, deliveries)

    def wait(self) -> None:
        """Until the batch being recorded is (the helper leaves the connection alone)."""
        if self.recording is None:
            return
        future, deliveries = self.recording
        self.recording = None
        after_record(deliveries, future.result())

    def flush(self) -> None:
        """Record everything now, on this thread."""
        self.wait()
        if self.pending:
            deliveries, self.pending = self.pending, []
            record_sent(deliveries, rng=self.rng)


def _sent_event_data(
    enrollment: Enrollment, action: Action, message_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `email.sent` payload (also the audit row's data) and the completion audit's data."""
    sent = {
        "campaignId": str(enrollment.campaign_id),
        "prospectId": str(enrollment.prospect_id),
        "stepIndex": action.step.step_index,
        "messageId": message_id,
        "mailboxId": str(action.mailbox_id) if action.mailbox_id else None,
    }
    completed = {
        "campaignId": str(enrollment.campaign_id),
        "prospectId": str(enrollment.prospect_id),
    }
    return sent, completed


def next_step_fields(
    campaign_id: Any, step_index: int, now: datetime, rng: random.Random
) -> tuple[dict[str, Any], bool]:
    """Where a prospect goes after step `step_index` went out at `now`: the next step's delay
    plus jitter, clamped into the window — or the end of the sequence. (fields, completed)."""
    info = campaign_info(campaign_id)
    later = sorted(i for i in info.steps if i > step_index)
    if not later:
        return {
            "status": EnrollmentStatus.COMPLETED,
            "next_step_index": step_index + 1,
            "next_action_at": None,
            "wait_reason": "",
            "finished_at": now,
        }, True
    following = info.steps[later[0]]
    when, reason = engine.next_step_at(
        now,
        timedelta(days=following.delay_days, hours=following.delay_hours),
        info.window,
        rng,
        randomize=info.randomize,
    )
    return {
        "status": EnrollmentStatus.PENDING,
        "next_step_index": following.step_index,
        "next_action_at": when,
        "wait_reason": (reason or f"step {following.step_index} due")[:255],
        "finished_at": None,
    }, False


def _record_sent_events(
    enrollment: Enrollment, action: Action, now: datetime, message_id: str, *, completed: bool
) -> None:
    """The events of sql/record_sent.sql, for a step a person marked as sent."""
    data, completed_data = _sent_event_data(enrollment, action, message_id)
    emit_event(
        workspace=enrollment.workspace,
        type="email.sent",
        data=data,
        now=now,
        dedup_key=f"email.sent:{action.pk}",
    )
    record_audit(
        workspace=enrollment.workspace,
        actor=SENDER,
        action="action.sent",
        object_type="action",
        object_id=str(action.pk),
        from_state=ActionState.SENDING,
        to_state=ActionState.SENT,
        data=data,
        now=now,
    )
    if completed:
        record_audit(
            workspace=enrollment.workspace,
            actor=SENDER,
            action="enrollment.status_changed",
            object_type="enrollment",
            object_id=str(enrollment.pk),
            from_state=EnrollmentStatus.SENDING,
            to_state=EnrollmentStatus.COMPLETED,
            reason="sequence finished",
            data=completed_data,
            now=now,
        )


def advance_after_send(
    enrollment: Enrollment,
    action: Action,
    *,
    now: datetime,
    rng: random.Random,
    message_id: str = "",
    subject: str = "",
) -> None:
    """The step went out (a person marked an unknown send as sent): remember the thread, move
    to the next step or finish, with the same events as a send that went through."""
    message_id = message_id or action.message_id
    subject = subject or action.subject
    fields, completed = next_step_fields(enrollment.campaign_id, action.step.step_index, now, rng)
    moved = Enrollment.objects.filter(
        pk=enrollment.pk, status__in=[EnrollmentStatus.SENDING, EnrollmentStatus.NEEDS_REVIEW]
    ).update(
        **fields,
        last_message_id=message_id,
        thread_subject=Coalesce(NullIf(F("thread_subject"), Value("")), Value(subject)),
        last_sent_at=now,
        recovery_count=0,
        updated_at=now,
    )
    _record_sent_events(enrollment, action, now, message_id, completed=completed and moved > 0)


# Campaign settings and steps, per process, for a few seconds: a send run reads them once per
# campaign instead of once per message; an edit is seen by the next run.
_CAMPAIGN_INFO: dict[Any, tuple[float, CampaignInfo]] = {}
CAMPAIGN_INFO_SECONDS = 5.0


def campaign_info(campaign_id: Any) -> CampaignInfo:
    cached = _CAMPAIGN_INFO.get(campaign_id)
    if cached is not None and time.monotonic() - cached[0] < CAMPAIGN_INFO_SECONDS:
        return cached[1]
    campaign = Campaign.objects.get(pk=campaign_id)
    info = CampaignInfo(
        window=window_of(campaign),
        randomize=campaign.randomize_within_window,
        steps={s.step_index: s for s in campaign.steps.all()},
    )
    _CAMPAIGN_INFO[campaign_id] = (time.monotonic(), info)
    return info


def _throttle(mailbox: Mailbox) -> MailboxThrottle:
    throttle, _ = MailboxThrottle.objects.select_for_update().get_or_create(
        mailbox=mailbox, defaults={"workspace_id": mailbox.workspace_id}
    )
    return throttle


def _backoff_of(t: MailboxThrottle) -> caps.Backoff:
    return caps.Backoff(
        t.backoff_level, t.backoff_until, t.backoff_successes, t.backoff_window_started_at
    )


def _store_backoff(t: MailboxThrottle, b: caps.Backoff) -> None:
    t.backoff_level, t.backoff_until = b.level, b.until
    t.backoff_successes, t.backoff_window_started_at = b.successes, b.window_started_at


def _throttle_success(mailbox: Mailbox, now: datetime) -> None:
    # Off the ladder (the usual case) a success changes nothing but the last send time.
    if MailboxThrottle.objects.filter(mailbox=mailbox, backoff_level=0).update(last_sent_at=now):
        return
    t = _throttle(mailbox)
    _store_backoff(t, _backoff_of(t).after_success(now))
    t.last_sent_at = now
    t.save()


def _throttle_backoff(mailbox: Mailbox, now: datetime) -> MailboxThrottle:
    t = _throttle(mailbox)
    _store_backoff(t, _backoff_of(t).after_limit_hit(now))
    t.next_send_at = max(t.next_send_at or now, t.backoff_until or now)
    t.save()
    return t
