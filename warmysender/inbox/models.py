"""Inbound messages across channels and the IMAP sync state."""
