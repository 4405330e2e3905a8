"""Line coverage per package from combined coverage data, and the total.

``coverage report`` lists files; this sums them into one row per package of
``[tool.coverage.run] source_pkgs``. Run after ``coverage combine``:
``python scripts/coverage_table.py [--data-file FILE] [--fail-under PERCENT]``.
Exits 2 when the total is under ``--fail-under``, as ``coverage report`` does.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path, PurePath

import coverage


@dataclass
class Row:
    statements: int = 0
    missed: int = 0

    @property
    def percent(self) -> float:
        if not self.statements:
            return 100.0
        return 100.0 * (self.statements - self.missed) / self.statements


def package_of(path: str, packages: list[str]) -> str | None:
    parts = PurePath(path).parts
    return next((p for p in packages if p in parts), None)


def source_files(package: str) -> set[str]:
    """The package's modules on disk, as coverage finds them: folders with __init__.py."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return set()
    found = set()
    for location in spec.submodule_search_locations:
        root = Path(location)
        for path in root.rglob("*.py"):
            relative = path.parent.relative_to(root)
            folders = [root / folder for folder in [*relative.parents, relative]]
            if all((folder / "__init__.py").exists() for folder in folders):
                found.add(str(path.resolve()))
    return found


def table(cov: coverage.Coverage) -> dict[str, Row]:
    packages: list[str] = list(cov.get_option("run:source_pkgs") or [])  # type: ignore[arg-type]
    rows = {package: Row() for package in packages}
    # A module no process imported counts as missed too, even in a package none imported.
    paths = set(cov.get_data().measured_files())
    for package in packages:
        paths |= source_files(package)
    for path in sorted(paths):
        owner = package_of(path, packages)
        if owner is None:
            continue
        _, statements, _, missing, _ = cov.analysis2(path)
        rows[owner].statements += len(statements)
        rows[owner].missed += len(missing)
    return rows


def render(rows: dict[str, Row]) -> str:
    total = Row(sum(r.statements for r in rows.values()), sum(r.missed for r in rows.values()))
    width = max(len(name) for name in [*rows, "total"])
    lines = [f"{'package':<{width}}  {'lines':>6}  {'missed':>6}  {'cover':>6}"]
    for name, row in [*rows.items(), ("total", total)]:
        lines.append(f"{name:<{width}}  {row.statements:>6}  {row.missed:>6}  {row.percent:>5.1f}%")
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-file", default=None, help="combined data (default: .coverage)")
    parser.add_argument(
        "--fail-under", type=float, default=None, help="default: [tool.coverage.report]"
    )
    args = parser.parse_args()
    # data_file=None would mean "no file at all": leave it out to get the configured one.
    cov = coverage.Coverage(**({"data_file": args.data_file} if args.data_file else {}))
    cov.load()
    threshold = args.fail_under
    if threshold is None:
        threshold = float(cov.get_option("report:fail_under") or 0)  # type: ignore[arg-type]
    rows = table(cov)
    print(render(rows))
    total = Row(sum(r.statements for r in rows.values()), sum(r.missed for r in rows.values()))
    if total.percent < threshold:
        print(f"line coverage {total.percent:.1f}% is under the required {threshold:g}%")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
