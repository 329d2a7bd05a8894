"""``jreg`` command line: ``list``, ``show NAME``, ``run NAME``, ``reproduce``."""

from __future__ import annotations

import argparse
import os
import sys
import time

from jreg import experiments


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    p.add_argument("--seeds", type=_positive_int, default=None, help="number of seeds")
    p.add_argument("--out", default="results", help="output folder (results)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--resume", action="store_true", help="continue from an interrupted run")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jreg", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the experiments")
    show = sub.add_parser("show", help="print an experiment's config")
    show.set_defaults(sub=show)  # errors print the subcommand's own usage
    show.add_argument("name")
    show.add_argument("--quick", action="store_true", help="the quick config")
    run = sub.add_parser("run", help="run one experiment")
    run.set_defaults(sub=run)
    run.add_argument("name")
    run.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config entry (repeatable); see `jreg show NAME`",
    )
    _common(run)
    rep = sub.add_parser("reproduce", help="run the five classic experiments (--all: all)")
    rep.set_defaults(sub=rep)
    group = rep.add_mutually_exclusive_group()
    group.add_argument("--all", action="store_true", help="every experiment")
    group.add_argument("--only", nargs="+", default=None, help="a subset of experiments")
    _common(rep)
    return parser


def _names(args, parser) -> list[str]:
    available = experiments.available()
    if args.cmd in ("run", "show"):
        names = [args.name]
    elif args.only:
        names = list(args.only)
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            parser.error(
                f"--only lists {', '.join(map(repr, twice))} more than once; name each once"
            )
    elif args.all:
        names = list(available)
    else:
        names = [n for n in experiments.CLASSIC if n in available]
    for n in names:
        if n not in available:
            parser.error(f"unknown experiment {n!r}; available: {', '.join(available)}")
    return names


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jreg`` console script (exit 0 ok, 2 bad input, 130 Ctrl-C)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.cmd == "list":
        try:
            for name in experiments.available():
                tag = "" if name in experiments.CLASSIC else "  [--all]"
                print(f"{name:26s} {experiments.get(name).DESCRIPTION}{tag}", flush=True)
        except BrokenPipeError:  # `jreg list | head`: the reader left; not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    parser = getattr(args, "sub", parser)  # `jreg run`'s own usage in its errors
    names = _names(args, parser)
    if args.cmd == "show":
        for key, value in experiments.get(args.name).get_config(quick=args.quick).items():
            print(f"{key} = {value!r}")
        return 0

    from jreg.core import runtime

    try:
        runtime.setup()  # one host device per core, compilation cache
    except ValueError as e:
        print(f"jreg: {e}", file=sys.stderr)
        return 2
    from jreg.experiments import configs, runner  # heavy imports only when running

    try:  # check the folder and every config (seeds, overrides) before training anything
        runner.check_out_dir(args.out)
        for name in names:
            configs.prepare_config(
                name, quick=args.quick, seeds=args.seeds, overrides=getattr(args, "sets", None)
            )
    except ValueError as e:
        parser.error(str(e))
    total, done, failed = time.perf_counter(), [], []
    try:
        for name in names:
            try:
                rec = runner.run_experiment(
                    name,
                    quick=args.quick,
                    seeds=args.seeds,
                    out=args.out,
                    progress=not args.no_progress,
                    overrides=getattr(args, "sets", None),
                    resume=args.resume,
                )
            except runner.WriteError as e:  # a figure that failed, a full disk: go on
                print(f"jreg {args.cmd}: error: {e}", file=sys.stderr, flush=True)
                failed.append(name)
                continue
            done.append(name)
            if len(names) > 1:
                runtime.release_memory()  # nothing compiled is shared between experiments
            heads = ", ".join(f"{k}={v}" for k, v in list(rec["headline"].items())[:3])
            took = (
                "finished before, skipped" if rec.get("skipped") else f"{rec['wall_time_s']:.1f}s"
            )
            if runtime.is_main_process():
                print(f"[{name}] {took}  {heads}", flush=True)
    except ValueError as e:  # bad input found once the run started: one line, rc 2
        print(f"jreg {args.cmd}: error: {str(e).splitlines()[0]}", file=sys.stderr, flush=True)
        return 2
    except (
        KeyboardInterrupt,
        Exception,
    ) as e:  # Ctrl-C inside a host callback arrives wrapped by XLA
        if not isinstance(e, KeyboardInterrupt) and "KeyboardInterrupt" not in str(e):
            raise
        left = [n for n in names if n not in done]
        report = os.path.join(args.out, "report.md")
        listed = f"; {report} lists the finished ones" if done and os.path.exists(report) else ""
        print(
            f"\ninterrupted: finished {', '.join(done) or 'nothing'}; not finished "
            f"{', '.join(left)} (rerun with --resume to continue from checkpoints){listed}.",
            file=sys.stderr,
            flush=True,
        )
        return 130
    print(
        f"done: {len(done)} experiment(s) in {time.perf_counter() - total:.1f}s; "
        f"see {args.out}/report.md"
        + (f"; {len(failed)} failed to write their outputs: {', '.join(failed)}" if failed else ""),
        flush=True,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
