"""Goals of end users: set by them or by their creator, active until achieved or abandoned;
the active ones go into the AI coach's prompt (``repository.active_goals``)."""
