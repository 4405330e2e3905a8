"""Install crds/ (the CRDs and the finalizer policy) and wait until Creators and
CoachingPrograms can be created.

``Established`` is not enough: the apiserver's MutatingAdmissionPolicy plugin learns the
schema of a new CRD from the apiserver's OpenAPI, which it refreshes every 5 s. Until
then it refuses creates of that kind with 503 ("There can be a delay between when
CustomResourceDefinitions are created and when they are available"). A server-side
dry-run create of each kind shows when admission is ready.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from coachops_crds import constants as c
from coachops_devstack.paths import REPO_ROOT

CRD_NAMES = (f"crd/{c.CREATOR_PLURAL}.{c.GROUP}", f"crd/{c.PROGRAM_PLURAL}.{c.GROUP}")
_NOT_YET = "There can be a delay between when CustomResourceDefinitions are created"


def _probes() -> list[dict[str, Any]]:
    creator: dict[str, Any] = {
        "apiVersion": c.API_VERSION,
        "kind": c.CREATOR_KIND,
        "metadata": {"name": "admission-probe"},
        "spec": {"displayName": "probe", "contact": {"email": "probe@example.com"}},
    }
    program: dict[str, Any] = {
        "apiVersion": c.API_VERSION,
        "kind": c.PROGRAM_KIND,
        "metadata": {"name": "admission-probe", "namespace": "default"},
        "spec": {"title": "probe", "persona": {"name": "probe"}},
    }
    return [creator, program]


def install_crds(
    kubectl: Path | str, kubeconfig: Path, *, force_conflicts: bool = False, timeout: float = 60
) -> None:
    """Apply crds/ server-side, then wait for the CRDs and for admission to accept them."""

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(kubectl), f"--kubeconfig={kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout + 30,
        )

    apply = ["apply", "--server-side", "-f", str(REPO_ROOT / "crds")]
    applied = run(*apply, *(["--force-conflicts"] if force_conflicts else []))
    if applied.returncode != 0:
        raise RuntimeError(f"kubectl apply -f crds/ failed:\n{applied.stderr}")
    established = run(
        "wait", "--for=condition=Established", f"--timeout={int(timeout)}s", *CRD_NAMES
    )
    if established.returncode != 0:
        raise RuntimeError(f"the CRDs were not established:\n{established.stderr}")
    deadline = time.monotonic() + timeout
    for probe in _probes():
        while True:
            made = run("create", "--dry-run=server", "-f", "-", stdin=json.dumps(probe))
            if made.returncode == 0:
                break
            if _NOT_YET not in made.stderr or time.monotonic() > deadline:
                raise RuntimeError(f"a {probe['kind']} cannot be created:\n{made.stderr}")
            time.sleep(0.5)
