"""The simulated LinkedIn network around each account: people, invitations, relations, chats
and messages, with the provider limits and recipient states that shape Unipile's answers."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from warmysender.linkedin.simulator.errors import ApiError
from warmysender.linkedin.simulator.records import (
    REINVITE_LOCK,
    USAGE_THRESHOLDS,
    ChatMessage,
    Invitation,
    Person,
    SimAccount,
    SimChat,
    _id,
    _iso,
    _member_id,
)
from warmysender.linkedin.simulator.webhooks import Dispatcher


class NetworkMixin:
    """Part of `SimulatorState` (split for size); it relies on the state's lock and records."""

    lock: threading.RLock
    dispatcher: Dispatcher
    accounts: dict[str, SimAccount]
    people: dict[str, Person]
    invitations: dict[str, Invitation]
    chats: dict[str, SimChat]

    # Declared for the type checker; SimulatorState, which mixes this class in, defines them.
    def now(self) -> datetime:
        raise NotImplementedError

    def account(self, account_id: str | None) -> SimAccount:
        raise NotImplementedError

    def usable_account(self, account_id: str | None) -> SimAccount:
        raise NotImplementedError

    # -- people -----------------------------------------------------------------------------

    def person(self, identifier: str) -> Person:
        """Anyone can be looked up: unknown identifiers become a person on first sight, so a
        demo can invite any profile URL's slug."""
        with self.lock:
            if identifier in self.people:
                return self.people[identifier]
            for p in self.people.values():
                if p.public_identifier == identifier:
                    return p
            if identifier.startswith(("ACo", "ACw", "AE")):
                provider_id, slug = identifier, "member-" + identifier[-8:].lower()
            else:
                provider_id, slug = _member_id(identifier), identifier
            words = [w for w in slug.replace("_", "-").split("-") if w] or ["someone"]
            person = Person(
                provider_id=provider_id,
                public_identifier=slug,
                first_name=words[0].capitalize(),
                last_name=" ".join(w.capitalize() for w in words[1:]),
                headline="Professional at Example Corp",
            )
            self.people[provider_id] = person
            return person

    def add_person(self, data: dict[str, Any]) -> Person:
        slug = str(data.get("public_identifier") or "").strip()
        if not slug:
            raise ApiError("missing_parameters", "public_identifier is required")
        flags = set(data.get("flags") or [])
        known = {
            "cannot_invite_attendee",
            "not_allowed_inmail",
            "user_unreachable",
            "blocked_recipient",
            "open_profile",
            "premium",
        }
        if flags - known:
            raise ApiError(
                "invalid_parameters",
                f"unknown flags {sorted(flags - known)}; known: {sorted(known)}",
            )
        with self.lock:
            person = Person(
                provider_id=str(data.get("provider_id") or _member_id(slug)),
                public_identifier=slug,
                first_name=str(data.get("first_name") or slug.split("-")[0].capitalize()),
                last_name=str(data.get("last_name") or ""),
                headline=str(data.get("headline") or ""),
                flags=flags,
            )
            self.people[person.provider_id] = person
            return person

    # -- users, invitations, relations ------------------------------------------------------

    def profile(self, account_id: str, identifier: str) -> dict[str, Any]:
        with self.lock:
            acct = self.usable_account(account_id)
            now = self.now()
            views = [t for t in acct.profile_views if t.date() == now.date()]
            if len(views) >= acct.limits.profile_views_per_day:
                raise ApiError(
                    "too_many_requests", "Daily profile visit limit reached for this account."
                )
            person = self.person(identifier)
            acct.profile_views = [*views, now]
            pending = self._pending_invitation(acct.id, person.provider_id)
            connected = person.provider_id in acct.relations
            return {
                "object": "UserProfile",
                "provider": "LINKEDIN",
                "provider_id": person.provider_id,
                "public_identifier": person.public_identifier,
                "first_name": person.first_name,
                "last_name": person.last_name,
                "headline": person.headline,
                "is_open_profile": "open_profile" in person.flags,
                "is_premium": "premium" in person.flags,
                "is_relationship": connected,
                "network_distance": "FIRST_DEGREE" if connected else "SECOND_DEGREE",
                "invitation": {"type": "SENT", "status": "PENDING"} if pending else None,
                "skills": [],
            }

    def own_profile(self, account_id: str) -> dict[str, Any]:
        with self.lock:
            acct = self.account(account_id)
            seat = {"owner_seat_id": "sim-seat", "contract_id": "sim-contract"}
            return {
                "object": "AccountOwnerProfile",
                "provider": "LINKEDIN",
                "provider_id": acct.owner.provider_id,
                "public_identifier": acct.owner.public_identifier,
                "first_name": acct.owner.first_name,
                "last_name": acct.owner.last_name,
                "email": acct.username if "@" in acct.username else None,
                "premium": "premium" in acct.premium_features,
                "open_profile": False,
                "organizations": [],
                "sales_navigator": seat if "sales_navigator" in acct.premium_features else None,
                "recruiter": seat if "recruiter" in acct.premium_features else None,
            }

    def _pending_invitation(self, account_id: str, provider_id: str) -> Invitation | None:
        for inv in self.invitations.values():
            if (
                inv.account_id == account_id
                and inv.provider_id == provider_id
                and inv.status == "PENDING"
            ):
                return inv
        return None

    def invite(self, body: dict[str, Any]) -> dict[str, Any]:
        provider_id = str(body.get("provider_id") or "").strip()
        if not provider_id:
            raise ApiError("missing_parameters", "provider_id is required")
        if "provider_messaging_id" in body:
            raise ApiError(
                "invalid_parameters", "provider_messaging_id is not accepted; send provider_id"
            )
        note = body.get("message")
        if note is not None and len(str(note)) > 300:
            raise ApiError(
                "too_many_characters", "The invitation message is limited to 300 characters."
            )
        with self.lock:
            acct = self.usable_account(str(body.get("account_id") or ""))
            person = self.person(provider_id)
            now = self.now()
            if person.provider_id in acct.relations:
                raise ApiError("already_connected", "You are already connected to this person.")
            if self._pending_invitation(acct.id, person.provider_id):
                raise ApiError("already_invited_recently", "An invitation is already pending.")
            for inv in self.invitations.values():
                if (
                    inv.account_id == acct.id
                    and inv.provider_id == person.provider_id
                    and inv.status == "WITHDRAWN"
                    and inv.changed_at
                    and now - inv.changed_at < REINVITE_LOCK
                ):
                    raise ApiError(
                        "already_invited_recently",
                        "A withdrawn invitation blocks re-inviting for 3 weeks.",
                    )
            for flag in ("cannot_invite_attendee", "user_unreachable", "blocked_recipient"):
                if flag in person.flags:
                    raise ApiError(flag)
            week = [t for t in acct.invites_sent if now - t < timedelta(days=7)]
            today = [t for t in week if t.date() == now.date()]
            if (
                len(today) >= acct.limits.invites_per_day
                or len(week) >= acct.limits.invites_per_week
            ):
                raise ApiError(acct.limits.mode)
            before = len(week) * 100 // max(1, acct.limits.invites_per_week)
            acct.invites_sent = [*week, now]
            after = (len(week) + 1) * 100 // max(1, acct.limits.invites_per_week)
            inv = Invitation(_id(12), acct.id, person.provider_id, str(note or ""), now)
            self.invitations[inv.id] = inv
            answer: dict[str, Any] = {"object": "UserInvitationSent", "invitation_id": inv.id}
            if any(before < t <= after for t in USAGE_THRESHOLDS):
                answer["usage"] = after
            return answer

    def sent_invitations(self, account_id: str) -> list[dict[str, Any]]:
        with self.lock:
            acct = self.account(account_id)
            rows = sorted(
                (
                    i
                    for i in self.invitations.values()
                    if i.account_id == acct.id and i.status == "PENDING"
                ),
                key=lambda i: i.sent_at,
                reverse=True,
            )
            return [self._invitation_json(acct, i) for i in rows]

    def _invitation_json(self, acct: SimAccount, inv: Invitation) -> dict[str, Any]:
        person = self.person(inv.provider_id)
        return {
            "object": "InvitationSent",
            "id": inv.id,
            "invited_user": f"{person.first_name} {person.last_name}".strip(),
            "invited_user_id": person.provider_id,
            "invited_user_public_id": person.public_identifier,
            "invited_user_description": person.headline,
            "date": _iso(inv.sent_at),
            "parsed_datetime": _iso(inv.sent_at),
            "invitation_text": inv.note,
            "inviter": {"inviter_id": acct.owner.provider_id},
            "specifics": {"provider": "LINKEDIN"},
        }

    def withdraw(self, account_id: str, invitation_id: str) -> None:
        with self.lock:
            acct = self.usable_account(account_id)
            inv = self.invitations.get(invitation_id)
            if inv is None or inv.account_id != acct.id or inv.status != "PENDING":
                raise ApiError("resource_not_found", "Invitation not found.")
            inv.status, inv.changed_at = "WITHDRAWN", self.now()

    def resolve_invitation(
        self, invitation_id: str, *, accept: bool, also_on: Iterable[str] = ()
    ) -> Invitation:
        """The invitee answers. Accepting adds the relation and sends `new_relation` (also on the
        sibling accounts named, as Unipile's tenant-wide fan-out was seen doing)."""
        with self.lock:
            inv = self.invitations.get(invitation_id)
            if inv is None:
                raise ApiError("resource_not_found", "Invitation not found.")
            if inv.status != "PENDING":
                raise ApiError("invalid_parameters", f"the invitation is {inv.status}, not PENDING")
            inv.changed_at = self.now()
            if not accept:
                inv.status = "IGNORED"
                return inv
            inv.status = "ACCEPTED"
            person = self.person(inv.provider_id)
            self.accounts[inv.account_id].relations[person.provider_id] = inv.changed_at
            for account_id in [inv.account_id, *also_on]:
                self.account(account_id)
                self.dispatcher.emit(
                    "users",
                    {
                        "event": "new_relation",
                        "account_id": account_id,
                        "account_type": "LINKEDIN",
                        "webhook_name": "users",
                        "user_full_name": f"{person.first_name} {person.last_name}".strip(),
                        "user_provider_id": person.provider_id,
                        "user_public_identifier": person.public_identifier,
                        "user_profile_url": f"https://www.linkedin.com/in/{person.public_identifier}",
                        "user_picture_url": None,
                    },
                    account_id=account_id,
                )
            return inv

    def relations(self, account_id: str) -> list[dict[str, Any]]:
        with self.lock:
            acct = self.account(account_id)
            rows = sorted(acct.relations.items(), key=lambda kv: kv[1], reverse=True)
            out = []
            for provider_id, at in rows:
                p = self.person(provider_id)
                out.append(
                    {
                        "object": "UserRelation",
                        "first_name": p.first_name,
                        "last_name": p.last_name,
                        "headline": p.headline,
                        "public_identifier": p.public_identifier,
                        "public_profile_url": f"https://www.linkedin.com/in/{p.public_identifier}",
                        "created_at": int(at.timestamp() * 1000),
                        "member_id": p.provider_id,
                        "member_urn": f"urn:li:member:{abs(hash(p.provider_id)) % 10**9}",
                        "connection_urn": f"urn:li:fsd_connection:{p.provider_id}",
                        "profile_picture_url": None,
                    }
                )
            return out

    def add_relation(self, account_id: str, identifier: str) -> Person:
        with self.lock:
            acct = self.account(account_id)
            person = self.person(identifier)
            acct.relations[person.provider_id] = self.now()
            return person

    # -- chats and messages -----------------------------------------------------------------

    def _chat_json(self, chat: SimChat) -> dict[str, Any]:
        return {
            "object": "Chat",
            "id": chat.id,
            "account_id": chat.account_id,
            "account_type": "LINKEDIN",
            "provider_id": f"2-{chat.id}",
            "attendee_provider_id": chat.attendee.provider_id,
            "name": f"{chat.attendee.first_name} {chat.attendee.last_name}".strip(),
            "type": 0,
            "timestamp": _iso(chat.last_at),
            "unread_count": chat.unread,
            "subject": chat.subject,
            "content_type": "inmail" if chat.inmail else None,
        }

    def _message_json(self, m: ChatMessage) -> dict[str, Any]:
        return {
            "object": "Message",
            "id": m.id,
            "chat_id": m.chat_id,
            "sender_id": m.sender_id,
            "text": m.text,
            "timestamp": _iso(m.at),
            "is_sender": 1 if m.is_sender else 0,
            "attachments": [],
        }

    def chat_list(self, account_id: str) -> list[dict[str, Any]]:
        with self.lock:
            acct = self.account(account_id)
            chats = sorted(
                (c for c in self.chats.values() if c.account_id == acct.id),
                key=lambda c: c.last_at,
                reverse=True,
            )
            return [self._chat_json(c) for c in chats]

    def chat(self, chat_id: str) -> SimChat:
        with self.lock:
            chat = self.chats.get(chat_id)
            if chat is None:
                raise ApiError("resource_not_found", f"Chat {chat_id} not found.")
            return chat

    def messages(self, chat_id: str) -> list[dict[str, Any]]:
        with self.lock:
            chat = self.chat(chat_id)
            self.account(chat.account_id)
            return [self._message_json(m) for m in reversed(chat.messages)]

    def _count_message(self, acct: SimAccount) -> None:
        now = self.now()
        today = [t for t in acct.messages_sent if t.date() == now.date()]
        if len(today) >= acct.limits.messages_per_day:
            raise ApiError("limit_exceeded", "Daily message limit reached for this account.")
        acct.messages_sent = [*today, now]

    def _post(self, chat: SimChat, sender: Person, text: str, *, own: bool) -> ChatMessage:
        msg = ChatMessage(_id(12), chat.id, sender.provider_id, text, self.now(), own)
        chat.messages.append(msg)
        if not own:
            chat.unread += 1
        acct = self.accounts[chat.account_id]
        # Unipile echoes the account's own sends as message_received too (spec §5.5).
        self.dispatcher.emit(
            "messaging",
            {
                "account_id": acct.id,
                "account_type": "LINKEDIN",
                "account_info": {"type": "LINKEDIN", "user_id": acct.owner.provider_id},
                "event": "message_received",
                "chat_id": chat.id,
                "timestamp": _iso(msg.at),
                "webhook_name": "messaging",
                "message_id": msg.id,
                "message": text,
                "sender": {
                    "attendee_id": _member_id("att:" + sender.provider_id)[5:21],
                    "attendee_name": f"{sender.first_name} {sender.last_name}".strip(),
                    "attendee_provider_id": sender.provider_id,
                    "attendee_profile_url": f"https://www.linkedin.com/in/{sender.public_identifier}",
                },
                "attendees": [
                    {
                        "attendee_provider_id": p.provider_id,
                        "attendee_name": f"{p.first_name} {p.last_name}".strip(),
                    }
                    for p in (acct.owner, chat.attendee)
                ],
                "attachments": [],
            },
            account_id=acct.id,
        )
        return msg

    def send_message(self, chat_id: str, text: str) -> dict[str, Any]:
        if not text.strip():
            raise ApiError("missing_parameters", "text is required")
        with self.lock:
            chat = self.chat(chat_id)
            acct = self.usable_account(chat.account_id)
            self._count_message(acct)
            msg = self._post(chat, acct.owner, text, own=True)
            return {"object": "MessageSent", "message_id": msg.id}

    def start_chat(self, fields: dict[str, list[str]]) -> dict[str, Any]:
        def one(name: str) -> str | None:
            values = fields.get(name)
            return values[0] if values else None

        attendees = fields.get("attendees_ids[]") or fields.get("attendees_ids") or []
        text = one("text") or ""
        if not attendees:
            raise ApiError("missing_parameters", "attendees_ids is required")
        if not text.strip():
            raise ApiError("missing_parameters", "text is required")
        api = one("linkedin[api]") or "classic"
        inmail = one("linkedin[inmail]") == "true" or api in ("sales_navigator", "recruiter")
        subject = one("subject")
        if api == "sales_navigator" and not subject:
            raise ApiError("missing_parameters", "subject is required for Sales Navigator messages")
        if subject and len(subject) > 200:
            raise ApiError("too_many_characters", "InMail subjects are limited to 200 characters.")
        if inmail and len(text) > 2000:
            raise ApiError("too_many_characters", "InMail bodies are limited to 2000 characters.")
        with self.lock:
            acct = self.usable_account(one("account_id"))
            person = self.person(attendees[0])
            if "user_unreachable" in person.flags or "blocked_recipient" in person.flags:
                raise ApiError(
                    "user_unreachable"
                    if "user_unreachable" in person.flags
                    else "blocked_recipient"
                )
            existing = next(
                (
                    c
                    for c in self.chats.values()
                    if c.account_id == acct.id and c.attendee is person
                ),
                None,
            )
            if inmail:
                if api == "sales_navigator" and "sales_navigator" not in acct.premium_features:
                    raise ApiError(
                        "feature_not_subscribed", "This account has no Sales Navigator seat."
                    )
                if api == "recruiter" and "recruiter" not in acct.premium_features:
                    raise ApiError("feature_not_subscribed", "This account has no Recruiter seat.")
                if "not_allowed_inmail" in person.flags:
                    raise ApiError("not_allowed_inmail", "This person does not accept InMails.")
                if "open_profile" not in person.flags:
                    if acct.limits.inmail_credits <= 0:
                        raise ApiError("insufficient_credits", "No InMail credits left.")
                    acct.limits.inmail_credits -= 1
            elif person.provider_id not in acct.relations:
                raise ApiError(
                    "no_connection_with_recipient", "You are not connected to this person."
                )
            self._count_message(acct)
            chat = existing if existing and not inmail else None
            if chat is None:
                chat = SimChat(_id(12), acct.id, person, subject=subject, inmail=inmail)
                self.chats[chat.id] = chat
            msg = self._post(chat, acct.owner, text, own=True)
            return {"object": "ChatStarted", "chat_id": chat.id, "message_id": msg.id}

    def inbound(self, account_id: str, sender: str, text: str) -> dict[str, Any]:
        """Someone writes to the account (control API): a chat message and `message_received`."""
        if not text.strip():
            raise ApiError("missing_parameters", "text is required")
        with self.lock:
            acct = self.account(account_id)
            person = self.person(sender)
            chat = next(
                (
                    c
                    for c in self.chats.values()
                    if c.account_id == acct.id and c.attendee is person and not c.inmail
                ),
                None,
            )
            if chat is None:
                chat = SimChat(_id(12), acct.id, person)
                self.chats[chat.id] = chat
            msg = self._post(chat, person, text, own=False)
            return {
                "chat_id": chat.id,
                "message_id": msg.id,
                "sender_provider_id": person.provider_id,
            }

    def react(self, body: dict[str, Any]) -> None:
        post_id = str(body.get("post_id") or "")
        reaction = body.get("reaction_type") or "like"
        if not post_id:
            raise ApiError("missing_parameters", "post_id is required")
        if reaction not in ("like", "celebrate", "support", "love", "insightful", "funny"):
            raise ApiError(
                "invalid_parameters",
                "reaction_type must be like, celebrate, support, love, insightful or funny",
            )
        with self.lock:
            acct = self.usable_account(str(body.get("account_id") or ""))
            if post_id in acct.reactions:
                raise ApiError("action_already_performed", "You already reacted to this post.")
            acct.reactions.add(post_id)
