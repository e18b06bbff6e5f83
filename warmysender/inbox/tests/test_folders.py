"""Finding the spam folder in providers' LIST answers (the special-use flag first, then names)."""

from __future__ import annotations

import pytest

from warmysender.email.imap_sync import find_folders


@pytest.mark.parametrize(
    ("listing", "spam"),
    [
        (  # Gmail: flagged, under [Gmail]
            [
                ((b"\\HasNoChildren",), b"/", "INBOX"),
                ((b"\\HasChildren", b"\\Noselect"), b"/", "[Gmail]"),
                ((b"\\HasNoChildren", b"\\Junk"), b"/", "[Gmail]/Spam"),
                ((b"\\HasNoChildren", b"\\Sent"), b"/", "[Gmail]/Sent Mail"),
            ],
            "[Gmail]/Spam",
        ),
        (  # Outlook without special-use flags
            [((), b"/", "INBOX"), ((), b"/", "Sent Items"), ((), b"/", "Junk Email")],
            "Junk Email",
        ),
        (  # Yahoo
            [((), b"/", "Inbox"), ((), b"/", "Bulk Mail"), ((), b"/", "Draft")],
            "Bulk Mail",
        ),
        (  # a dot-separated server, a flag beating an earlier name
            [((), b".", "INBOX.Spam"), ((b"\\Junk",), b".", "INBOX.Quarantine")],
            "INBOX.Quarantine",
        ),
        (  # no spam folder at all; "Spammy ideas" is not one
            [((), b"/", "INBOX"), ((), b"/", "Spammy ideas")],
            None,
        ),
        (  # a \Noselect container named Junk is never selected
            [((b"\\Noselect",), b"/", "Junk")],
            None,
        ),
    ],
)
def test_inbox_and_the_spam_folder_are_found(
    listing: list[tuple[tuple[bytes, ...], bytes, str]], spam: str | None
) -> None:
    expected = [("INBOX", False)] + ([(spam, True)] if spam else [])
    assert find_folders(listing) == expected
