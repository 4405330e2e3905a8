"""The periodic re-check of every CoachingProgram: one task for all of them (``sweep.py``).

Each pass re-checks the due programs with ``program.recheck`` (the Creator's summary from
kopf's index of Creators). A changed status is written as a merge patch of the status
subresource and a change of Ready's reason posts an Event, as the change handler does.
The change and deletion handlers hold a program (``exclusive``) while they work on it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from coachops_crds import constants as c
from coachops_operator import program as programs
from coachops_operator.sweep import Sweep, key_of


class ProgramSweep(Sweep[programs.CreatorSummary | None]):
    """Re-checks every program the operator knows, every ``interval`` seconds; ``lookup``
    is the Creator of a namespace. Gives way to Creators' and programs' reconciles."""

    api_version = c.API_VERSION
    kind = c.PROGRAM_KIND
    log = logging.getLogger("coachops_operator.programs")

    def reconciles_busy(self) -> bool:
        return self.stores.gate.locked() or self.stores.program_gate.locked()

    async def check(self, body: Mapping[str, Any]) -> None:
        """Every part of the program again; its status and an Event when they change."""
        namespace, name = key_of(body)
        outcome = await programs.recheck(self.stores, name, namespace, body, self.lookup(namespace))
        if outcome is None or not await self.write_status(body, outcome.status):
            return
        if programs.changed(body, outcome.ready):
            ready = outcome.ready
            type_ = "Normal" if ready.status == "True" else "Warning"
            await self.post(body, type_, ready.reason, ready.message)
