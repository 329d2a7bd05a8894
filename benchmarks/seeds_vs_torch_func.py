"""Benchmark: an ensemble of MLP seeds in jreg (one vmapped sweep) vs PyTorch torch.func.

Both sides train the same thing: S seeds of an MLP 40-64-64-10 (ReLU) on MNIST-1D (4,000
train, 1,000 test), SGD(0.01, momentum 0.9), batch 100 (40 steps per epoch), each seed
with its own initialisation and its own shuffling. PyTorch runs the way a PyTorch user
ensembles models (the "model ensembling" tutorial): ``torch.func.stack_module_state`` of S
``nn.Module`` copies, ``torch.vmap(torch.func.grad(loss))`` with ``functional_call``, and
a hand-written SGD-with-momentum update (in place, under ``torch.no_grad()``) on the stacked
parameters; per epoch one stacked ``(S, N)`` index tensor of per-seed ``randperm``s and a
gather ``x[idx]``. jreg runs one :func:`jreg.core.train.sweep` with ``seeds=S`` of a task built
fresh for every cell, so its time includes compilation (as a user's first call does), which
is also reported on its own: tracing + lowering + XLA compilation, from ``jax.monitoring``.
Initialisations follow each library's default (jreg: LeCun normal, zero biases; PyTorch:
``nn.Linear``'s uniform), so the mean final test accuracies agree only to a few points.
Both wall times include the final test-set evaluation.
Training FLOPs count 6 x multiply-adds per example (forward 2, backward 4), no evaluation;
the same run measures a large matmul in both frameworks to say how far each program is
from the machine's matmul peak. Before the grid, one untimed 2-seed epoch in PyTorch takes
torch.func's one-time lazy set-up out of the first cell (JAX's backend starts in the
matmul). PyTorch uses ``os.cpu_count()`` threads (``--torch-threads``); on a machine
loaded by other processes its many small multi-threaded ops can slow down by an order of
magnitude (threads wait for each other), so the load average is printed too.

    pip install -e ".[bench]"   # CPU torch 2.13.0
    python benchmarks/seeds_vs_torch_func.py [--seeds 16 64] [--epochs 50 200] [--quick]
        [--torch-threads N] [--json out.json] [--no-torch] [--cache-dir DIR | none]

JAX's persistent compilation cache is on (``~/.cache/jreg/jax``, as in the CLI): every
cell builds its task afresh, and a rerun of the script compiles from the cache; pass
``--cache-dir none`` for cold compile times. ``--no-torch``: jreg side only (GPU runs).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import platform
import resource
import time

from jreg.core.runtime import enable_compilation_cache, use_all_cpu_cores

use_all_cpu_cores()  # one XLA host device per core (before JAX starts its backend)

import jax
import numpy as np
import optax
from _timing import (  # noqa: E402  (benchmarks/ is sys.path[0] when run as a script)
    COMPILE_SECONDS,
    batched_matmul_gflops_jax,
    matmul_gflops_jax,
    matmul_gflops_torch,
    small_matmul_gflops_torch,
    torch_device,
    torch_sync,
)

from jreg import data, tasks
from jreg.core import streams, train
from jreg.nn import nets

WIDTHS = (40, 64, 64, 10)
N_TRAIN, N_TEST, BATCH, LR, MOMENTUM = 4000, 1000, 100, 0.01, 0.9
STEPS_PER_EPOCH = N_TRAIN // BATCH


def train_flops(seeds: int, epochs: int) -> float:
    """Training FLOPs: 6 x multiply-adds per example (forward 2, backward 4), all seeds."""
    macs = sum(i * o for i, o in itertools.pairwise(WIDTHS))
    return 6.0 * macs * BATCH * STEPS_PER_EPOCH * epochs * seeds


def run_jreg(ds: dict, *, seeds: int, epochs: int) -> tuple[float, float, np.ndarray]:
    """One sweep of S seeds of a freshly built task; (seconds, compile seconds, test acc (S,))."""
    task = tasks.supervised(
        nets.mlp(WIDTHS, activation="relu"), optimizer=optax.sgd(LR, momentum=MOMENTUM)
    )
    steps = epochs * STEPS_PER_EPOCH
    COMPILE_SECONDS[0] = 0.0
    start = time.perf_counter()
    res = train.sweep(
        task,
        ds,
        stream=streams.epochs(BATCH),
        seeds=seeds,
        num_steps=steps,
        eval_every=steps,
        progress=False,
    )
    acc = np.asarray(res.history["test_accuracy"])[0, :, -1]  # (S,): the only config row
    jax.block_until_ready(res.state["params"])
    return time.perf_counter() - start, COMPILE_SECONDS[0], acc


def run_torch(torch, ds: dict, *, seeds: int, epochs: int) -> tuple[float, np.ndarray]:
    """S stacked seeds trained with torch.func; (seconds, test accuracy (S,))."""
    from torch import nn
    from torch.func import functional_call, grad, stack_module_state

    dev = torch_device(torch)
    x = torch.as_tensor(ds["train"]["x"], device=dev)
    y = torch.as_tensor(ds["train"]["y"], dtype=torch.long, device=dev)
    xt = torch.as_tensor(ds["test"]["x"], device=dev)
    yt = torch.as_tensor(ds["test"]["y"], dtype=torch.long, device=dev)
    n = x.shape[0]
    start = time.perf_counter()
    torch.manual_seed(0)

    def make_mlp():
        layers = []
        for i, o in itertools.pairwise(WIDTHS):
            layers += [nn.Linear(i, o), nn.ReLU()]
        return nn.Sequential(*layers[:-1])

    nets_ = [make_mlp().to(dev) for _ in range(seeds)]  # each seed its own default nn.Linear init
    params, buffers = stack_module_state(nets_)
    params = {k: v.detach() for k, v in params.items()}
    base = copy.deepcopy(nets_[0]).to("meta")

    def loss_fn(p, b, xb, yb):
        return nn.functional.cross_entropy(functional_call(base, (p, b), (xb,)), yb)

    grads_fn = torch.vmap(grad(loss_fn))
    momenta = {k: torch.zeros_like(v) for k, v in params.items()}
    gens = [torch.Generator().manual_seed(s) for s in range(seeds)]
    with torch.no_grad():
        for _ in range(epochs):
            idx = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(dev)  # (S, N)
            for i in range(STEPS_PER_EPOCH):
                bi = idx[:, i * BATCH : (i + 1) * BATCH]  # (S, B)
                g = grads_fn(params, buffers, x[bi], y[bi])
                for k, p in params.items():
                    m = momenta[k].mul_(MOMENTUM).add_(g[k])
                    p.add_(m, alpha=-LR)
        logits = torch.vmap(lambda p, b: functional_call(base, (p, b), (xt,)))(params, buffers)
        acc = (logits.argmax(-1) == yt).float().mean(-1).cpu().numpy()
    torch_sync(torch)
    return time.perf_counter() - start, acc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[16, 64], help="seed counts S")
    p.add_argument("--epochs", type=int, nargs="+", default=[50, 200], help="epoch counts")
    p.add_argument("--quick", action="store_true", help="smoke check: 4 seeds x 2 epochs")
    p.add_argument(
        "--torch-threads", type=int, default=os.cpu_count() or 1, help="default: all cores"
    )
    p.add_argument("--json", default=None)
    p.add_argument("--no-torch", action="store_true", help="jreg side only")
    p.add_argument("--cache-dir", default=None, help="compilation cache; 'none': off")
    args = p.parse_args()
    if args.quick:
        args.seeds, args.epochs = [4], [2]
    if args.cache_dir != "none":
        enable_compilation_cache(args.cache_dir)
    torch = None
    if not args.no_torch:
        import torch

        torch.set_num_threads(args.torch_threads)
    ds = tasks.split_data(*data.mnist1d(N_TRAIN, N_TEST, seed=0))

    load_start = os.getloadavg()
    peak_jax = matmul_gflops_jax()
    peak_torch = matmul_gflops_torch(torch) if torch else float("nan")
    # The step's largest dot over all seeds, (S, B, 64) @ (S, 64, 64): jax splits S over its
    # devices as the sweep does, torch runs one batched matmul on its threads.
    num = -(-max(args.seeds) // jax.device_count()) * jax.device_count()
    dot_shape = (num, BATCH, WIDTHS[1], WIDTHS[2])
    dot_jax = batched_matmul_gflops_jax(*dot_shape)
    dot_torch = small_matmul_gflops_torch(torch, *dot_shape[1:], s=num) if torch else float("nan")
    if torch:
        run_torch(torch, ds, seeds=2, epochs=1)  # torch.func's one-time lazy set-up, untimed
    print(
        f"MLP {'-'.join(map(str, WIDTHS))} (ReLU) seeds, MNIST-1D {N_TRAIN}, SGD({LR}, "
        f"momentum {MOMENTUM}), B={BATCH}; {os.cpu_count()} cores, {jax.device_count()} XLA "
        f"devices, jax {jax.__version__}, torch {torch.__version__ if torch else '-'} "
        f"({args.torch_threads} threads), "
        f"{jax.devices()[0].device_kind}"
    )
    print(f"large matmul (2048^2) peak: jax {peak_jax:.0f} GFLOP/s, torch {peak_torch:.0f} GFLOP/s")
    print(
        "the step's largest dot, batched {}x({}x{})@({}x{}): jax {:.0f} GFLOP/s, torch "
        "{:.0f} GFLOP/s (same loop, same run)".format(
            dot_shape[0], *dot_shape[1:3], *dot_shape[2:], dot_jax, dot_torch
        )
    )
    print(
        "jreg: one train.sweep, compilation included (compile = trace + lower + XLA); "
        "torch: torch.func stack_module_state + vmap(grad(functional_call)); "
        "% peak of the jax matmul peak"
    )
    head = (
        f"{'S':>3s} {'ep':>4s} {'side':5s} {'wall s':>7s} {'comp s':>7s} "
        f"{'seed-steps/s':>12s} {'GFLOP/s':>8s} {'%peak':>6s} {'test acc':>8s}"
    )
    print(head)
    cells = []
    for s, e in itertools.product(args.seeds, args.epochs):
        flops = train_flops(s, e)
        seed_steps = s * e * STEPS_PER_EPOCH
        jreg_s, compile_s, jreg_acc = run_jreg(ds, seeds=s, epochs=e)
        if torch:
            torch_s, torch_acc = run_torch(torch, ds, seeds=s, epochs=e)
        else:
            torch_s, torch_acc = float("nan"), np.full(1, np.nan)
        for side, t, comp, acc in (
            ("jreg", jreg_s, f"{compile_s:7.1f}", jreg_acc),
            ("torch", torch_s, f"{'':7s}", torch_acc),
        ):
            print(
                f"{s:3d} {e:4d} {side:5s} {t:7.1f} {comp} {seed_steps / t:12.0f} "
                f"{flops / t / 1e9:8.2f} {100 * flops / t / 1e9 / peak_jax:5.1f}% "
                f"{acc.mean():8.3f}"
            )
        print(
            f"{'':9s}torch/jreg {torch_s / jreg_s:.2f}x (without jreg's compile "
            f"{torch_s / (jreg_s - compile_s):.2f}x)"
        )
        cells.append(
            {
                "seeds": s,
                "epochs": e,
                "train_gflop": flops / 1e9,
                "seed_steps": seed_steps,
                "jreg_s": jreg_s,
                "jreg_compile_s": compile_s,
                "torch_s": torch_s,
                "ratio": torch_s / jreg_s,
                "ratio_without_compile": torch_s / (jreg_s - compile_s),
                "jreg_seed_steps_per_s": seed_steps / jreg_s,
                "torch_seed_steps_per_s": seed_steps / torch_s,
                "jreg_gflops": flops / jreg_s / 1e9,
                "torch_gflops": flops / torch_s / 1e9,
                "jreg_pct_of_jax_peak": 100 * flops / jreg_s / 1e9 / peak_jax,
                "torch_pct_of_jax_peak": 100 * flops / torch_s / 1e9 / peak_jax,
                "jreg_test_accuracy": jreg_acc.tolist(),
                "torch_test_accuracy": torch_acc.tolist(),
                "jreg_test_accuracy_mean": float(jreg_acc.mean()),
                "torch_test_accuracy_mean": float(torch_acc.mean()),
            }
        )
    max_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    load_end = os.getloadavg()
    print(f"peak resident memory of this process: {max_rss_kib / 1024:.0f} MiB")
    print(
        "load average (1, 5, 15 min) at start: {:.2f} {:.2f} {:.2f}, at end: "
        "{:.2f} {:.2f} {:.2f}".format(*load_start, *load_end)
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "widths": WIDTHS,
                    "n_train": N_TRAIN,
                    "n_test": N_TEST,
                    "batch": BATCH,
                    "lr": LR,
                    "momentum": MOMENTUM,
                    "cells": cells,
                    "matmul_gflops_jax": peak_jax,
                    "matmul_gflops_torch": peak_torch,
                    "step_dot_shape": dot_shape,
                    "step_dot_gflops_jax": dot_jax,
                    "step_dot_gflops_torch": dot_torch,
                    "max_rss_kib": max_rss_kib,
                    "load_average_start": load_start,
                    "load_average_end": load_end,
                    "cpu_count": os.cpu_count(),
                    "xla_devices": jax.device_count(),
                    "torch_threads": args.torch_threads,
                    "jax": jax.__version__,
                    "torch": torch.__version__ if torch else None,
                    "device": jax.devices()[0].device_kind,
                    "platform": platform.platform(),
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
