"""Tracking hits, first-open/first-click events and custom tracking domains."""
