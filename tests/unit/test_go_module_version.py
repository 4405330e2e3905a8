"""coachops_devstack.paths.go_module_version reads a pinned version from every go.mod the
build scripts read it from, in both forms go.mod writes a requirement, as
scripts/lib/go-build.sh does."""

from __future__ import annotations

import subprocess

import pytest

from coachops_devstack.paths import REPO_ROOT, go_module_version

PINNED = [
    ("mailpit", "github.com/axllent/mailpit"),  # a `require` line
    ("prometheus", "github.com/prometheus/prometheus"),
    ("registry", "github.com/google/go-containerregistry"),
    ("ollama", "github.com/ollama/ollama"),
    ("node/kubelet", "k8s.io/kubernetes"),
    ("node/containerd", "github.com/containerd/containerd/v2"),
    ("prometheus", "github.com/prometheus/common"),  # a line of a require block
]


@pytest.mark.parametrize(("module", "path"), PINNED)
def test_the_same_version_as_the_build_scripts(module: str, path: str) -> None:
    shell = subprocess.run(
        [
            "bash",
            "-c",
            'source scripts/lib/go-build.sh && go_module_version "$1" "$2"',
            "-",
            str(REPO_ROOT / "tools" / module),
            path,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert go_module_version(module, path) == shell.stdout.strip()
    assert shell.stdout.strip().startswith("v")


def test_a_module_not_required_is_named_in_the_error() -> None:
    with pytest.raises(FileNotFoundError, match=r"does not require example\.com/none"):
        go_module_version("mailpit", "example.com/none")
