"""Regenerate the CRD YAML from the models, or with --check fail when it has drifted."""

import argparse
import sys
from pathlib import Path

from coachops_crds.schema import CRD_DIR, rendered, write

parser = argparse.ArgumentParser(prog="python -m coachops_crds", description=__doc__)
parser.add_argument("--check", action="store_true", help="exit 1 if crds/ is out of date")
parser.add_argument(
    "--dir", type=Path, default=CRD_DIR, help=f"where the YAML lives (default {CRD_DIR})"
)
args = parser.parse_args()

if args.check:
    stale = [
        name
        for name, text in rendered().items()
        if not (args.dir / name).exists() or (args.dir / name).read_text() != text
    ]
    if stale:
        sys.exit(f"out of date: {', '.join(stale)}; run `python -m coachops_crds`")
    print("CRDs are up to date")
else:
    for path in write(args.dir):
        print(f"wrote {path}")
