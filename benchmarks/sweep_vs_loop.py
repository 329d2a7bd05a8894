"""Benchmark: 16 seeds of the MNIST MLP as one vmapped `sweep` vs a Python loop of `fit`.

Setup (issue 2): MLP 784-128-10 (tanh), Adam(1e-3), batch 32, 2,000 steps per seed,
16 seeds, real MNIST digits (3,200 train so one epoch is 100 steps; 20 epochs).
Each side is timed twice: the first call includes compilation, the second reuses it.

    python benchmarks/sweep_vs_loop.py [--seeds 16] [--steps 2000] [--json out.json]
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
from jreg.core import streams, train
from jreg.nn import nets


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=16)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    batch, n_train = 32, 3200
    steps_per_epoch = n_train // batch
    if args.steps % steps_per_epoch:
        raise SystemExit(f"--steps must be a multiple of {steps_per_epoch}")
    ds = tasks.split_data(*data.mnist_digits(n_train, 1000, key=jax.random.key(0)))
    task = tasks.supervised(nets.mlp((784, 128, 10)), optimizer=optax.adam(1e-3))
    kw = dict(stream=streams.epochs(batch), num_steps=args.steps, eval_every=args.steps)
    seeds = np.arange(args.seeds)

    def run_sweep():
        res = train.sweep(task, ds, seeds=seeds, progress=False, **kw)
        return jax.block_until_ready(res.state["params"])

    def run_loop():
        out = [train.fit(task, ds, seed=int(s), **kw).state["params"] for s in seeds]
        return jax.block_until_ready(out)

    times = {}
    for name, fn in (("sweep (vmap)", run_sweep), ("loop of fit", run_loop)):
        t0 = time.perf_counter()
        fn()
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        fn()
        warm = time.perf_counter() - t0
        times[name] = {"cold_s": cold, "warm_s": warm}
    ratio_warm = times["loop of fit"]["warm_s"] / times["sweep (vmap)"]["warm_s"]
    ratio_cold = times["loop of fit"]["cold_s"] / times["sweep (vmap)"]["cold_s"]
    print(
        f"{args.seeds} seeds x {args.steps} steps, MLP 784-128-10, B={batch}, Adam; "
        f"{jax.default_backend()} x{jax.device_count()}, {os.cpu_count()} cores"
    )
    print(f"{'':14s} {'first call (s)':>15s} {'second call (s)':>16s}")
    for name, t in times.items():
        print(f"{name:14s} {t['cold_s']:15.2f} {t['warm_s']:16.2f}")
    print(f"ratio loop/sweep: {ratio_cold:.2f}x (first call), {ratio_warm:.2f}x (second call)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "times": times,
                    "ratio_warm": ratio_warm,
                    "ratio_cold": ratio_cold,
                    "seeds": args.seeds,
                    "steps": args.steps,
                    "jax": jax.__version__,
                    "platform": platform.platform(),
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
