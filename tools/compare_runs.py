"""Compare the experiment JSONs of two output folders, number for number.

    python tools/compare_runs.py OLD_DIR NEW_DIR [--keys config numbers headline notes]

Used to check that a refactoring changed no result: run ``jreg reproduce --all --quick --out
OLD_DIR`` before the change and ``--out NEW_DIR`` after, then compare. Every JSON in OLD_DIR
must exist in NEW_DIR with the same entries (NaN equals NaN). Prints one line per experiment
and the first differences; exit status 1 when any differs.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys


def diff(a, b, path: str = "") -> list[str]:
    """Paths (and values) where two JSON values differ."""
    if type(a) is not type(b):
        return [f"{path}: {type(a).__name__} != {type(b).__name__}"]
    if isinstance(a, dict):
        out = [f"{path}.{k}: only in one" for k in set(a) ^ set(b)]
        return out + [d for k in a if k in b for d in diff(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} != {len(b)}"]
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in diff(x, y, f"{path}[{i}]")
        ]
    same = a == b or (isinstance(a, float) and a != a and b != b)
    return [] if same else [f"{path}: {a!r} != {b!r}"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old", type=pathlib.Path)
    p.add_argument("new", type=pathlib.Path)
    p.add_argument("--keys", nargs="+", default=["config", "numbers", "headline", "notes"])
    args = p.parse_args(argv)
    bad = 0
    for path in sorted(args.old.glob("*.json")):
        other = args.new / path.name
        if not other.exists():
            print(f"{path.stem}: missing in {args.new}")
            bad += 1
            continue
        a, b = json.loads(path.read_text()), json.loads(other.read_text())
        found = [d for k in args.keys for d in diff(a.get(k), b.get(k), k)]
        bad += bool(found)
        print(f"{path.stem}: " + ("identical" if not found else f"{len(found)} differences"))
        for d in found[:10]:
            print("   ", d[:300])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
