"""Benchmark: the double-descent width sweep in jreg (bucketed vmap) vs PyTorch eager.

Both sides train the same thing: MNIST-1D (4,000 train, 15% of labels flipped), MLP
40-h-h-10 (ReLU) for the 20 widths of ``jreg run double_descent``, SGD(0.01, momentum
0.9), batch 100, one seed. PyTorch runs the way a researcher would write it: a Python
loop over widths, a DataLoader-free loop over shuffled minibatches. jreg runs
:func:`jreg.tasks.widths.sweep_buckets` of a :class:`jreg.tasks.widths.Bucketed` family of padded
MLPs (one
compiled, vmapped program per width bucket, compilation included in its time and also
reported on its own: tracing + lowering + XLA compilation, from ``jax.monitoring``). The
same run measures a large matmul in both frameworks to say how far each program is from
the machine's matmul peak.

    pip install -e ".[bench]"   # CPU torch 2.13.0
    python benchmarks/double_descent_vs_torch.py [--epochs 500] [--json out.json]
        [--no-torch] [--cache-dir DIR | --cache-dir none]

JAX's persistent compilation cache is on (``~/.cache/jreg/jax`` as in the CLI), so a
second run reports its compile time from the cache; ``--cache-dir none`` measures a cold
compile. ``--no-torch`` runs the jreg side only (e.g. on a GPU machine without torch).
The "attainable" line times the sweep's largest matmul shape, (100 x 300) @ (300 x 300),
on its own: the ceiling for this workload's dots, below the 2048^2 peak.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time

from jreg.core.runtime import enable_compilation_cache, use_all_cpu_cores

use_all_cpu_cores()  # one XLA host device per core (before JAX starts its backend)

import jax
import numpy as np
from _timing import (  # noqa: E402  (benchmarks/ is sys.path[0] when run as a script)
    COMPILE_SECONDS,
    matmul_gflops_jax,
    matmul_gflops_torch,
    small_matmul_gflops_jax,
    small_matmul_gflops_torch,
    torch_device,
    torch_sync,
)

from jreg.experiments import kit
from jreg.experiments.implicit import double_descent
from jreg.tasks import widths


def train_flops(ws, n_train: int, batch: int, epochs: int) -> float:
    """Training FLOPs: 6 x multiply-adds per example (forward 2, backward 4)."""
    steps = (n_train // batch) * epochs
    macs = sum(40 * w + w * w + 10 * w for w in ws)
    return 6.0 * macs * batch * steps


def run_torch(torch, ds, ws, *, epochs: int, batch: int, seed: int = 0) -> tuple[float, list]:
    """Train each width on the noisy labels in a PyTorch eager loop; (seconds, test errors)."""
    dev = torch_device(torch)
    x = torch.as_tensor(ds["train"]["x"], device=dev)
    xt = torch.as_tensor(ds["test"]["x"], device=dev)
    y_noisy = torch.as_tensor(ds["train"]["y_noisy"], dtype=torch.long, device=dev)
    yt = torch.as_tensor(ds["test"]["y"], dtype=torch.long, device=dev)
    errors = []
    start = time.perf_counter()
    for w in ws:
        torch.manual_seed(seed)
        net = torch.nn.Sequential(
            torch.nn.Linear(40, w),
            torch.nn.ReLU(),
            torch.nn.Linear(w, w),
            torch.nn.ReLU(),
            torch.nn.Linear(w, 10),
        ).to(dev)
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        n = x.shape[0]
        for _ in range(epochs):
            perm = torch.randperm(n, device=dev)
            for i in range(n // batch):
                idx = perm[i * batch : (i + 1) * batch]
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(net(x[idx]), y_noisy[idx])
                loss.backward()
                opt.step()
        with torch.no_grad():
            errors.append(float((net(xt).argmax(-1) != yt).float().mean()))
    torch_sync(torch)
    return time.perf_counter() - start, errors


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=500, help="epochs on both sides")
    p.add_argument("--json", default=None)
    p.add_argument("--no-torch", action="store_true", help="jreg side only")
    p.add_argument("--cache-dir", default=None, help="compilation cache; 'none': off")
    args = p.parse_args()
    if args.cache_dir != "none":
        enable_compilation_cache(args.cache_dir)
    torch = None
    if not args.no_torch:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
    cfg = double_descent.get_config()
    ds, _ = double_descent.prepare(cfg)
    ws = [int(w) for w in widths.geometric_widths(*cfg["widths"])]
    batch = cfg["batch_size"]
    flops = train_flops(ws, cfg["n_train"], batch, args.epochs)

    load_start = os.getloadavg()
    peak_jax = matmul_gflops_jax()
    small_jax = small_matmul_gflops_jax()
    peak_torch = matmul_gflops_torch(torch) if torch else float("nan")
    small_torch = small_matmul_gflops_torch(torch) if torch else float("nan")
    run_cfg = cfg | {"seeds": 1, "num_epochs": args.epochs, "eval_every": args.epochs}
    buckets = double_descent.width_family(run_cfg).buckets(ws)
    COMPILE_SECONDS[0] = 0.0
    start = time.perf_counter()
    res = double_descent.train_widths(run_cfg, ds, ws, noise_levels=(1,), run=kit.QUIET)
    jreg_s = time.perf_counter() - start
    compile_s = COMPILE_SECONDS[0]
    rss_jreg = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux: KiB)
    if torch:
        torch_s, torch_err = run_torch(torch, ds, ws, epochs=args.epochs, batch=batch)
    else:
        torch_s, torch_err = float("nan"), [float("nan")]

    rows = {
        "jreg (bucketed vmap, jit)": jreg_s,
        "PyTorch eager loop": torch_s,
    }
    print(
        f"double-descent sweep: 20 widths x 1 seed, {args.epochs} epochs, MNIST-1D 4000, "
        f"B={batch}; {os.cpu_count()} cores, {jax.device_count()} {jax.default_backend()} "
        f"devices ({jax.devices()[0].device_kind}), jax {jax.__version__}, "
        f"torch {torch.__version__ if torch else '-'}; load {load_start[0]:.2f}"
    )
    print(f"training work: {flops / 1e12:.2f} TFLOP (6 x multiply-adds per example, unpadded)")
    print(f"{'':28s} {'wall (s)':>9s} {'GFLOP/s':>9s}")
    for name, t in rows.items():
        print(f"{name:28s} {t:9.1f} {flops / t / 1e9:9.1f}")
    print(
        f"jreg: {len(buckets)} buckets {buckets}; compile (trace + lower + XLA) {compile_s:.1f} s "
        f"of its {jreg_s:.1f} s, training {jreg_s - compile_s:.1f} s"
    )
    print(f"large matmul (2048^2) peak: jax {peak_jax:.0f} GFLOP/s, torch {peak_torch:.0f} GFLOP/s")
    print(
        f"attainable for this workload's largest dot, (100x300)@(300x300): jax "
        f"{small_jax:.0f} GFLOP/s ({100 * small_jax / peak_jax:.0f}% of the peak); the same loop "
        f"in torch (its CPU kernels: MKL/oneDNN) {small_torch:.0f} GFLOP/s"
    )
    print(
        f"bounds from this run: at the 2048^2 peak the work takes {flops / peak_jax / 1e9:.1f} s "
        f"({torch_s * peak_jax * 1e9 / flops:.1f}x torch); at jax's rate for the largest dot "
        f"{flops / small_jax / 1e9:.1f} s ({torch_s * small_jax * 1e9 / flops:.1f}x torch)"
    )
    print(
        f"peak resident memory after the jreg sweep: {rss_jreg:.0f} MiB; "
        f"load at the end {os.getloadavg()[0]:.2f}"
    )
    print(
        f"speed-up jreg vs torch: {torch_s / jreg_s:.1f}x; jreg runs at "
        f"{100 * flops / jreg_s / 1e9 / peak_jax:.0f}% of the matmul peak "
        f"({100 * flops / (jreg_s - compile_s) / 1e9 / peak_jax:.0f}% without compilation; "
        f"{100 * flops / jreg_s / 1e9 / small_jax:.0f}% of the attainable)"
    )
    jreg_err = res["test_error"][0, :, 0, -1]  # (P,): noise level 0, every width, seed 0
    print(
        f"final test error, mean over widths: jreg {np.mean(jreg_err):.3f}, "
        f"torch {np.mean(torch_err):.3f}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "epochs": args.epochs,
                    "jreg_s": jreg_s,
                    "jreg_compile_s": compile_s,
                    "torch_s": torch_s,
                    "ratio": torch_s / jreg_s,
                    "train_tflop": flops / 1e12,
                    "matmul_gflops_jax": peak_jax,
                    "matmul_gflops_torch": peak_torch,
                    "small_matmul_gflops_jax": small_jax,
                    "small_matmul_gflops_torch": small_torch,
                    "jreg_peak_rss_mib": rss_jreg,
                    "load_start": load_start,
                    "load_end": os.getloadavg(),
                    "device": jax.devices()[0].device_kind,
                    "buckets": buckets,
                    "jreg_test_error": jreg_err.tolist(),
                    "torch_test_error": torch_err,
                    "platform": platform.platform(),
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
