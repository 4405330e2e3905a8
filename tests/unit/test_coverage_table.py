"""scripts/coverage_table.py: per-package sums, modules nobody imported, the threshold."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import coverage
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "coverage_table.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "coverage_table", ROOT / "scripts/coverage_table.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


table_script = load_script()


@pytest.fixture
def packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two packages: ``alpha`` (two modules, one never imported) and ``beta`` (never imported)."""
    src = tmp_path / "src"
    (src / "alpha").mkdir(parents=True)
    (src / "alpha" / "__init__.py").write_text("")
    (src / "alpha" / "used.py").write_text("def f(x):\n    if x:\n        return 1\n    return 2\n")
    (src / "alpha" / "unused.py").write_text("A = 1\nB = 2\n")
    (src / "alpha" / "loose").mkdir()  # no __init__.py: not a package, as coverage sees it
    (src / "alpha" / "loose" / "script.py").write_text("C = 3\n")
    (src / "beta").mkdir()
    (src / "beta" / "__init__.py").write_text("D = 4\n")
    monkeypatch.syspath_prepend(str(src))
    return src


def measure(src: Path, data_file: Path) -> coverage.Coverage:
    config = src.parent / "coverage.toml"
    config.write_text(
        '[tool.coverage.run]\nsource_pkgs = ["alpha", "beta"]\n'
        'disable_warnings = ["module-not-imported"]\n'
    )
    cov = coverage.Coverage(data_file=str(data_file), config_file=str(config))
    cov.start()
    try:
        from alpha import used  # type: ignore[import-not-found]

        used.f(True)
    finally:
        cov.stop()
        sys.modules.pop("alpha.used", None)
        sys.modules.pop("alpha", None)
    cov.save()
    return cov


def test_rows_count_unimported_modules_and_packages_as_missed(packages: Path) -> None:
    cov = measure(packages, packages.parent / ".coverage")
    rows = table_script.table(cov)
    # alpha: used.py has 4 statements, 1 missed (return 2); unused.py 2 missed; the
    # folder without __init__.py is not counted. beta: its one statement, missed.
    assert (rows["alpha"].statements, rows["alpha"].missed) == (6, 3)
    assert (rows["beta"].statements, rows["beta"].missed) == (1, 1)
    rendered = table_script.render(rows)
    assert rendered.splitlines()[-1].split() == ["total", "7", "4", "42.9%"]


def test_the_threshold_sets_the_exit_status(packages: Path) -> None:
    data = packages.parent / ".coverage"
    measure(packages, data)
    config = packages.parent / "coverage.toml"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts/coverage_table.py"),
                "--data-file",
                str(data),
                *args,
            ],
            capture_output=True,
            text=True,
            cwd=packages.parent,
            env={"PYTHONPATH": str(packages), "COVERAGE_RCFILE": str(config), "PATH": "/usr/bin"},
        )

    passing = run("--fail-under", "42")
    assert passing.returncode == 0, passing.stdout + passing.stderr
    failing = run("--fail-under", "43")
    assert failing.returncode == 2
    assert "42.9% is under the required 43%" in failing.stdout
