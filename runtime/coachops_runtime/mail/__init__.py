"""E-mail delivery: the outbox rows the API queues, rendered and sent over SMTP by the worker."""
