"""Names shared by the operator, the runtime and the CRDs."""

from typing import Final

GROUP: Final = "coachops.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CATEGORY: Final = "coachops"

CREATOR_KIND: Final = "Creator"
CREATOR_PLURAL: Final = "creators"
CREATOR_SHORT_NAMES: Final = ("crt",)

PROGRAM_KIND: Final = "CoachingProgram"
PROGRAM_PLURAL: Final = "coachingprograms"
PROGRAM_SHORT_NAMES: Final = ("cpg",)

# Labels written on every object the operator manages.
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "coachops-operator"
LABEL_CREATOR: Final = f"{GROUP}/creator"
LABEL_PROGRAM: Final = f"{GROUP}/program"

FINALIZER: Final = f"{GROUP}/cleanup"
NAMESPACE_PREFIX: Final = "coachops-"


def creator_namespace(creator_name: str) -> str:
    """The namespace that holds one creator's programs and dedicated runtime."""
    return f"{NAMESPACE_PREFIX}{creator_name}"
