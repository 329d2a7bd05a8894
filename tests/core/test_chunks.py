"""Sweeps larger than memory: configs in chunks sized to a budget, equal to one program."""

import chex
import numpy as np
import optax
import pytest

from jreg import tasks
from jreg.core import _layout, streams, train
from jreg.nn import nets

pytestmark = pytest.mark.standard_promotion


def _setup(num_lr=8, seeds=4):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    data = tasks.split_data(x, y, x[:16], y[:16])
    task = tasks.supervised(
        nets.mlp((3, 64, 2)),
        optimizer=lambda hp: optax.adam(hp["learning_rate"]),
        hparams={"learning_rate": 0.1},
    )
    kw = dict(
        seeds=seeds,
        hparams={"learning_rate": np.geomspace(1e-3, 1e-1, num_lr)},
        stream=streams.epochs(16),
        num_steps=12,
        eval_every=4,
        progress=False,
    )
    return task, data, kw


@pytest.fixture
def chunks_seen(monkeypatch):
    """Records (chosen chunk, lower fn, devices, history bytes) of every sweep."""
    seen = []
    real = _layout.chunk_size

    def spy(num_configs, devices, budget, lowered_fn, history_bytes):
        seen.append((real(num_configs, devices, budget, lowered_fn, history_bytes), lowered_fn))
        seen[-1] += (devices, history_bytes)
        return seen[-1][0]

    monkeypatch.setattr(_layout, "chunk_size", spy)
    return seen


def _budget_for(seen, per_device: float) -> tuple[float, tuple]:
    """A budget holding ``per_device`` configs per device, from XLA's memory analysis."""
    _, lower, devices, hist = seen[-1]
    one = _layout.program_bytes(lower, devices, 1, hist)
    two = _layout.program_bytes(lower, devices, 2, hist)
    return one + (per_device - 1) * (two - one), (lower, devices, hist)


def test_a_budget_splits_the_sweep_into_chunks_with_the_same_result(chunks_seen):
    task, data, kw = _setup()
    full = train.sweep(task, data, **kw)
    train.sweep(task, data, memory_budget="auto", **kw)  # plenty: one chunk
    assert chunks_seen[-1][0] == 32
    budget, (lower, devices, hist) = _budget_for(chunks_seen, 5.5)
    chunked = train.sweep(task, data, memory_budget=budget, **kw)
    assert chunks_seen[-1][0] == 5 * devices  # -> 7 chunks of 5 (the last one padded)
    chex.assert_trees_all_close(chunked, full, rtol=1e-6, atol=1e-7)
    # XLA's own analysis of the program at the chosen size fits the budget; one more
    # config per device does not.
    assert _layout.program_bytes(lower, devices, 5, hist) <= budget
    assert _layout.program_bytes(lower, devices, 6, hist) > budget


def test_a_budget_that_holds_no_config_is_one_clear_line():
    task, data, kw = _setup()
    with pytest.raises(ValueError, match="memory_budget=1e\\+03 bytes holds no config"):
        train.sweep(task, data, memory_budget=1000, **kw)
    with pytest.raises(ValueError, match="positive number of bytes"):
        train.sweep(task, data, memory_budget=-5, **kw)


def test_chunks_checkpoint_and_resume_bit_identically(tmp_path, chunks_seen):
    task, data, kw = _setup(num_lr=4, seeds=2)
    train.sweep(task, data, memory_budget="auto", **kw)
    budget, _ = _budget_for(chunks_seen, 3.5)
    first = train.sweep(task, data, memory_budget=budget, checkpoint_dir=str(tmp_path), **kw)
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert folders == ["chunk-0000", "chunk-0001", "chunk-0002"]  # 8 configs, 3 per chunk
    again = train.sweep(task, data, memory_budget=budget, checkpoint_dir=str(tmp_path), **kw)
    chex.assert_trees_all_equal(first, again)
    full = train.sweep(task, data, **kw)  # float rounding of another vmap width
    chex.assert_trees_all_close(first, full, rtol=1e-5, atol=1e-6)


def test_a_nan_in_a_later_chunk_names_its_config(chunks_seen):
    import jax.numpy as jnp

    _, data, kw = _setup(num_lr=4, seeds=2)
    # the step metric sqrt(1 - x) is NaN for the last config only (x = 2), in chunk 3 of 3
    sqrt_task = train.Task(
        init=lambda key, hp: {"w": jnp.zeros(64)},
        step=lambda s, batch, key, hp: (s, {"r": jnp.sqrt(1.0 - hp["x"])}),
        evaluate=lambda s, d, hp: {"w0": s["w"][0]},
        hparams={"x": 0.0},
    )
    kw.update(hparams={"x": np.array([0.0, 0.5, 0.9, 1.0], np.float32)}, seeds=[5, 9])
    train.sweep(sqrt_task, data, memory_budget="auto", **kw)
    budget, _ = _budget_for(chunks_seen, 3.5)
    kw.update(hparams={"x": np.array([0.0, 0.5, 0.9, 2.0], np.float32)})
    with pytest.raises(FloatingPointError, match=r"step 0 in config \(h=3, s=0\): seed 5, .*2\.0"):
        train.sweep(sqrt_task, data, memory_budget=budget, **kw)
    assert chunks_seen[-1][0] == 3


def test_keep_states_false_returns_the_same_history_without_states(chunks_seen):
    task, data, kw = _setup(num_lr=4, seeds=2)
    full = train.sweep(task, data, **kw)
    budget, _ = _budget_for(chunks_seen, 1.5)
    lean = train.sweep(task, data, memory_budget=budget, keep_states=False, **kw)
    assert chunks_seen[-1][0] < 8  # several chunks, each one's states dropped
    assert lean.state is None and lean.best_state is None
    chex.assert_trees_all_close(lean.history, full.history, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(lean.stop_step, full.stop_step)
    assert lean[1, 0].state is None and lean[1, 0].history["step"].shape == (3,)
