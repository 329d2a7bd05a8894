"""The compiled training loop behind :func:`jreg.core.train.sweep` (internal).

One config's loop: evaluation periods (``lax.scan`` over the stream's blocks, each a
``lax.scan`` over steps), early stopping and NaN bookkeeping in the carry. ``compiled_programs``
``vmap``s (or ``lax.map``s) it over configs and jits it, cached per task and plan.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jreg.core import _layout, checkpoint
from jreg.core.streams import Stream
from jreg.util import checks

PyTree = Any


class _Carry(NamedTuple):
    state: PyTree
    best_state: PyTree
    best_value: jax.Array
    best_step: jax.Array
    wait: jax.Array
    stopped: jax.Array
    stop_step: jax.Array
    nan_step: jax.Array
    step: jax.Array


@dataclasses.dataclass(frozen=True)
class _Plan:
    num_steps: int
    eval_every: int
    block: int
    monitor: str | None
    mode: str
    patience: int | None
    periods_per_segment: int
    num_segments: int


def _select(pred, a, b):
    return jax.tree.map(lambda u, v: jnp.where(pred, u, v), a, b)


def _make_segment(task, stream: Stream, plan: _Plan, static_hp: tuple):
    """One config: ``(carry, hp, seed, data, first_period) -> (carry, history_chunk)``."""
    blocks_per_period = plan.eval_every // plan.block

    def segment(carry: _Carry, swept, seed, data, first_period):
        hp = {**dict(static_hp), **swept}
        key = jax.random.key(seed)
        data_key, step_key = jax.random.split(jax.random.fold_in(key, 1))

        def one_step(c, i, prepared):
            state, t, nan_step = c
            batch = stream.take(data, prepared, i)
            out = task.step(state, batch, jax.random.fold_in(step_key, t), hp)
            state, m = _check_step_output(task, out)
            bad = jnp.zeros((), bool)
            for v in jax.tree.leaves(m):
                bad = bad | ~jnp.all(jnp.isfinite(v))
            nan_step = jnp.where((nan_step < 0) & bad, t, nan_step)
            return (state, t + 1, nan_step), m

        def one_block(c, block):
            prepared = stream.prepare(data, data_key, block)
            return jax.lax.scan(lambda c, i: one_step(c, i, prepared), c, jnp.arange(plan.block))

        def one_period(carry: _Carry, period):
            blocks = period * blocks_per_period + jnp.arange(blocks_per_period)
            (state, t, nan_step), ms = jax.lax.scan(
                one_block, (carry.state, carry.step, carry.nan_step), blocks
            )
            frozen = carry.stopped  # once stopped (early stopping or NaN) nothing changes
            state = _select(frozen, carry.state, state)
            t = jnp.where(frozen, carry.step, t)
            ev = task.evaluate(state, data, hp)
            if not isinstance(ev, Mapping):
                raise ValueError(
                    f"Task.evaluate of {task.name!r} must return a dict of metrics, "
                    f"got {_describe_value(ev)}."
                )
            ev = dict(ev)
            clash = set(ev) & (set(ms) | {"step"})
            if clash:
                raise ValueError(f"evaluate and step metrics share names {sorted(clash)}.")
            stop_now = nan_step >= 0
            best = (carry.best_state, carry.best_value, carry.best_step, carry.wait)
            if plan.monitor is not None:
                if plan.monitor not in ev:
                    raise ValueError(
                        f"monitor={plan.monitor!r} is not an evaluated metric; have {sorted(ev)}."
                    )
                # A non-finite monitored value would never be "better": best_state would
                # silently stay the initial state. Report it like a non-finite step metric.
                bad = ~jnp.all(jnp.isfinite(ev[plan.monitor])) & ~frozen
                nan_step = jnp.where((nan_step < 0) & bad, t, nan_step)
                stop_now = nan_step >= 0
                value = ev[plan.monitor] * (1.0 if plan.mode == "min" else -1.0)
                better = (value < carry.best_value) & ~frozen
                best = (
                    _select(better, state, carry.best_state),
                    jnp.where(better, value, carry.best_value),
                    jnp.where(better, t, carry.best_step),
                    jnp.where(better, 0, carry.wait + 1),
                )
                if plan.patience is not None:
                    stop_now = stop_now | (best[3] >= plan.patience)
            stopped = frozen | stop_now
            stop_step = jnp.where(stop_now & ~frozen, t, carry.stop_step)
            # Step metrics: mean over the period's steps (axes 0, 1: blocks x steps) only,
            # per element, so a (3,) metric stays (3,) like an evaluation metric.
            hist = {"step": t, **jax.tree.map(lambda v: v.mean(axis=(0, 1)), ms), **ev}
            return _Carry(state, *best, stopped, stop_step, nan_step, t), hist

        periods = first_period + jnp.arange(plan.periods_per_segment)
        return jax.lax.scan(one_period, carry, periods)

    return segment


def _describe_value(x) -> str:
    shape = getattr(x, "shape", None)
    return type(x).__name__ if shape is None else f"{type(x).__name__} of shape {shape}"


def _check_step_output(task, out):
    """``task.step`` must return ``(state, metrics)`` with ``metrics`` a dict (trace time)."""
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[1], Mapping)):
        got = (
            f"a {len(out)}-tuple whose second entry is {_describe_value(out[1])}"
            if isinstance(out, (tuple, list)) and len(out) == 2
            else _describe_value(out)
        )
        raise ValueError(
            f"Task.step of {task.name!r} must return (state, metrics) with metrics a dict "
            f"of scalars (may be empty: {{}}), got {got}."
        )
    return out


def _init_carry(task, plan: _Plan, static_hp: tuple, swept, seed) -> _Carry:
    state = task.init(jax.random.fold_in(jax.random.key(seed), 0), {**dict(static_hp), **swept})
    zero = jnp.zeros((), jnp.int32)
    return _Carry(
        state=state,
        best_state=state if plan.monitor is not None else None,
        best_value=jnp.asarray(jnp.inf, jnp.float32),
        best_step=zero,
        wait=zero,
        stopped=jnp.zeros((), bool),
        stop_step=jnp.asarray(plan.num_steps, jnp.int32),
        nan_step=jnp.asarray(-1, jnp.int32),
        step=zero,
    )


@functools.lru_cache(maxsize=64)
def compiled_programs(task, stream: Stream, plan: _Plan, static_hp: tuple, mesh=None):
    """Jitted (segment, init) over the flat config axis, cached per task, plan and mesh.

    With a ``mesh`` (1-D, axis ``"cfg"``) both are a ``shard_map``: each device runs the
    vmapped loop on its own block of configs and nothing crosses devices, so the
    compiled programs hold no collective (tested). Without one: a plain jit on one device.
    """
    segment = _make_segment(task, stream, plan, static_hp)
    init = functools.partial(_init_carry, task, plan, static_hp)
    segment = jax.vmap(segment, in_axes=(0, 0, 0, None, None))
    init = jax.vmap(init)
    if mesh is not None:
        cfg, rep = jax.sharding.PartitionSpec("cfg"), jax.sharding.PartitionSpec()
        segment = jax.shard_map(
            segment, mesh=mesh, in_specs=(cfg, cfg, cfg, rep, rep), out_specs=cfg, check_vma=False
        )
        init = jax.shard_map(init, mesh=mesh, in_specs=(cfg, cfg), out_specs=cfg, check_vma=False)
    # The init program runs once: compile it at LLVM -O1 on CPU (XLA:CPU's default level
    # spends ~2 s of a small MLP sweep's compile on the threefry fusions of the normal
    # draws; -O1 takes 0.37 s, docs/performance.md). The training program keeps the default.
    opts = {"xla_backend_optimization_level": 1} if jax.default_backend() == "cpu" else None
    return jax.jit(segment, donate_argnums=0), jax.jit(init, compiler_options=opts)


def make_plan(stream, data, num_steps, eval_every, monitor, mode, patience, progress, segments):
    checks.check_positive_int("num_steps", num_steps)
    checks.check_positive_int("eval_every", eval_every)
    checks.check_choice("mode", mode, ("min", "max"))
    if patience is not None:
        checks.check_positive_int("patience", patience)
        if monitor is None:
            raise ValueError("patience needs a metric to monitor (monitor='test_loss', ...).")
    if num_steps % eval_every:
        raise ValueError(f"num_steps={num_steps} must be a multiple of eval_every={eval_every}.")
    block = stream.block_size(data)
    if eval_every % block:
        raise ValueError(
            f"eval_every={eval_every} must be a multiple of the stream's block of {block} "
            f"steps ({stream.name}: one epoch = {block} steps)."
        )
    num_periods = num_steps // eval_every
    if segments is None:
        segments = min(num_periods, 50) if progress else 1
    # The smallest periods-per-segment that divides evenly into <= `segments` host calls,
    # so every call runs the same compiled program.
    pps = next(
        d
        for d in range(1, num_periods + 1)
        if num_periods % d == 0 and num_periods // d <= max(1, segments)
    )
    return _Plan(num_steps, eval_every, block, monitor, mode, patience, pps, num_periods // pps)


def run_chunk(plan, mesh, programs, hp, sd, data, folder, description, every, bar):
    """Train one chunk of configs (one compiled program) from its latest checkpoint.

    Calls the segment program once per host segment, updates ``bar``, raises
    :class:`NonFinite` on NaN/inf, stops when every config has early-stopped, and saves
    the carry to ``folder`` (orbax, checked against ``description`` on restore) every
    ``every`` segments and at the end.

    Returns:
      ``(state, best_state, history, best_step, stop_step)``, config-sharded on devices.
    """
    segment, init = programs
    carry, chunks, start = init(hp, sd), [], 0
    concat = _layout.concat_program(mesh)
    if folder is not None:
        one = jax.eval_shape(segment, carry, hp, sd, data, jnp.asarray(0))[1]
        shardings = jax.tree.map(lambda x: x.sharding, carry)
        per_config = jax.tree.leaves(shardings)[0]
        like = lambda done: (
            jax.tree.map(
                lambda x, sh: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sh), carry, shardings
            ),
            jax.tree.map(
                lambda x: jax.ShapeDtypeStruct(
                    (x.shape[0], done * plan.periods_per_segment) + x.shape[2:],
                    x.dtype,
                    sharding=per_config,
                ),
                one,
            ),
        )
        restored = checkpoint.restore(folder, like, description)
        if restored is not None:
            start, (carry, history) = restored
            chunks = [history] if start else []
    steps_per_segment = plan.periods_per_segment * plan.eval_every
    bar.update(start * steps_per_segment)
    for seg in range(start, plan.num_segments):
        carry, hist = segment(carry, hp, sd, data, jnp.asarray(seg * plan.periods_per_segment))
        chunks.append(hist)
        bar.update(steps_per_segment)
        nan_step = _layout.host(carry.nan_step)
        if np.any(nan_step >= 0):
            raise NonFinite(nan_step)
        done = plan.patience is not None and bool(np.all(_layout.host(carry.stopped)))
        last = seg + 1 == plan.num_segments
        if folder is not None and ((seg + 1) % every == 0 or done or last):
            chunks = [concat(*chunks)]
            checkpoint.save(folder, seg + 1, (carry, chunks[0]), description)
        if done:
            bar.update((plan.num_segments - seg - 1) * steps_per_segment)
            break
    best = carry.best_state if plan.monitor is not None else carry.state
    return carry.state, best, concat(*chunks), carry.best_step, carry.stop_step


class NonFinite(Exception):
    """A chunk met NaN/inf; ``nan_step`` per config (-1: finite), for the report."""

    def __init__(self, nan_step):
        super().__init__("non-finite")
        self.nan_step = nan_step
