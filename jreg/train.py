"""One training core for every setting: a :class:`Task`, a stream, and a vmapped sweep.

A :class:`Task` says *what* to train as pure functions — ``init(key, hp) -> state``,
``step(state, batch, key, hp) -> (state, metrics)``, ``evaluate(state, data, hp) ->
dict`` — and declares the hyperparameters it reads, with defaults. A
:class:`jreg.streams.Stream` says which batch is trained on at each step. :func:`sweep`
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

import contextlib
import contextvars
import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from jreg import _checks, _layout, _loop, checkpoint
from jreg._loop import _compiled, _plan
from jreg.streams import Stream

PyTree = Any
HParams = Mapping[str, Any]

#: Common bounds, for a task's ``bounds``: ``(low, high)`` means ``low <= value < high``.
NONNEGATIVE = (0.0, None)
UNIT_INTERVAL = (0.0, 1.0)


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
    """What to train, as pure functions of a state pytree and hyperparameters ``hp``.

    Attributes:
      init: ``(key, hp) -> state``; the state is any pytree (parameter sets, optax
        states, batch-norm statistics, anchors, Q tables).
      step: ``(state, batch, key, hp) -> (state, metrics)``; one update. ``metrics`` is a
        dict (possibly empty) of float arrays, usually scalars. Each is averaged over the
        steps of its evaluation period only, element by element, keeping its shape: a
        (3,) metric gives a history entry of shape (..., T, 3), like an evaluation metric.
        A non-finite value stops that config and is reported (``FloatingPointError``).
      evaluate: ``(state, data, hp) -> dict`` of arrays, after every period, stored as
        returned. The ``monitor`` metric must be finite: NaN/inf is reported like a
        non-finite step metric (other evaluation metrics may be NaN, e.g. undefined).
      hparams: the hyperparameters the task reads, with defaults (floats). Unswept ones
        are compile-time constants (so a default 0 can skip its work entirely).
      check: optional host-side ``data -> None`` that raises on bad data before training
        (labels out of range, NaN inputs).
      name: short description (recorded in checkpoints).
      bounds: allowed values of declared hyperparameters, ``{name: (low, high)}``
        meaning ``low <= value < high`` (None: unbounded), e.g. :data:`NONNEGATIVE` for
        strengths and learning rates, :data:`UNIT_INTERVAL` for rates; checked before
        training.
    """

    init: Callable[[jax.Array, HParams], PyTree]
    step: Callable[..., tuple[PyTree, dict]]
    evaluate: Callable[[PyTree, PyTree, HParams], dict]
    hparams: Mapping[str, float] = dataclasses.field(default_factory=dict)
    check: Callable[[PyTree], None] | None = None
    name: str = "task"
    bounds: Mapping[str, tuple[float | None, float | None]] = dataclasses.field(
        default_factory=dict
    )


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Result:
    """What :func:`sweep` returns; every leaf has leading axes ``(H, S)`` (``fit``: none).

    Attributes:
      state: final task state (when early stopping fired: the state at that point).
      best_state: state at the best value of the monitored metric (``state`` if no
        metric is monitored).
      history: dict of arrays with a time axis T after ``(H, S)`` (one entry per
        evaluation), then the metric's own shape: ``step``, the task's evaluation metrics
        and its step metrics averaged over each period's steps.
      best_step: step of ``best_state``.
      stop_step: step at which training stopped (``num_steps`` if it never stopped).

    ``result[h, s]`` is the result of one config (the matching :func:`fit`).
    """

    state: PyTree
    best_state: PyTree
    history: dict
    best_step: jax.Array
    stop_step: jax.Array

    def __getitem__(self, index) -> Result:
        return jax.tree.map(lambda x: x[index], self)


def _check_seeds(seeds) -> np.ndarray:
    seeds = np.arange(seeds) if isinstance(seeds, (int, np.integer)) else np.asarray(seeds)
    if seeds.ndim != 1 or seeds.size == 0 or not np.issubdtype(seeds.dtype, np.integer):
        raise ValueError(f"seeds must be a positive count or a 1-D array of ints, got {seeds!r}.")
    for value in (int(seeds.min()), int(seeds.max())):
        _checks.check_seed("seeds", value)
    return seeds


def resolve_hparams(task: Task, given: Mapping | None) -> tuple[tuple, dict, int]:
    """Split hyperparameters into static defaults and swept arrays of one length H.

    Args:
      task: declares the names and defaults.
      given: swept values, each a scalar or an array of shape (H,) (scalars broadcast).

    Returns:
      ``(static, swept, H)``: ``static`` a sorted tuple of ``(name, default)`` for the
      names not given, ``swept`` a dict of (H,) arrays.

    Raises:
      ValueError: an undeclared name (listing the declared ones), arrays of different
        lengths, non-finite values or values out of range.
    """
    given = dict(given or {})
    unknown = sorted(set(given) - set(task.hparams))
    if unknown:
        raise ValueError(
            f"unknown hyperparameter(s) {unknown} for task {task.name!r}; it declares "
            f"{sorted(task.hparams) or 'none'}."
        )
    lengths = {k: np.shape(v)[0] for k, v in given.items() if np.ndim(v) == 1}
    bad = {k: np.shape(v) for k, v in given.items() if np.ndim(v) > 1}
    if bad or len(set(lengths.values())) > 1:
        raise ValueError(
            "swept hyperparameters must be scalars or arrays of one common length (H,); got "
            f"{ {k: np.shape(v) for k, v in given.items()} }. Use jreg.train.grid for products."
        )
    h = next(iter(lengths.values()), 1)
    swept = {}
    for name, value in given.items():
        arr = np.broadcast_to(np.asarray(value), (h,))
        _checks.check_finite(f"hyperparameter {name!r}", arr)
        low, high = task.bounds.get(name, (None, None))
        if (low is not None and np.any(arr < low)) or (high is not None and np.any(arr >= high)):
            where = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'})"
            raise ValueError(f"{name} must lie in {where}, got {value!r}.")
        floating = not np.issubdtype(arr.dtype, np.integer)
        swept[name] = jnp.asarray(arr, jnp.float32 if floating else jnp.int32)
    static = tuple(sorted((k, v) for k, v in task.hparams.items() if k not in given))
    return static, swept, h


def grid(**axes) -> dict[str, np.ndarray]:
    """Cartesian product of hyperparameter lists, flattened to shape (H,) each.

    ``grid(lr=[.1, .01], weight_decay=[0, 1e-3])`` gives 4 configs, ``lr`` varying slowest.
    """
    names = list(axes)
    mesh = np.meshgrid(*[np.asarray(axes[n], np.float32) for n in names], indexing="ij")
    return {n: m.reshape(-1) for n, m in zip(names, mesh, strict=True)}


config_sharding = _layout.config_sharding


def clear_cache() -> None:
    """Forget the compiled sweep programs (they are cached per task, stream and plan)."""
    _compiled.cache_clear()
    _layout.concat_program.cache_clear()


_CHECKPOINTS: contextvars.ContextVar = contextvars.ContextVar("jreg_checkpoints", default=None)


@contextlib.contextmanager
def checkpointing(folder: str, every: int = 5):
    """Inside this block every :func:`sweep` without its own ``checkpoint_dir`` checkpoints.

    The n-th sweep of the block gets the subfolder ``folder/<n>-<task name>-<hash of its
    description>``, so rerunning the same code inside a new block on the same folder
    resumes every sweep from its latest checkpoint (what ``jreg run NAME --resume``
    does) and finished sweeps are not redone.

    Args:
      folder: parent folder of the sweeps' checkpoints.
      every: segments between checkpoints.
    """
    token = _CHECKPOINTS.set((folder, every, [0]))
    try:
        yield
    finally:
        _CHECKPOINTS.reset(token)


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
    strategy: str = "vmap",
    sharding: jax.sharding.Sharding | str | None = "auto",
    checkpoint_dir: str | None = None,
    checkpoint_every: int = 1,
    memory_budget: float | str | None = None,
) -> Result:
    """Train every (hyperparameter, seed) pair as one ``vmap``-ed, jit-compiled program.

    Args:
      task: what to train (:class:`Task`, e.g. :func:`jreg.tasks.supervised`). A family
        of padded widths is swept bucket by bucket by :func:`jreg.widths.sweep_buckets`.
      data: any pytree of arrays, shared by all configs (read by the stream and by
        ``task.evaluate``), e.g. ``{"train": {"x", "y"}, "test": {"x", "y"}}``.
      stream: the batch at each step (:mod:`jreg.streams`).
      seeds: S seeds: ints in [0, 2**32) of shape (S,), or a count meaning ``range(S)``.
      num_steps: training steps (a multiple of ``eval_every``).
      eval_every: steps per evaluation period (a multiple of the stream's block, e.g.
        whole epochs for :func:`jreg.streams.epochs`).
      hparams: swept hyperparameters, each of shape (H,) (zipped, not crossed: use
        :func:`grid`) or a scalar; every name must be declared by the task.
      monitor: evaluated metric whose best value selects ``best_state`` (None: none).
      mode: ``"min"`` or ``"max"``: what "best" means for ``monitor``.
      patience: early stopping (Prechelt 1998): a config stops after this many
        evaluations without a new best ``monitor`` value; its state is frozen from then.
      progress: tqdm bar over steps.
      segments: host calls of the compiled program (default: one per period up to 50
        with ``progress`` or checkpointing, else 1). Results do not depend on it.
      strategy: ``"vmap"`` (batched) or ``"map"`` (``lax.map``, one config after another).
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
            f"sweep needs a jreg.train.Task, got {type(task).__name__} (a width family: "
            "jreg.widths.sweep_buckets)."
        )
    _checks.check_choice("strategy", strategy, ("vmap", "map"))
    _checks.check_positive_int("checkpoint_every", checkpoint_every)
    seeds = _check_seeds(seeds)
    if task.check is not None:
        task.check(data)
    static, swept, h = resolve_hparams(task, hparams)
    checkpointed = checkpoint_dir is not None or _CHECKPOINTS.get() is not None
    # Segments (host calls) follow the progress bar or checkpointing, never the bar alone:
    # a run without a bar still writes its checkpoints.
    split = progress or checkpointed
    plan = _plan(stream, data, num_steps, eval_every, monitor, mode, patience, split, segments)
    s = seeds.size
    num_configs = h * s
    mesh = _layout.mesh_for(sharding, num_configs)
    devices = 1 if mesh is None else mesh.size
    segment, init = _compiled(task, stream, plan, static, strategy, mesh)
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
    if checkpoint_dir is None and _CHECKPOINTS.get() is not None:
        folder, checkpoint_every, counter = _CHECKPOINTS.get()
        hp_lists = {k: v.tolist() for k, v in flat_hp.items()}
        key = json.dumps(
            [task.name, stream.name, static, hp_lists, flat_seeds.tolist()], default=str
        )
        digest = hashlib.sha1(key.encode()).hexdigest()[:12]
        checkpoint_dir = os.path.join(folder, f"{counter[0]:03d}-{task.name}-{digest}")
        counter[0] += 1
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
