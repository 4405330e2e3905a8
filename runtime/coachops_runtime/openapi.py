"""Write the committed OpenAPI document: ``python -m coachops_runtime.openapi [--check]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from coachops_runtime.app import create_app

DEFAULT_PATH = Path("docs/openapi.json")


def document() -> dict[str, Any]:
    return create_app().openapi()


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not args.path.exists() or args.path.read_text() != text:
            print(
                f"{args.path} is out of date: run python -m coachops_runtime.openapi",
                file=sys.stderr,
            )
            raise SystemExit(1)
        return
    args.path.write_text(text)


if __name__ == "__main__":
    main()
