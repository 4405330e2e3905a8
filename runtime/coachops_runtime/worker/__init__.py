"""The background worker: ``python -m coachops_runtime.worker`` runs every poller until SIGTERM.

Its pollers deliver the e-mail outbox (``coachops_runtime.mail``) and ingest knowledge
documents (``coachops_runtime.knowledge.ingest``, when Ollama and Chroma are configured)
and generate AI replies (``coachops_runtime.ai.worker``), send proactive check-ins,
nudges and goal follow-ups (``coachops_runtime.proactive``), and once an hour purge messages
past their program's retention limit (``coachops_runtime.retention.purge``).
"""
