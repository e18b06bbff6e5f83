"""Provider presets: the server settings and password advice for the common mail providers.

Choosing a provider fills the SMTP and IMAP host, port and security; the user can still change
them. `custom` fills nothing, `sandbox` is the provider of sandbox mailboxes (no servers).
"""

from __future__ import annotations

from dataclasses import dataclass

from warmysender.mailboxes.models import Security

SANDBOX = "sandbox"
CUSTOM = "custom"


@dataclass(frozen=True)
class Preset:
    code: str
    name: str
    smtp_host: str
    smtp_port: int | None
    smtp_security: str
    imap_host: str
    imap_port: int | None
    imap_security: str
    # What to type in the password field, shown under it.
    help_text: str
    # The advice given when the server refuses the log-in (see connection_test.hint_for).
    auth_help: str


_APP_PASSWORD_GENERIC = (
    "Check the username (your full email address) and the password. If your provider requires "
    "an App Password for mail apps, generate a fresh one and paste it without spaces around it."
)

PRESETS: dict[str, Preset] = {
    preset.code: preset
    for preset in (
        Preset(
            code="gmail",
            name="Gmail / Google Workspace",
            smtp_host="smtp.gmail.com",
            smtp_port=587,
            smtp_security=Security.STARTTLS,
            imap_host="imap.gmail.com",
            imap_port=993,
            imap_security=Security.SSL,
            help_text=(
                "Use an App Password, not your Google password: turn on 2-Step Verification, "
                "then create one at myaccount.google.com/apppasswords. The username is your full "
                "Gmail address."
            ),
            auth_help=(
                "Gmail refused the log-in. Use an App Password, not your regular Google password: "
                "2-Step Verification must be on, then generate one for 'Mail' at "
                "https://myaccount.google.com/apppasswords and paste the 16 characters here. "
                "Changing your Google password revokes every App Password."
            ),
        ),
        Preset(
            code="outlook",
            name="Outlook / Microsoft 365",
            smtp_host="smtp.office365.com",
            smtp_port=587,
            smtp_security=Security.STARTTLS,
            imap_host="outlook.office365.com",
            imap_port=993,
            imap_security=Security.SSL,
            help_text=(
                "Use an App Password (account.live.com/proofs/AppPassword, or your Microsoft 365 "
                "admin portal). Your admin must allow Authenticated SMTP for the mailbox."
            ),
            auth_help=(
                "Microsoft refused the log-in. Generate an App Password at "
                "https://account.live.com/proofs/AppPassword (or via your Microsoft 365 admin "
                "portal) and make sure 'Authenticated SMTP' is enabled for the user (Admin "
                "Center → Users → Active users → Mail → Manage email apps). App Passwords expire "
                "after 90 days without use. If the error mentions 5.7.14, sign in to Outlook on "
                "the web first and complete any security prompts."
            ),
        ),
        Preset(
            code="yahoo",
            name="Yahoo Mail",
            smtp_host="smtp.mail.yahoo.com",
            smtp_port=465,
            smtp_security=Security.SSL,
            imap_host="imap.mail.yahoo.com",
            imap_port=993,
            imap_security=Security.SSL,
            help_text=(
                "Use an App Password: create one under 'App Passwords' at "
                "login.yahoo.com/account/security. The username is your full Yahoo address."
            ),
            auth_help=(
                "Yahoo refused the log-in. You must use an App Password: generate one under "
                "'App Passwords' at https://login.yahoo.com/account/security, and use your full "
                "Yahoo address as the username."
            ),
        ),
        *(
            Preset(
                code=f"zoho_{region}",
                name=f"Zoho Mail (.{region})",
                smtp_host=f"smtp.zoho.{region}",
                smtp_port=465,
                smtp_security=Security.SSL,
                imap_host=f"imap.zoho.{region}",
                imap_port=993,
                imap_security=Security.SSL,
                help_text=(
                    "Your regular Zoho password works unless two-factor authentication is on; "
                    "then create an App Password at accounts.zoho.com → Security → App "
                    f"Passwords. Pick the region of your account (zoho.{region})."
                ),
                auth_help=(
                    "Zoho refused the log-in. If two-factor authentication is on, generate an "
                    "App Password at https://accounts.zoho.com/home#security/security_apppassword; "
                    "otherwise use your regular Zoho password. Check that the region "
                    f"(smtp.zoho.{region}) is the one of your account."
                ),
            )
            for region in ("com", "eu", "in")
        ),
        Preset(
            code="hostinger",
            name="Hostinger",
            smtp_host="smtp.hostinger.com",
            smtp_port=465,
            smtp_security=Security.SSL,
            imap_host="imap.hostinger.com",
            imap_port=993,
            imap_security=Security.SSL,
            help_text=(
                "Use your regular email password (not an App Password). The username is your "
                "full email address."
            ),
            auth_help=(
                "Hostinger refused the log-in. Use your regular email password (not an App "
                "Password), your full email address as the username, and smtp.hostinger.com "
                "(not mail.yourdomain.com) as the host. After a password change, wait a few "
                "minutes."
            ),
        ),
        Preset(
            code=CUSTOM,
            name="Other (custom IMAP/SMTP)",
            smtp_host="",
            smtp_port=None,
            smtp_security=Security.STARTTLS,
            imap_host="",
            imap_port=None,
            imap_security=Security.SSL,
            help_text=(
                "Ask your provider for the SMTP and IMAP host, port and security. Port 465 is "
                "SSL/TLS and 587 is STARTTLS; they are not interchangeable."
            ),
            auth_help=_APP_PASSWORD_GENERIC,
        ),
    )
}

# Every code a mailbox may carry, in the order the Add mailbox page lists them.
PROVIDER_CODES: tuple[str, ...] = (*PRESETS, SANDBOX)
PRESET_PROVIDERS: tuple[str, ...] = tuple(code for code in PRESETS if code != CUSTOM)

DEFAULT_PORTS = {
    "smtp": {Security.SSL: 465, Security.STARTTLS: 587, Security.NONE: 25},
    "imap": {Security.SSL: 993, Security.STARTTLS: 143, Security.NONE: 143},
}


def get_preset(code: str) -> Preset:
    """The preset of a provider code; `sandbox` and unknown codes fall back to `custom`."""
    return PRESETS.get(code, PRESETS[CUSTOM])


def default_port(protocol: str, security: str) -> int:
    """The usual port for a protocol (`smtp` or `imap`) under a security mode."""
    return DEFAULT_PORTS[protocol][Security(security)]


def provider_choices() -> list[tuple[str, str]]:
    return [(p.code, p.name) for p in PRESETS.values()] + [(SANDBOX, "Sandbox (no real mail)")]
