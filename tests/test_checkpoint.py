"""Checkpoint and resume: a sweep killed with SIGKILL and resumed is bit-identical."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import chex
import numpy as np
import pytest

pytestmark = pytest.mark.standard_promotion

SETUP = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np, optax
    from jreg import nets, streams, tasks, train

    def make():
        kx, ky = jax.random.split(jax.random.key(0))
        y = np.asarray(jax.random.randint(ky, (96,), 0, 3), np.int32)
        x = np.asarray(3.0 * jnp.eye(3)[y] + jax.random.normal(kx, (96, 3)), np.float32)
        data = tasks.split_data(x, y, x[:48], y[:48])
        task = tasks.supervised(
            nets.mlp((3, 16, 3)),
            optimizer=lambda hp: optax.adam(hp["lr"]),
            regularizers={"weight_decay": tasks.HALF_L2},
            hparams={"lr": 0.01, "dropout_rate": 0.1},
        )
        kw = dict(stream=streams.epochs(16), seeds=[0, 3], hparams={"weight_decay": [0.0, 1e-3]},
                  num_steps=6 * 40, eval_every=6 * 2, monitor="test_loss", segments=20,
                  progress=False)
        return task, data, kw
    """
)

CHILD = SETUP + textwrap.dedent(
    """
    import sys, time
    from jreg import checkpoint
    save = checkpoint.save
    def slow_save(*a, **k):  # slow the run down so the parent can kill it midway
        save(*a, **k)
        print("saved", a[1], flush=True)
        time.sleep(0.4)
    checkpoint.save = slow_save
    task, data, kw = make()
    train.sweep(task, data, checkpoint_dir=sys.argv[1], **kw)
    print("finished", flush=True)
    """
)


def test_sigkill_and_resume_is_bit_identical(tmp_path):
    ckpt = str(tmp_path / "ckpt")
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, ckpt], stdout=subprocess.PIPE, text=True, env=env
    )
    saved = 0
    deadline = time.time() + 240
    while saved < 5 and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("saved"):
            saved = int(line.split()[1])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 5 <= saved < 20, f"the child was not killed midway (saved {saved} of 20 segments)"

    namespace = {}
    exec(SETUP, namespace)
    task, data, kw = namespace["make"]()
    train = namespace["train"]
    resumed = train.sweep(task, data, checkpoint_dir=ckpt, **kw)
    fresh = train.sweep(task, data, **kw)
    chex.assert_trees_all_equal(resumed.history, fresh.history)
    chex.assert_trees_all_equal(resumed.state, fresh.state)
    chex.assert_trees_all_equal(resumed.best_state, fresh.best_state)
    np.testing.assert_array_equal(resumed.best_step, fresh.best_step)
    # a finished run's folder resumes to the same result without training again
    again = train.sweep(task, data, checkpoint_dir=ckpt, **kw)
    chex.assert_trees_all_equal(again.history, fresh.history)

    # a different run in the same folder is refused
    kw2 = {**kw, "hparams": {"weight_decay": [0.0, 1e-2]}}
    with pytest.raises(ValueError, match="holds a different run.*hparams"):
        train.sweep(task, data, checkpoint_dir=ckpt, **kw2)


def test_state_with_prng_keys_round_trips(tmp_path):
    import jax

    from jreg import checkpoint

    tree = {"k": jax.random.split(jax.random.key(3), 4), "x": np.arange(3.0)}
    checkpoint.save(str(tmp_path), 2, tree, {"a": 1})
    step, got = checkpoint.restore(str(tmp_path), lambda done: tree, {"a": 1})
    assert step == 2
    np.testing.assert_array_equal(jax.random.key_data(got["k"]), jax.random.key_data(tree["k"]))
    np.testing.assert_array_equal(got["x"], tree["x"])
