"""The background worker: ``python -m coachops_runtime.worker`` runs every poller until SIGTERM.

Today its one poller delivers the e-mail outbox (``coachops_runtime.mail``).
"""
