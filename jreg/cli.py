"""``jreg`` command line: ``jreg list``, ``jreg run NAME``, ``jreg reproduce``."""

from __future__ import annotations

import argparse
import sys
import time

from jreg import experiments


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default 5)")
    p.add_argument("--out", default="results", help="output folder (default: results)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jreg`` console script."""
    parser = argparse.ArgumentParser(prog="jreg", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the experiments")
    run = sub.add_parser("run", help="run one experiment")
    run.add_argument("name")
    _common(run)
    rep = sub.add_parser("reproduce", help="run every experiment")
    rep.add_argument("--only", nargs="*", default=None, help="subset of experiments")
    _common(rep)
    args = parser.parse_args(argv)

    if args.cmd == "list":
        for name in experiments.available():
            print(f"{name:26s} {experiments.get(name).DESCRIPTION}")
        return 0

    from jreg.experiments.runner import run_experiment  # heavy imports only when running

    if args.cmd == "run":
        try:
            names = [experiments.get(args.name) and args.name]
        except ValueError as e:
            parser.error(str(e))
    else:
        names = list(args.only) if args.only else list(experiments.available())
        for n in names:
            if n not in experiments.available():
                parser.error(
                    f"unknown experiment {n!r}; available: {', '.join(experiments.available())}"
                )
    total = time.perf_counter()
    for name in names:
        rec = run_experiment(
            name, quick=args.quick, seeds=args.seeds, out=args.out, progress=not args.no_progress
        )
        heads = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in list(rec["headline"].items())[:4]
        )
        print(f"[{name}] {rec['wall_time_s']:.1f}s  {heads}", flush=True)
    print(
        f"done: {len(names)} experiment(s) in {time.perf_counter() - total:.1f}s; "
        f"see {args.out}/report.md",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
