"""The one source of truth for coachops' custom resources.

Shared by the operator and the runtime (the only module they share): the Pydantic models
of the ``Creator`` and ``CoachingProgram`` resources, the constants that name them, and
the generator of the CustomResourceDefinition YAML committed in crds/.
"""
