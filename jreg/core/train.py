"""One training core for every setting: a :class:`Task`, a stream, and a vmapped sweep.

A :class:`Task` says *what* to train as pure functions — ``init(key, hp) -> state``,
``step(state, batch, key, hp) -> (state, metrics)``, ``evaluate(state, data, hp) ->
dict`` — and declares the hyperparameters it reads, with defaults. A
:class:`jreg.core.streams.Stream` says which batch is trained on at each step. :func:`sweep`
trains every (hyperparameter, seed) pair of a grid as ONE compiled program: ``vmap`` over
the flattened config axis, sharded over devices, ``lax.scan`` over steps. :func:`fit`
is a one-config sweep (the same program, so the two agree bit for bit).

Keys: ``jax.random.key(seed)`` gives ``init_key = fold_in(key, 0)`` and ``data_key,
step_key = split(fold_in(key, 1))``; step ``t`` trains on ``stream(data, data_key, t)``
with ``fold_in(step_key, t)`` for dropout or augmentation. Every config with the same
seed sees the same initialisation and batch order (common random numbers).

Loop layout: steps are grouped into *evaluation periods* of ``eval_every`` steps (a
``lax.scan`` over the stream's blocks, each a ``lax.scan`` over steps); after each
period the task is evaluated and early stopping / NaN checks update. Periods are grouped
into host-side *segments* (calls of the same compiled function), so a progress bar can
advance, NaN is reported, a finished early-stopped sweep returns, and checkpoints are
written between them. Results do not depend on the segmentation.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from jreg.core import _layout, _loop, checkpoint
from jreg.core._loop import compiled_programs, make_plan
from jreg.core.streams import Stream
from jreg.core.task import (
    NONNEGATIVE,
    UNIT_INTERVAL,
    Result,
    Task,
    check_seeds,
    grid,
    resolve_hparams,
)
from jreg.util import checks

PyTree = Any

__all__ = ["NONNEGATIVE", "UNIT_INTERVAL", "Result", "Task", "clear_cache", "fit", "grid", "sweep"]

config_sharding = _layout.config_sharding


def clear_cache() -> None:
    """Forget the compiled sweep programs (they are cached per task, stream and plan)."""
    compiled_programs.cache_clear()
    _layout.concat_program.cache_clear()


def _raise_nan(nan_step, offset: int, swept, seeds, s) -> None:
    """FloatingPointError naming the first non-finite config of a chunk (flat offset)."""
    c = int(np.argmin(np.where(nan_step >= 0, nan_step, np.iinfo(np.int32).max)))
    step, c = int(nan_step[c]), offset + c
    vals = {k: float(f"{float(np.asarray(v)[c // s]):.6g}") for k, v in swept.items()}
    raise FloatingPointError(
        f"training produced NaN/inf (a step metric or the monitored metric) at step "
        f"{step} in config (h={c // s}, s={c % s}): "
        f"seed {int(seeds[c % s])}, hparams {vals}; lower the learning rate or check the "
        "data and the loss."
    )


def sweep(
    task: Task,
    data: PyTree,
    *,
    stream: Stream,
    seeds,
    num_steps: int,
    eval_every: int,
    hparams: Mapping[str, Any] | None = None,
    monitor: str | None = None,
    mode: str = "min",
    patience: int | None = None,
    progress: bool = True,
    segments: int | None = None,
    sharding: jax.sharding.Sharding | str | None = "auto",
    checkpoint_dir: str | None = None,
    checkpoint_every: int = 1,
    memory_budget: float | str | None = None,
    keep_states: bool = True,
) -> Result:
    """Train every (hyperparameter, seed) pair as one ``vmap``-ed, jit-compiled program.

    Args:
      task: what to train (:class:`Task`, e.g. :func:`jreg.tasks.supervised`). A family
        of padded widths is swept bucket by bucket by :func:`jreg.tasks.widths.sweep_buckets`.
      data: any pytree of arrays, shared by all configs (read by the stream and by
        ``task.evaluate``), e.g. ``{"train": {"x", "y"}, "test": {"x", "y"}}``.
      stream: the batch at each step (:mod:`jreg.core.streams`).
      seeds: S seeds: ints in [0, 2**32) of shape (S,), or a count meaning ``range(S)``.
      num_steps: training steps (a multiple of ``eval_every``).
      eval_every: steps per evaluation period (a multiple of the stream's block, e.g.
        whole epochs for :func:`jreg.core.streams.epochs`).
      hparams: swept hyperparameters, each of shape (H,) (zipped, not crossed: use
        :func:`grid`) or a scalar; every name must be declared by the task.
      monitor: evaluated metric whose best value selects ``best_state`` (None: none).
      mode: ``"min"`` or ``"max"``: what "best" means for ``monitor``.
      patience: early stopping (Prechelt 1998): a config stops after this many
        evaluations without a new best ``monitor`` value; its state is frozen from then.
      progress: tqdm bar over steps.
      segments: host calls of the compiled program (default: one per period up to 50
        with ``progress`` or checkpointing, else 1). Results do not depend on it.
      sharding: how the flattened (H*S,) config axis is laid out on devices. ``"auto"``:
        with D > 1 devices, split over ``min(D, H*S)`` of them (every device of every
        process when there are several processes), padding the config axis with copies
        of the last config (dropped again); ``None``: one device; or a 1-D
        ``jax.sharding.Mesh`` / ``NamedSharding``. Each device trains its own block in a
        ``shard_map`` with nothing crossing devices (no collective in any program), and
        the result is joined on the host.
      checkpoint_dir: save the whole carry there (orbax) every ``checkpoint_every``
        segments; calling the same sweep again resumes from the latest complete
        checkpoint, bit-identically. Another run in the folder (other programs, data
        values, hyperparameters, seeds or plan) is a ValueError naming what differs.
      checkpoint_every: segments between checkpoints.
      memory_budget: bytes the sweep may use on this process's devices (``"auto"``: the
        devices' free memory, or half the free host RAM on CPU; None: no limit). The
        configs then run in chunks that fit, one after another, each a call of the same
        compiled program (sized from XLA's memory analysis of the program); the result
        equals the one-program sweep (to float rounding at another vmap width), and
        each chunk checkpoints in its own subfolder of ``checkpoint_dir``.
      keep_states: False: return ``state=None`` and ``best_state=None`` (the history and
        steps only). Each chunk's states are then dropped as soon as it finishes, so a
        sweep of many large models holds one chunk's states at a time, not all of them.

    Returns:
      :class:`Result` with leading axes ``(H, S)``. ``result[h, s]`` equals :func:`fit`
      with ``hparams[h]`` and ``seeds[s]`` to float rounding; bit for bit when the sweep
      has one config (XLA may order reductions differently at another vmap width).

    Raises:
      FloatingPointError: a step metric or the monitored evaluation metric became NaN/inf
        (the step, (h, s), seed, hparams).
      ValueError: bad arguments, data the task rejects, unknown hyperparameters.
    """
    if not isinstance(task, Task):
        raise TypeError(
            f"sweep needs a jreg.core.train.Task, got {type(task).__name__} (a width family: "
            "jreg.tasks.widths.sweep_buckets)."
        )
    checks.check_positive_int("checkpoint_every", checkpoint_every)
    seeds = check_seeds(seeds)
    if task.check is not None:
        task.check(data)
    static, swept, h = resolve_hparams(task, hparams)
    checkpointed = checkpoint_dir is not None
    # Segments (host calls) follow the progress bar or checkpointing, never the bar alone:
    # a run without a bar still writes its checkpoints.
    split = progress or checkpointed
    plan = make_plan(stream, data, num_steps, eval_every, monitor, mode, patience, split, segments)
    s = seeds.size
    num_configs = h * s
    mesh = _layout.mesh_for(sharding, num_configs)
    devices = 1 if mesh is None else mesh.size
    segment, init = compiled_programs(task, stream, plan, static, mesh)
    host_data, data = data, jax.tree.map(lambda x: _layout.put(x, mesh, False), data)
    # Flatten (H, S) -> C configs: hparams repeat over seeds, seeds tile over hparams.
    flat_hp = {k: np.repeat(np.asarray(v), s) for k, v in swept.items()}
    flat_seeds = np.tile(seeds, h).astype(np.uint32)

    def configs(idx):  # a chunk's configs as global arrays (split over the mesh)
        hp = {k: _layout.put(v[idx], mesh, True) for k, v in flat_hp.items()}
        return hp, _layout.put(flat_seeds[idx], mesh, True)

    def lower(c):  # the segment program for c configs, for its memory analysis
        hp, sd = configs(np.zeros(c, int))
        carry = jax.eval_shape(init, hp, sd)
        return segment.lower(carry, hp, sd, data, jnp.asarray(0))

    history_bytes = 0.0
    if memory_budget is not None:  # one config's history, kept on the device
        hp, sd = configs(np.zeros(devices, int))
        one = jax.eval_shape(segment, jax.eval_shape(init, hp, sd), hp, sd, data, 0)[1]
        history_bytes = plan.num_segments * sum(
            x.size * x.dtype.itemsize / devices for x in jax.tree.leaves(one)
        )
    chunk = _layout.chunk_size(num_configs, devices, memory_budget, lower, history_bytes)
    # Balance the chunks, each a multiple of the devices; the last is padded with copies
    # of its last config (dropped again).
    chunk = math.ceil(num_configs / math.ceil(num_configs / chunk))
    chunk += -chunk % devices
    starts = range(0, num_configs, chunk)
    if checkpoint_dir is not None:  # what every chunk's checkpoint must match, made once
        hp0, sd0 = configs(np.zeros(chunk, int))
        carry0 = jax.eval_shape(init, hp0, sd0)
        programs = [
            checkpoint.fingerprint(init, hp0, sd0),
            checkpoint.fingerprint(segment, carry0, hp0, sd0, data, jnp.asarray(0)),
        ]
        digest = checkpoint.data_digest(host_data)
    main = jax.process_index() == 0
    bar = tqdm(
        total=num_steps * len(starts),
        desc=f"{task.name} {h}x{s}" + (f" in {len(starts)} chunks" if len(starts) > 1 else ""),
        unit="step",
        disable=not (progress and main),
    )
    parts = []
    for i, first in enumerate(starts):
        idx = np.arange(first, min(first + chunk, num_configs))
        idx = np.concatenate([idx, np.full(chunk - idx.size, idx[-1])])
        folder = checkpoint_dir
        if checkpoint_dir is not None and len(starts) > 1:
            folder = os.path.join(checkpoint_dir, f"chunk-{i:04d}")
        hp, sd = configs(idx)
        real = min(chunk, num_configs - first)
        description = folder and checkpoint.describe_run(
            task, stream, plan, static, {k: v[idx] for k, v in flat_hp.items()},
            flat_seeds[idx], data, digest, programs,
        )  # fmt: skip
        try:
            res = Result(*_loop.run_chunk(
                plan, mesh, (segment, init), hp, sd, data, folder, description,
                checkpoint_every, bar,
            ))  # fmt: skip
        except _loop.NonFinite as e:  # report the chunk's first non-finite config
            bar.close()
            _raise_nan(e.nan_step[:real], first, swept, seeds, s)
        if not keep_states:
            res = dataclasses.replace(res, state=None, best_state=None)
        parts.append(_layout.to_host(res, real))
    bar.close()
    return _layout.join_on_host(parts, (h, s))


def fit(
    task: Task,
    data: PyTree,
    *,
    stream: Stream,
    seed: int,
    num_steps: int,
    eval_every: int,
    hparams: Mapping[str, float] | None = None,
    **kwargs,
) -> Result:
    """Train one config: :func:`sweep` with one seed and scalar hyperparameters.

    Same arguments as :func:`sweep` (``seed`` an int instead of ``seeds``); the result has
    no leading axes. It runs the same program as a one-config sweep (bit-identical).
    """
    for name, value in (hparams or {}).items():
        if np.ndim(value):
            raise ValueError(
                f"fit needs scalar hyperparameters; {name!r} has shape {np.shape(value)}."
            )
    kwargs.setdefault("progress", False)
    kwargs.setdefault("sharding", None)
    res = sweep(
        task,
        data,
        stream=stream,
        seeds=[seed],
        num_steps=num_steps,
        eval_every=eval_every,
        hparams=hparams,
        **kwargs,
    )
    return res[0, 0]
