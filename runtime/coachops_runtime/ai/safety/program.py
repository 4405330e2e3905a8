"""The parts of a program's spec the safety check reads."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from coachops_crds.models import ModelSpec, Safety

log = logging.getLogger("coachops.safety")


@dataclass(frozen=True)
class ProgramSafety:
    """``spec.safety``, the embedding model and the persona's language of one program."""

    program_name: str
    safety: Safety = field(default_factory=Safety)
    embedding_model: str = ModelSpec.model_fields["embedding"].default
    language: str = "en"

    @classmethod
    def from_spec(cls, program_name: str, spec: Mapping[str, Any]) -> ProgramSafety:
        """From the program's stored spec (camelCase, as the operator writes it). A part
        that does not validate falls back to its default, so a check always runs."""
        try:
            safety = Safety.model_validate(spec.get("safety") or {})
        except ValidationError:
            log.warning(
                "spec.safety does not validate; defaults apply", extra={"program": program_name}
            )
            safety = Safety()
        model = spec.get("model") if isinstance(spec.get("model"), Mapping) else {}
        embedding = model.get("embedding") if isinstance(model, Mapping) else None
        persona = spec.get("persona") if isinstance(spec.get("persona"), Mapping) else {}
        language = persona.get("language") if isinstance(persona, Mapping) else None
        return cls(
            program_name,
            safety,
            embedding if isinstance(embedding, str) and embedding else cls.embedding_model,
            language if isinstance(language, str) and language else "en",
        )
