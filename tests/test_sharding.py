"""The sweep's config axis sharded over 8 host devices equals the single-device run."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import jax, numpy as np, optax
    from jreg import nets, streams, tasks, train
    assert jax.device_count() == 8, jax.devices()
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
    sharding = train.config_sharding()
    sharded = train.sweep(task, data, sharding=sharding, **kw)
    single = train.sweep(task, data, sharding=None, **kw)
    leaf = sharded.state["params"][0]["w"]
    print("devices used:", len(leaf.sharding.device_set))
    assert len(leaf.sharding.device_set) == 8
    def same(a, b):
        assert jax.tree.structure(a) == jax.tree.structure(b)
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            assert u.shape == v.shape, (u.shape, v.shape)
            np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-5, atol=1e-6)
    same(sharded, single)
    # sharding="auto" (the default): 5 x 2 = 10 configs are padded to 16 over 8 devices,
    # 3 x 1 = 3 configs use 3 devices; padding copies are dropped from the result.
    for lrs, seeds, used in (([0.05, 0.1, 0.2, 0.3, 0.4], [0, 1], 8), ([0.05, 0.1, 0.2], [0], 3)):
        kw.update(hparams={"learning_rate": np.array(lrs)}, seeds=seeds)
        auto = train.sweep(task, data, **kw)
        assert len(auto.state["params"][0]["w"].sharding.device_set) == used
        assert auto.history["test_loss"].shape == (len(lrs), len(seeds), 3)
        same(auto, train.sweep(task, data, sharding=None, **kw))
    print("OK")
""")


def test_sharded_sweep_equals_single_device():
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu"
    )
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "devices used: 8" in out.stdout and "OK" in out.stdout
