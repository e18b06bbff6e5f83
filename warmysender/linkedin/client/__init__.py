"""Talking to Unipile (API v1): the protocol our code depends on and its httpx implementation.

    client = UnipileClient(dsn="api13.unipile.com:14376", api_key=key)
    result = client.send_invitation(account_id, provider_id, note="Hi Ann")
    if isinstance(result, Failure):
        ...  # result.kind says what the engine may do next
    else:
        result.invitation_id

Nothing here raises for what Unipile or the network does: every call answers its typed result or
a `Failure` whose `kind` the engine acts on (see `FailureKind`). At most once matters more than
anything else for invites and messages, so the kinds separate what certainly did not happen
(`network`: the connection was never made) from what may have (`timeout`: the request went out
and no answer came back; the engine marks the action `unknown` and never retries it).

Retries happen here only where repeating cannot act twice: GETs (and the hosted-auth link, which
only mints a URL) are retried on 429/5xx/network errors with a short backoff. A POST that sends an
invite, a message, an InMail or a reaction is made exactly once.

Django-free on purpose: the simulator's tests and the CLI use it without settings.
"""

from warmysender.linkedin.client.errors import failure_from_response
from warmysender.linkedin.client.http import (
    UnipileClient,
    base_url_for,
    parse_account,
    parse_chat,
    parse_message,
    parse_own_profile,
    parse_profile,
    parse_relation,
    parse_sent_invitation,
)
from warmysender.linkedin.client.protocol import UnipileApi, fetch_all
from warmysender.linkedin.client.results import (
    INVITATION_NOTE_MAX_CHARS,
    SOURCE_STATUSES,
    USAGE_THRESHOLDS,
    Account,
    AccountConnected,
    Chat,
    ChatStarted,
    CheckpointRequired,
    CheckpointType,
    ConnectOutcome,
    CookieLogin,
    CredentialsLogin,
    Done,
    Failure,
    FailureKind,
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
    SourceStatus,
    UserProfile,
)

__all__ = [
    "INVITATION_NOTE_MAX_CHARS",
    "SOURCE_STATUSES",
    "USAGE_THRESHOLDS",
    "Account",
    "AccountConnected",
    "Chat",
    "ChatStarted",
    "CheckpointRequired",
    "CheckpointType",
    "ConnectOutcome",
    "CookieLogin",
    "CredentialsLogin",
    "Done",
    "Failure",
    "FailureKind",
    "HostedAuthLink",
    "InvitationSent",
    "LinkedInApi",
    "Login",
    "Message",
    "MessageSent",
    "OwnProfile",
    "Page",
    "Proxy",
    "ReactionType",
    "Relation",
    "Result",
    "SentInvitation",
    "SourceStatus",
    "UnipileApi",
    "UnipileClient",
    "UserProfile",
    "base_url_for",
    "failure_from_response",
    "fetch_all",
    "parse_account",
    "parse_chat",
    "parse_message",
    "parse_own_profile",
    "parse_profile",
    "parse_relation",
    "parse_sent_invitation",
]
