"""Benchmark: a 4,096-config sweep in chunks — throughput and peak memory vs chunk size.

64 learning rates x 64 seeds of an MNIST-1D MLP 40-32-10 (SGD, batch 100, 4,000
examples, 5 epochs = 200 steps per config). The same sweep runs with fixed chunk sizes
(configs per compiled program call) and then with ``memory_budget`` (the chunk jreg picks
from XLA's memory analysis). For each: wall time (compilation included), config-steps/s,
the peak resident memory of the process during that run, and the ratio to the best
chunk's throughput. Results are checked equal across chunk sizes (float rounding).

    python benchmarks/chunked_sweep.py [--budget-mib 256] [--chunks 256 512 1024 2048 4096]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

from jreg.core.runtime import use_all_cpu_cores

use_all_cpu_cores()  # one XLA host device per core (before JAX starts its backend)

import jax
import numpy as np
import optax

from jreg import data, tasks
from jreg.core import _layout, runtime, streams, train
from jreg.nn import nets


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget-mib", type=float, default=256.0, help="memory_budget (MiB)")
    p.add_argument("--chunks", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    p.add_argument("--lrs", type=int, default=64)
    p.add_argument("--seeds", type=int, default=64)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    ds = tasks.split_data(*data.mnist1d(4000, 1000))
    task = tasks.supervised(
        nets.mlp((40, 32, 10), activation="relu"),
        optimizer=lambda hp: optax.sgd(hp["lr"]),
        hparams={"lr": 0.05},
    )
    spe = 4000 // 100
    kw = dict(
        stream=streams.epochs(100),
        seeds=args.seeds,
        hparams={"lr": np.geomspace(0.003, 0.3, args.lrs).astype(np.float32)},
        num_steps=args.epochs * spe,
        eval_every=args.epochs * spe,
        progress=False,
    )
    configs = args.lrs * args.seeds
    config_steps = configs * args.epochs * spe
    real_chunk_size = _layout.chunk_size
    chosen = []

    def run(label, chunk=None, budget=None):
        if chunk is not None:  # force the chunk size
            _layout.chunk_size = lambda n, *a, **k: min(n, chunk)
        else:
            _layout.chunk_size = lambda *a, **k: (
                chosen.append(real_chunk_size(*a, **k)) or (chosen[-1])
            )
        train.clear_cache()
        runtime.reset_peak_memory()
        base = runtime.peak_memory_mib()
        t = time.perf_counter()
        res = train.sweep(task, ds, memory_budget=budget, **kw)
        acc = np.asarray(res.history["test_accuracy"])
        wall = time.perf_counter() - t
        peak = runtime.peak_memory_mib()
        _layout.chunk_size = real_chunk_size
        return {
            "label": label,
            "chunk": chunk if chunk is not None else chosen[-1],
            "wall_s": wall,
            "config_steps_per_s": config_steps / wall,
            "peak_rss_mib": peak,
            "rss_before_mib": base,
            "mean_test_accuracy": float(acc.mean()),
            "acc": acc,
        }

    rows = [run(f"chunk {c}", chunk=c) for c in args.chunks if c <= configs]
    budget = int(args.budget_mib * 2**20)
    rows.append(run(f"memory_budget {args.budget_mib:.0f} MiB", budget=budget))
    best = max(r["config_steps_per_s"] for r in rows[:-1])
    ref = rows[0]["acc"]
    print(
        f"{configs} configs ({args.lrs} lr x {args.seeds} seeds), MLP 40-32-10 on MNIST-1D, "
        f"{args.epochs} epochs of 40 steps; {jax.device_count()} {jax.default_backend()} "
        f"devices, jax {jax.__version__}; load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'run':26s} {'chunk':>6s} {'wall s':>7s} {'cfg-steps/s':>12s} {'vs best':>8s} "
        f"{'peak RSS MiB':>13s} {'max |Δacc|':>10s}"
    )
    for r in rows:
        diff = float(np.max(np.abs(r["acc"] - ref)))
        print(
            f"{r['label']:26s} {r['chunk']:6d} {r['wall_s']:7.1f} {r['config_steps_per_s']:12.0f} "
            f"{r['config_steps_per_s'] / best:8.2f} {r['peak_rss_mib']:13.0f} {diff:10.2g}"
        )
        r["vs_best"] = r["config_steps_per_s"] / best
        r["max_abs_accuracy_difference"] = diff
        del r["acc"]
    budgeted = rows[-1]
    print(
        f"memory_budget={args.budget_mib:.0f} MiB chose {budgeted['chunk']} configs per chunk: "
        f"{100 * budgeted['vs_best']:.0f}% of the best fixed chunk's throughput; peak RSS "
        f"{budgeted['peak_rss_mib']:.0f} MiB (the process held {budgeted['rss_before_mib']:.0f} "
        "MiB before the sweep)"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "configs": configs, "platform": platform.platform()}, f)


if __name__ == "__main__":
    main()
