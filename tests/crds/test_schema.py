"""The CRD generator: structural schemas from Pydantic models, and its command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from coachops_crds import constants as c
from coachops_crds.models import CreatorSpec
from coachops_crds.schema import FINALIZER_POLICY_FILE, openapi_schema, rendered, write


def nodes(schema: Any) -> list[dict[str, Any]]:
    """Every object in a schema, depth first."""
    if isinstance(schema, list):
        return [n for item in schema for n in nodes(item)]
    if not isinstance(schema, dict):
        return []
    return [schema, *(n for value in schema.values() for n in nodes(value))]


def test_a_real_spec_is_structural() -> None:
    schema = openapi_schema(CreatorSpec)
    for node in nodes(schema):
        assert not {"$ref", "$defs", "anyOf", "oneOf", "allOf", "title"} & node.keys()
        if "properties" in node:
            assert node.get("type") == "object"
            assert "additionalProperties" not in node
    assert schema["required"] == ["displayName", "contact"]
    assert schema["properties"]["plan"]["default"] == {}  # the apiserver fills in the rest
    assert schema["properties"]["isolation"] == {
        "default": "shared",
        "description": schema["properties"]["isolation"]["description"],
        "enum": ["shared", "dedicated"],
        "type": "string",
    }


class Tagged(BaseModel):
    """A model with the shapes the generator rewrites."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["only"] = Field("only", description="A constant.")
    note: str | None = Field(None, description="Optional text.")
    bag: dict[str, Any] = Field(default_factory=dict, description="Anything.")
    when: str = Field("", json_schema_extra={"format": "date-time"}, description="A time.")


def test_constants_optionals_and_free_form_objects_become_structural() -> None:
    schema = openapi_schema(Tagged)
    props = schema["properties"]
    assert props["kind"]["enum"] == ["only"]
    assert props["kind"]["type"] == "string"
    assert props["note"] == {"type": "string", "description": "Optional text."}
    assert props["bag"]["x-kubernetes-preserve-unknown-fields"] is True
    assert "additionalProperties" not in props["bag"]
    assert props["when"]["format"] == "date-time"
    assert schema["description"] == "A model with the shapes the generator rewrites."


class Ambiguous(BaseModel):
    either: int | str


def test_a_real_union_is_refused() -> None:
    with pytest.raises(ValueError, match="unions are not structural"):
        openapi_schema(Ambiguous)


def test_write_puts_every_rendered_file_in_the_directory(tmp_path: Path) -> None:
    written = write(tmp_path)
    assert sorted(p.name for p in written) == sorted(rendered())
    for path in written:
        assert path.read_text() == rendered()[path.name]
    policy, binding = yaml.safe_load_all((tmp_path / FINALIZER_POLICY_FILE).read_text())
    assert policy["kind"] == "MutatingAdmissionPolicy"
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    rules = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rules[0]["resources"] == [c.CREATOR_PLURAL, c.PROGRAM_PLURAL]


def crds_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coachops_crds", *args], capture_output=True, text=True
    )


def test_the_command_line_writes_and_then_finds_nothing_stale(tmp_path: Path) -> None:
    stale = crds_cli("--check", "--dir", str(tmp_path))
    assert stale.returncode == 1
    assert "out of date" in stale.stderr
    assert FINALIZER_POLICY_FILE in stale.stderr

    wrote = crds_cli("--dir", str(tmp_path))
    assert wrote.returncode == 0, wrote.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(rendered())

    fresh = crds_cli("--check", "--dir", str(tmp_path))
    assert fresh.returncode == 0
    assert "up to date" in fresh.stdout

    changed = next(iter(rendered()))
    (tmp_path / changed).write_text("# edited by hand\n")
    edited = crds_cli("--check", "--dir", str(tmp_path))
    assert edited.returncode == 1
    assert changed in edited.stderr
