"""LinkedIn accounts, their state machine, caps and ramps."""
