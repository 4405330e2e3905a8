"""Programs: the operator's database copy (read) and the CoachingProgram objects (write)."""

from __future__ import annotations

import uuid
from typing import Any

from coachops_crds.constants import GROUP, PROGRAM_PLURAL, VERSION
from coachops_runtime.kit.db import Session
from coachops_runtime.kit.kube import Kube

_COLUMNS = "program_id, name, title, spec, created_at"
_LIST = f"SELECT {_COLUMNS} FROM programs WHERE deleted_at IS NULL ORDER BY name"
_BY_NAME = f"SELECT {_COLUMNS} FROM programs WHERE name = $1 AND deleted_at IS NULL"
_EXISTS = "SELECT 1 FROM programs WHERE program_id = $1 AND deleted_at IS NULL"
_COUNT = "SELECT count(*) FROM programs WHERE deleted_at IS NULL"


class ProgramRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def list(self) -> list[Any]:
        return await self.session.all(_LIST)

    async def by_name(self, name: str) -> Any | None:
        return await self.session.one_or_none(_BY_NAME, name)

    async def exists(self, program_id: uuid.UUID) -> bool:
        return await self.session.one_or_none(_EXISTS, program_id) is not None

    async def count(self) -> int:
        return int(await self.session.scalar(_COUNT))


class ProgramObjects:
    """CoachingProgram objects in one creator's namespace."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.kube.create(GROUP, VERSION, self.namespace, PROGRAM_PLURAL, body)

    async def get(self, name: str) -> dict[str, Any] | None:
        return await self.kube.get(GROUP, VERSION, self.namespace, PROGRAM_PLURAL, name)

    async def patch(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.kube.patch(GROUP, VERSION, self.namespace, PROGRAM_PLURAL, name, body)

    async def delete(self, name: str) -> None:
        await self.kube.delete(GROUP, VERSION, self.namespace, PROGRAM_PLURAL, name)
