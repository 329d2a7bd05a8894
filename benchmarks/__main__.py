"""``python -m benchmarks``: every benchmark in one table, on whatever JAX and PyTorch see.

Runs each benchmark script in its own process (so each sets up its devices before JAX
starts), reads the JSON each writes, and prints one table: device, the same-run matmul
peak, jreg wall time and compile time, PyTorch eager and torch.func times (skipped where
torch is absent or ``--no-torch``), the ratios, jreg's share of the peak, peak memory.
Runs unchanged on CPU, GPU or TPU: jreg uses JAX's default backend, the torch arms CUDA
when PyTorch sees a GPU.

    python -m benchmarks [--quick] [--no-torch] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def _run(script: str, args: list[str], out_json: str) -> dict:
    cmd = [sys.executable, os.path.join(HERE, script), *args, "--json", out_json]
    print("$", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True)
    with open(out_json) as f:
        return json.load(f)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    p.add_argument("--no-torch", action="store_true", help="jreg side only")
    p.add_argument("--json", default=None, help="write every number here")
    args = p.parse_args()
    no_torch = args.no_torch or importlib.util.find_spec("torch") is None
    torch_flag = ["--no-torch"] if no_torch else []
    rows, raw = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        dd = _run(
            "double_descent_vs_torch.py",
            [*torch_flag, *(["--epochs", "5"] if args.quick else [])],
            os.path.join(tmp, "dd.json"),
        )
        raw["double_descent"] = dd
        rows.append(
            {
                "benchmark": f"double descent, 20 widths, {dd['epochs']} epochs",
                "device": dd["device"],
                "peak_gflops": dd["matmul_gflops_jax"],
                "jreg_s": dd["jreg_s"],
                "compile_s": dd["jreg_compile_s"],
                "torch_eager_s": dd["torch_s"],
                "torch_func_s": float("nan"),
                "pct_peak": 100 * dd["train_tflop"] * 1e3 / dd["jreg_s"] / dd["matmul_gflops_jax"],
                "peak_rss_mib": dd["jreg_peak_rss_mib"],
            }
        )
        seeds = ["--quick"] if args.quick else ["--seeds", "64"]
        sd = _run("seeds_vs_torch_func.py", [*torch_flag, *seeds], os.path.join(tmp, "s.json"))
        raw["seeds"] = sd
        for cell in sd["cells"]:
            rows.append(
                {
                    "benchmark": f"{cell['seeds']} seeds x {cell['epochs']} epochs, MLP",
                    "device": sd["device"],
                    "peak_gflops": sd["matmul_gflops_jax"],
                    "jreg_s": cell["jreg_s"],
                    "compile_s": cell["jreg_compile_s"],
                    "torch_eager_s": float("nan"),
                    "torch_func_s": cell["torch_s"],
                    "pct_peak": cell["jreg_pct_of_jax_peak"],
                    "peak_rss_mib": sd["max_rss_kib"] / 1024,
                }
            )
        small = ["--lrs", "8", "--seeds", "8", "--chunks", "16", "64", "--epochs", "1"]
        ch = _run(
            "chunked_sweep.py",
            small + ["--budget-mib", "8"] if args.quick else [],
            os.path.join(tmp, "c.json"),
        )
        raw["chunked_sweep"] = ch
    print()
    head = (
        f"{'benchmark':38s} {'device':>10s} {'peak GF/s':>9s} {'jreg s':>7s} {'compile':>7s} "
        f"{'torch s':>8s} {'t.func s':>8s} {'ratio':>6s} {'%peak':>6s} {'RSS MiB':>8s}"
    )
    print(head)
    for r in rows:
        torch_s = (
            r["torch_eager_s"] if r["torch_eager_s"] == r["torch_eager_s"] else r["torch_func_s"]
        )
        r["ratio"] = torch_s / r["jreg_s"]
        print(
            f"{r['benchmark']:38s} {str(r['device'])[:10]:>10s} {r['peak_gflops']:9.0f} "
            f"{r['jreg_s']:7.1f} {r['compile_s']:7.1f} {r['torch_eager_s']:8.1f} "
            f"{r['torch_func_s']:8.1f} {r['ratio']:6.2f} {r['pct_peak']:5.1f}% "
            f"{r['peak_rss_mib']:8.0f}"
        )
    print(
        "dot kernels, same loop in both libraries: double descent's largest dot "
        f"(100x300)@(300x300) jax {dd['small_matmul_gflops_jax']:.0f}, torch "
        f"{dd['small_matmul_gflops_torch']:.0f} GFLOP/s; the seed step's largest, batched "
        f"{sd['step_dot_shape']}: jax {sd['step_dot_gflops_jax']:.0f}, torch "
        f"{sd['step_dot_gflops_torch']:.0f} GFLOP/s"
    )
    for r in ch["rows"]:
        print(
            f"chunked sweep, {ch['configs']} configs: {r['label']:24s} "
            f"{r['config_steps_per_s']:9.0f} config-steps/s ({r['vs_best']:.2f} of the best), "
            f"peak RSS {r['peak_rss_mib']:.0f} MiB"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "raw": raw}, f, indent=1)


if __name__ == "__main__":
    main()
