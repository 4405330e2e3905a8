"""`make up`'s stack comes up, serves the CRDs and reconciles the sample tenant."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from coachops_devstack.paths import REPO_ROOT
from coachops_devstack.ports import free_port


@pytest.mark.slow
def test_local_stack_comes_up_with_a_ready_sample_tenant(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "coachops_devstack",
            "up",
            "--once",
            "--port",
            str(free_port()),
            "--state-dir",
            str(tmp_path / "stack"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "coachops local stack is up" in result.stdout
    assert "creators.coachops.dev" in result.stdout
    assert "coachingprograms.coachops.dev" in result.stdout
    # The sample Creator and program are listed as Ready by `kubectl get coachops -A`.
    listing = result.stdout.split("creators.coachops.dev", 1)[1]
    assert "True" in listing
