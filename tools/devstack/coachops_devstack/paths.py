"""Where the stack keeps built binaries (a cache shared by runs) and run state."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def cache_dir() -> Path:
    """Cache shared by every run on this machine: built binaries, model files."""
    root = os.environ.get("COACHOPS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "coachops"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def go_module_version(module: str, path: str) -> str:
    """The version ``tools/<module>/go.mod`` requires of the Go module ``path`` (a
    ``require`` line or a line of a require block), as scripts/lib/go-build.sh reads it."""
    go_mod = REPO_ROOT / "tools" / module / "go.mod"
    for line in go_mod.read_text().splitlines():
        words = line.split()
        if words[:2] == ["require", path] and len(words) > 2:
            return words[2]
        if words[:1] == [path] and len(words) > 1:
            return words[1]
    raise FileNotFoundError(f"{go_mod} does not require {path}")


def bin_dir() -> Path:
    """Built binaries; scripts/build-*.sh write here."""
    path = cache_dir() / "bin"
    path.mkdir(parents=True, exist_ok=True)
    return path


def built_bin(directory: str, name: str, built_by: str) -> Path:
    """The binary ``name`` in ``directory`` of the binary cache; a missing one names
    ``built_by``, the script that builds it."""
    path = bin_dir() / directory / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run {built_by} first")
    return path
