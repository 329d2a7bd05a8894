"""Benchmark: seeds-per-program scaling of one vmapped sweep vs a Python loop of fit.

Model: MLP 40-64-64-10 (ReLU) on MNIST-1D (4,000 train), SGD(0.01, momentum 0.9),
batch 100, 10 epochs (400 steps) per seed. For N in {1, 4, 16, 64} seeds, each strategy
is run twice and the second (compiled) call is timed; the table reports seed-steps per
second (N x 400 / wall time).

    python benchmarks/vmap_scaling.py [--epochs 10] [--seeds 1 4 16 64] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time

from jreg.core.runtime import use_all_cpu_cores

use_all_cpu_cores()  # one XLA host device per core (before JAX starts its backend)

import jax
import numpy as np
import optax

from jreg import data, tasks
from jreg.core import streams, train
from jreg.nn import nets


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 4, 16, 64])
    p.add_argument("--json", default=None)
    args = p.parse_args()
    ds = tasks.split_data(*data.mnist1d(4000, 1000, seed=0))
    task = tasks.supervised(
        nets.mlp((40, 64, 64, 10), activation="relu", init="he"),
        optimizer=optax.sgd(0.01, momentum=0.9),
    )
    steps = (4000 // 100) * args.epochs
    kw = dict(stream=streams.epochs(100), num_steps=steps, eval_every=steps)

    def timed(fn):
        jax.block_until_ready(fn())
        t = time.perf_counter()
        jax.block_until_ready(fn())
        return time.perf_counter() - t

    table = {}
    for n in args.seeds:
        seeds = np.arange(n)
        table[n] = {
            "vmap": timed(lambda: train.sweep(task, ds, seeds=seeds, progress=False, **kw).state),
            "python loop": timed(
                lambda: [train.fit(task, ds, seed=int(s), **kw).state for s in seeds]
            ),
        }
    print(
        f"seed-steps per second ({steps} steps per seed), MLP 40-64-64-10, B=100; "
        f"{jax.default_backend()}, {os.cpu_count()} cores"
    )
    print(f"{'seeds':>6s} {'vmap':>10s} {'python loop':>12s} {'vmap/loop':>10s}")
    for n, t in table.items():
        rate = {k: n * steps / v for k, v in t.items()}
        print(
            f"{n:6d} {rate['vmap']:10.0f} {rate['python loop']:12.0f} "
            f"{t['python loop'] / t['vmap']:9.1f}x"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"steps_per_seed": steps, "seconds": table}, f, indent=1)


if __name__ == "__main__":
    main()
