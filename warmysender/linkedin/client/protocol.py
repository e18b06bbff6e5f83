"""The small protocol our code depends on (`UnipileClient` and any fake implement it)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from warmysender.linkedin.client.results import (
    Account,
    Chat,
    ChatStarted,
    ConnectOutcome,
    Done,
    Failure,
    HostedAuthLink,
    InvitationSent,
    LinkedInApi,
    Login,
    Message,
    MessageSent,
    OwnProfile,
    Page,
    Proxy,
    ReactionType,
    Relation,
    Result,
    SentInvitation,
    T,
    UserProfile,
)


class UnipileApi(Protocol):
    def list_accounts(
        self, *, cursor: str | None = None, limit: int | None = None
    ) -> Result[Page[Account]]: ...

    def get_account(self, account_id: str) -> Result[Account]: ...

    def account_status(self, account_id: str) -> Result[str]:
        """The account's source status; 404 answers `account_not_found` (a strike)."""
        ...

    def create_hosted_auth_link(
        self,
        *,
        expires_on: datetime,
        name: str,
        notify_url: str,
        success_redirect_url: str,
        failure_redirect_url: str,
        reconnect_account: str | None = None,
    ) -> Result[HostedAuthLink]: ...

    def connect(
        self, login: Login, *, proxy: Proxy | None = None, country: str | None = None
    ) -> Result[ConnectOutcome]: ...

    def reconnect(
        self,
        account_id: str,
        login: Login,
        *,
        proxy: Proxy | None = None,
        country: str | None = None,
    ) -> Result[ConnectOutcome]: ...

    def solve_checkpoint(self, account_id: str, code: str) -> Result[ConnectOutcome]: ...

    def resend_checkpoint(self, account_id: str) -> Result[Done]: ...

    def delete_account(self, account_id: str) -> Result[Done]: ...

    def get_profile(
        self, account_id: str, identifier: str, *, sections: Sequence[str] = ()
    ) -> Result[UserProfile]: ...

    def get_own_profile(self, account_id: str) -> Result[OwnProfile]: ...

    def send_invitation(
        self,
        account_id: str,
        provider_id: str,
        *,
        note: str | None = None,
        user_email: str | None = None,
    ) -> Result[InvitationSent]: ...

    def list_sent_invitations(
        self, account_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Result[Page[SentInvitation]]: ...

    def withdraw_invitation(self, account_id: str, invitation_id: str) -> Result[Done]: ...

    def list_relations(
        self, account_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Result[Page[Relation]]: ...

    def list_chats(
        self, account_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Result[Page[Chat]]: ...

    def list_messages(
        self, chat_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Result[Page[Message]]: ...

    def send_message(self, chat_id: str, text: str) -> Result[MessageSent]: ...

    def start_chat(
        self, account_id: str, attendee_provider_id: str, text: str
    ) -> Result[ChatStarted]: ...

    def send_inmail(
        self,
        account_id: str,
        attendee_provider_id: str,
        *,
        subject: str,
        text: str,
        api: LinkedInApi = "classic",
    ) -> Result[ChatStarted]: ...

    def react_to_post(
        self, account_id: str, post_id: str, reaction: ReactionType = "like"
    ) -> Result[Done]: ...


def fetch_all(
    fetch_page: Callable[[str | None], Result[Page[T]]], *, max_pages: int = 100
) -> Result[list[T]]:
    """Follow cursors until the last page: `fetch_all(lambda c: client.list_relations(a, cursor=c))`.
    A failure on any page answers that failure (no partial list passes for a complete one)."""
    items: list[T] = []
    cursor: str | None = None
    for _ in range(max_pages):
        page = fetch_page(cursor)
        if isinstance(page, Failure):
            return page
        items.extend(page.items)
        if not page.cursor:
            return items
        cursor = page.cursor
    return Failure("unknown", detail=f"more than {max_pages} pages; stopped following cursors")
