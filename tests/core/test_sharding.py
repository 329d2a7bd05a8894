"""Sweeps on several XLA host devices: equal to one device, no collective, never hang.

Each test runs a fresh Python (XLA flags are read once per process) with the device
layout the CLI uses, and reads every HLO module XLA compiled in it from ``--xla_dump_to``.
"""

import glob
import os
import re
import subprocess
import sys
import textwrap
import time

import pytest

COLLECTIVES = re.compile(r"\b(all-gather|all-reduce|collective-permute|all-to-all|reduce-scatter)")

SCRIPT = textwrap.dedent("""
    import jax, numpy as np, optax
    from jreg import tasks
    from jreg.analysis import linear
    from jreg.nn import nets
    from jreg.core import streams
    from jreg.core import train
    assert jax.device_count() == DEVICES, jax.devices()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    data = tasks.split_data(x, y, x[:16], y[:16])
    task = tasks.supervised(
        nets.mlp((3, 8, 2)),
        optimizer=lambda hp: optax.sgd(hp["learning_rate"]),
        hparams={"learning_rate": 0.1},
    )
    kw = dict(seeds=[0, 1, 2, 3], hparams={"learning_rate": np.array([0.05, 0.2])},
              stream=streams.epochs(16), num_steps=12, eval_every=4, progress=False)
    def same(a, b):
        assert jax.tree.structure(a) == jax.tree.structure(b)
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            assert u.shape == v.shape, (u.shape, v.shape)
            np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-5, atol=1e-6)
    single = train.sweep(task, data, sharding=None, **kw)
    same(train.sweep(task, data, sharding=train.config_sharding(), **kw), single)
    # sharding="auto" (the default): 5 x 2 = 10 configs are padded to a multiple of the
    # devices, 3 x 1 = 3 configs use 3 devices; padding copies are dropped again.
    for lrs, seeds in (([0.05, 0.1, 0.2, 0.3, 0.4], [0, 1]), ([0.05, 0.1, 0.2], [0])):
        kw.update(hparams={"learning_rate": np.array(lrs)}, seeds=seeds)
        auto = train.sweep(task, data, **kw)
        assert auto.history["test_loss"].shape == (len(lrs), len(seeds), 3)
        same(auto, train.sweep(task, data, sharding=None, **kw))
        # The result lives on one device: analysis on it (LAPACK: solve) is one program.
        w = auto.state["params"][0]["w"]
        assert len(w.sharding.device_set) == 1
        gram = np.einsum("hsij,hskj->hsik", np.asarray(w), np.asarray(w))
        rows = w.reshape(-1, 8)
        coef = linear.ridge(rows, rows.sum(1), 0.1)
        assert np.all(np.isfinite(np.asarray(coef.coef))) and np.all(np.isfinite(gram))
    print("OK")
""")


def _run(script: str, devices: int, tmp_path, *, timeout: float, env=None):
    dump = tmp_path / "hlo"
    env = dict(
        env or os.environ,
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices} --xla_dump_to={dump}",
        JAX_PLATFORMS="cpu",
    )
    out = subprocess.run(
        [sys.executable, "-c", script.replace("DEVICES", str(devices))],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "OK" in out.stdout
    modules = sorted(glob.glob(str(dump / "*after_optimizations.txt")))
    assert modules, "XLA dumped no module"
    return {os.path.basename(m): open(m).read() for m in modules}


def test_sharded_sweep_equals_one_device_and_compiles_no_collective(tmp_path):
    modules = _run(SCRIPT, 8, tmp_path, timeout=300)
    with_collective = sorted(name for name, text in modules.items() if COLLECTIVES.search(text))
    assert with_collective == [], with_collective
    # The configs really were split: the training programs ran on 8 and 3 devices.
    parts = {int(n) for text in modules.values() for n in re.findall(r"num_partitions=(\d+)", text)}
    assert {8, 3} <= parts, parts


CONTENTION = textwrap.dedent("""
    import time
    from jreg.core import runtime
    runtime.setup(cache=False)
    import jax, numpy as np, optax
    from jreg import tasks
    from jreg.nn import nets
    from jreg.core import streams
    from jreg.core import train
    assert jax.device_count() == 2
    rng = np.random.default_rng(1)
    x = rng.normal(size=(256, 8)).astype(np.float32)
    y = (x[:, :2].sum(1) > 0).astype(np.int32)
    data = tasks.split_data(x, y, x[:64], y[:64])
    task = tasks.supervised(nets.mlp((8, 32, 2)), optimizer=lambda hp: optax.sgd(hp["lr"]),
                            hparams={"lr": 0.1})
    t0 = time.perf_counter()
    for i in range(12):  # CLI-style sweeps: 3 x 5 configs, padded to 16 on 2 devices
        res = train.sweep(task, data, stream=streams.epochs(32), seeds=5,
                          hparams={"lr": np.array([0.05, 0.1, 0.2]) * (1 + i / 10)},
                          num_steps=80, eval_every=8, progress=False)
        assert np.isfinite(np.asarray(res.history["test_loss"])).all()
    print("OK", time.perf_counter() - t0)
""")


def test_sweeps_finish_while_busy_loops_hold_both_cores(tmp_path):
    """Twelve CLI-style sweeps on 2 host devices while 2 busy loops hold both cores."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        start = time.perf_counter()
        modules = _run(CONTENTION, 2, tmp_path, timeout=240)
        took = time.perf_counter() - start
    finally:
        for p in busy:
            p.kill()
            p.wait()
    assert not [n for n, t in modules.items() if COLLECTIVES.search(t)]
    assert took < 240


@pytest.mark.parametrize("flags", ["", "--xla_force_host_platform_device_count=3"])
def test_use_all_cpu_cores_respects_the_users_count(flags):
    from jreg.core import runtime

    env = {"XLA_FLAGS": flags} if flags else {}
    n = runtime.use_all_cpu_cores(env)
    assert n == (3 if flags else runtime.cpu_cores())
    assert env["XLA_FLAGS"].count("--xla_force_host_platform_device_count") == 1
