"""Per-person export and erasure across every store, and the scan that proves an erasure.

``person.py`` lists the PostgreSQL tables about a person, ``stores.py`` their Redis keys and
Chroma vectors; ``export.py`` builds the archive and ``erasure.py`` runs the per-store steps,
both as jobs of the worker (``worker.py``); ``endpoints.py`` and ``service.py`` are the API;
``scan.py`` searches every store for a person's traces (``python -m
coachops_runtime.privacy.scan``).
"""
