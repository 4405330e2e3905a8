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


def bin_dir() -> Path:
    """Built binaries; scripts/build-*.sh write here."""
    path = cache_dir() / "bin"
    path.mkdir(parents=True, exist_ok=True)
    return path
