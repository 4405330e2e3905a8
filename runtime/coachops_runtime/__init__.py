"""coachops runtime: the shared async API that serves every tenant."""
