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
    from jreg import tasks
    from jreg.nn import nets
    from jreg.core import streams
    from jreg.core import train

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
    from jreg.core import checkpoint
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

    from jreg.core import checkpoint

    tree = {"k": jax.random.split(jax.random.key(3), 4), "x": np.arange(3.0)}
    checkpoint.save(str(tmp_path), 2, tree, {"a": 1})
    step, got = checkpoint.restore(str(tmp_path), lambda done: tree, {"a": 1})
    assert step == 2
    np.testing.assert_array_equal(jax.random.key_data(got["k"]), jax.random.key_data(tree["k"]))
    np.testing.assert_array_equal(got["x"], tree["x"])


def _small_run():
    import jax.numpy as jnp
    import optax

    from jreg import tasks
    from jreg.core import streams
    from jreg.nn import nets

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    make = lambda lr: tasks.supervised(nets.mlp((3, 8, 2)), optimizer=optax.sgd(lr))
    kw = dict(stream=streams.epochs(16), seed=0, num_steps=16, eval_every=4, progress=False)
    return make, x, y, kw, jnp


@pytest.mark.parametrize(
    "change, named",
    [
        ("optimizer", "programs"),  # optax.sgd(0.1) -> optax.sgd(0.5): the traced step differs
        ("data", "data_values"),  # x_train + 5: same shapes, other values
    ],
)
def test_a_reused_checkpoint_dir_refuses_another_run(tmp_path, change, named):
    from jreg import tasks
    from jreg.core import train

    make, x, y, kw, _ = _small_run()
    data = tasks.split_data(x, y, x[:16], y[:16])
    first = train.fit(make(0.1), data, checkpoint_dir=str(tmp_path), **kw)
    again = train.fit(make(0.1), data, checkpoint_dir=str(tmp_path), **kw)  # same run: resumes
    chex.assert_trees_all_equal(first.history, again.history)
    task, other = make(0.1), data
    if change == "optimizer":
        task = make(0.5)
    else:
        other = tasks.split_data(x + 5, y, x[:16], y[:16])
    with pytest.raises(ValueError, match=f"holds a different run.*{named}"):
        train.fit(task, other, checkpoint_dir=str(tmp_path), **kw)


def test_a_damaged_checkpoint_falls_back_then_says_what_to_do(tmp_path):
    import shutil

    from jreg import tasks
    from jreg.core import train

    make, x, y, kw, _ = _small_run()
    data = tasks.split_data(x, y, x[:16], y[:16])
    ckpt = tmp_path / "c"
    # no progress bar, yet checkpoints every segment (cadence does not follow the bar)
    fresh = train.fit(make(0.1), data, checkpoint_dir=str(ckpt), **kw)
    steps = sorted(int(p.name) for p in ckpt.iterdir() if p.name.isdigit())
    assert steps == [3, 4]  # 4 segments, the last two kept
    shutil.rmtree(ckpt / "4" / "leaves")
    with pytest.warns(UserWarning, match="unreadable; resumed from .*3"):
        resumed = train.fit(make(0.1), data, checkpoint_dir=str(ckpt), **kw)
    chex.assert_trees_all_equal(resumed.history, fresh.history)
    for step in sorted(int(p.name) for p in ckpt.iterdir() if p.name.isdigit()):
        shutil.rmtree(ckpt / str(step) / "leaves", ignore_errors=True)
    with pytest.raises(ValueError, match="every checkpoint in .* is unreadable.*delete"):
        train.fit(make(0.1), data, checkpoint_dir=str(ckpt), **kw)


def test_ctrl_c_during_a_save_waits_for_the_save_then_interrupts(tmp_path):
    """SIGINT inside ``deferred_interrupt`` lets the block finish, then raises."""
    from jreg.core import checkpoint

    finished = []
    with pytest.raises(KeyboardInterrupt):
        with checkpoint.deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # a plain handler would have raised here
            finished.append(True)
    assert finished == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    with checkpoint.deferred_interrupt():  # no signal: no interrupt
        finished.append(True)
    assert finished == [True, True]
