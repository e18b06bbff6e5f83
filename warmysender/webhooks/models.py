"""Outgoing webhooks: endpoints and their deliveries."""
