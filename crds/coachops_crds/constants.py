"""Names shared by the operator, the runtime and the CRDs."""

import uuid
from functools import lru_cache
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


# ---------------------------------------------------------------- tenant naming
# Deterministic names derived from the Creator's name, shared by the operator (which
# provisions them) and the runtime (which uses them). Deterministic ids make provisioning
# idempotent: a restarted operator finds what it created instead of creating it twice.

TENANT_ID_NAMESPACE: Final = uuid.UUID("6f1f5b8e-6a43-4f0e-9a57-2f4c1b0e7d31")

LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
PART_OF: Final = "coachops"

TENANT_SECRET: Final = "coachops-tenant-credentials"
TENANT_SERVICE_ACCOUNT: Final = "coachops-tenant"
RUNTIME_NAME: Final = "coachops-runtime"

SYSTEM_NAMESPACE: Final = "coachops-system"
SHARED_RUNTIME_SERVICE_ACCOUNT: Final = "coachops-runtime"


def tenant_id(creator_name: str) -> uuid.UUID:
    """The tenant's id in PostgreSQL; the same for the same Creator name, always."""
    return uuid.uuid5(TENANT_ID_NAMESPACE, f"creator:{creator_name}")


def program_id(creator_name: str, program_name: str) -> uuid.UUID:
    """A program's id in PostgreSQL, derived from its creator and its name."""
    return uuid.uuid5(TENANT_ID_NAMESPACE, f"program:{creator_name}/{program_name}")


def tenant_db_role(creator_name: str) -> str:
    """The PostgreSQL login role bound to one creator's rows."""
    return "coachops_t_" + creator_name.replace("-", "_")


def tenant_redis_user(creator_name: str) -> str:
    """The Redis ACL user of a dedicated tenant."""
    return f"coachops-t-{creator_name}"


@lru_cache(maxsize=4096)  # on every request's rate-limit key; uuid5 is not free
def tenant_redis_prefix(creator_name: str) -> str:
    """Every Redis key of one tenant starts with this prefix."""
    return f"coachops:t:{tenant_id(creator_name)}:"


def chroma_tenant(creator_name: str) -> str:
    """The ChromaDB tenant of one creator."""
    return f"coachops-{creator_name}"


CHROMA_DATABASE: Final = "knowledge"


def chroma_collection(program_id: uuid.UUID) -> str:
    """The Chroma collection (in its creator's tenant and CHROMA_DATABASE) of one program."""
    return f"program-{program_id}"
