"""coachops operator: reconciles Creators and CoachingPrograms into isolated tenants."""
