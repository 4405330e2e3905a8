"""The proactive engine: scheduled check-ins in each end user's time zone, inactivity
nudges and goal follow-ups, sent through the conversation (and so the channel outbox) once
per occurrence, under the program's rules (docs/proactive.md)."""
