"""A sweep over two jax.distributed processes (localhost coordinator, 1 CPU device each).

Checks: the configs are spread over both processes and the Result, readable with
``np.asarray`` on every process, equals the single-process sweep; only process 0 writes
files; a checkpoint saved by both processes (orbax, sharded) resumes bit-identically.
"""

import os
import shutil
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

WORKER = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    pid, port, out, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    from jreg.core import runtime
    if pid >= 0:  # pid -1: the single-process reference
        runtime.initialize(f"localhost:{port}", 2, pid, timeout_s=60)
    import jax, optax
    from jreg import tasks
    from jreg.nn import nets
    from jreg.core import streams
    from jreg.core import train
    from jreg.experiments import runner
    assert jax.process_count() == jax.device_count() == (2 if pid >= 0 else 1), jax.devices()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32)
    data = tasks.split_data(x, y, x[:32], y[:32])
    task = tasks.supervised(nets.mlp((4, 16, 2)), optimizer=lambda hp: optax.adam(hp["lr"]),
                            hparams={"lr": 0.01})
    # 3 configs over 2 processes: padded to 4 (a copy of the last, dropped again).
    res = train.sweep(task, data, stream=streams.epochs(16), seeds=[0],
                      hparams={"lr": np.array([0.003, 0.01, 0.03])}, num_steps=6 * 8,
                      eval_every=6, segments=8, progress=True,
                      checkpoint_dir=os.path.join(out, "ckpt"), checkpoint_every=1)
    leaves = [np.asarray(v) for v in jax.tree.leaves(res)]
    np.savez(os.path.join(out, f"{mode}-{pid}.npz"), *leaves)
    if runtime.is_main_process():
        runner.write_text(os.path.join(out, "written-by.txt"), str(pid))
    print("OK", pid)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
    return env


def _two_processes(tmp_path, mode):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    port = str(_free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(i), port, str(tmp_path), mode],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=240))
    finally:
        for p in procs:
            p.kill()
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
        assert "OK" in out
    return [err for _, err in outs]


def _load(path):
    with np.load(path) as z:
        return [z[f"arr_{i}"] for i in range(len(z.files))]


@pytest.mark.standard_promotion
def test_two_process_sweep_equals_one_process_and_resumes(tmp_path):
    errs = _two_processes(tmp_path, "first")
    # Only process 0 draws progress bars and writes files.
    assert "step" in errs[0] and "step" not in errs[1]
    assert (tmp_path / "written-by.txt").read_text() == "0"
    single_dir = tmp_path / "single"
    single_dir.mkdir()
    out = subprocess.run(
        [sys.executable, str(tmp_path / "worker.py"), "-1", "0", str(single_dir), "single"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    single = _load(single_dir / "single--1.npz")
    for pid in (0, 1):  # every process holds the whole result
        got = _load(tmp_path / f"first-{pid}.npz")
        assert len(got) == len(single)
        for a, b in zip(got, single, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Drop the last checkpoint: the rerun resumes from the one before, bit-identically.
    ckpt = tmp_path / "ckpt"
    steps = sorted(int(p.name) for p in ckpt.iterdir() if p.name.isdigit())
    assert steps[-1] == 8 and len(steps) >= 2
    shutil.rmtree(ckpt / str(steps[-1]))
    _two_processes(tmp_path, "resumed")
    for pid in (0, 1):
        first, resumed = (
            _load(tmp_path / f"first-{pid}.npz"),
            _load(tmp_path / f"resumed-{pid}.npz"),
        )
        for a, b in zip(first, resumed, strict=True):
            np.testing.assert_array_equal(a, b)


def test_unreachable_coordinator_is_one_line(tmp_path):
    code = (
        "from jreg.core import runtime\n"
        f"runtime.initialize('localhost:{_free_port()}', 2, 1, timeout_s=5)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120
    )
    assert out.returncode != 0
    assert "could not join the jax.distributed run at 'localhost:" in out.stderr
