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
import functools
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from jreg import _checks, checkpoint
from jreg._loop import _compiled, _plan
from jreg.streams import Stream

PyTree = Any
HParams = Mapping[str, Any]

#: Hyperparameter names whose values must be >= 0, or in [0, 1).
NONNEGATIVE = ("weight_decay", "l1", "l2", "learning_rate", "lr", "lr0", "lam", "gamma")
UNIT_INTERVAL = ("label_smoothing", "dropout_rate", "drop_path_rate", "shift_p")


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
    """

    init: Callable[[jax.Array, HParams], PyTree]
    step: Callable[..., tuple[PyTree, dict]]
    evaluate: Callable[[PyTree, PyTree, HParams], dict]
    hparams: Mapping[str, float] = dataclasses.field(default_factory=dict)
    check: Callable[[PyTree], None] | None = None
    name: str = "task"


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
        if name in NONNEGATIVE:
            _checks.check_nonnegative(name, arr)
        if name in UNIT_INTERVAL:
            _checks.check_unit_interval(name, arr)
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


def config_sharding(devices=None) -> jax.sharding.NamedSharding:
    """A ``NamedSharding`` that splits the sweep's config axis over ``devices`` (default all).

    With several processes (``jreg.runtime.initialize``, a TPU pod slice, GPU hosts)
    ``jax.devices()`` lists every process's devices and a sweep spreads its configs over
    all of them.
    """
    devices = np.asarray(jax.devices() if devices is None else devices)
    mesh = jax.sharding.Mesh(devices.reshape(-1), ("cfg",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("cfg"))


def _mesh(sharding, num_configs: int) -> jax.sharding.Mesh | None:
    """The 1-D ``("cfg",)`` mesh the configs are split over, or None for one device."""
    if sharding is None:
        return None
    if isinstance(sharding, str):
        _checks.check_choice("sharding", sharding, ("auto",))
        devices = jax.devices()
        if jax.process_count() == 1:  # every process must take part in a multi-host sweep
            devices = devices[: min(len(devices), num_configs)]
        if len(devices) < 2:
            return None
        sharding = config_sharding(devices)
    if isinstance(sharding, jax.sharding.NamedSharding):
        sharding = sharding.mesh
    if not isinstance(sharding, jax.sharding.Mesh):
        raise ValueError(
            "sharding must be 'auto', None, a jax.sharding.Mesh or a NamedSharding, got "
            f"{type(sharding).__name__}."
        )
    return jax.sharding.Mesh(np.asarray(sharding.devices).reshape(-1), ("cfg",))


def _put(x, mesh, split: bool) -> jax.Array:
    """A host array as a global array: split over ``mesh``'s configs or replicated.

    Built per device from the host copy (``make_array_from_callback``), which also works
    when the mesh spans other processes' devices.
    """
    if mesh is None:
        return jnp.asarray(x)
    spec = jax.sharding.PartitionSpec("cfg") if split else jax.sharding.PartitionSpec()
    sharding = jax.sharding.NamedSharding(mesh, spec)
    if isinstance(x, jax.Array) and x.sharding == sharding:
        return x
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _host(x) -> np.ndarray:
    """The whole of a (config-sharded) array on the host, without a device collective.

    One process: each device's shard is copied to the host and joined in NumPy. Several
    processes: ``process_allgather`` (the only cross-process exchange of a sweep).
    """
    if x.is_fully_addressable:
        out = np.empty(x.shape, x.dtype)
        for shard in x.addressable_shards:
            out[shard.index] = np.asarray(shard.data)
        return out
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def _gather(tree, num_configs: int, shape: tuple):
    """A config-sharded pytree as single-device arrays of leading shape ``shape``."""

    def one(x):
        if x is None:
            return None
        if _is_key(x):
            data = _host(jax.random.key_data(x))[:num_configs]
            return jax.random.wrap_key_data(
                data.reshape(shape + data.shape[1:]), impl=jax.random.key_impl(x)
            )
        y = _host(x)[:num_configs]
        return jnp.asarray(y.reshape(shape + y.shape[1:]))

    return jax.tree.map(one, tree)


def clear_cache() -> None:
    """Forget the compiled sweep programs (they are cached per task, stream and plan)."""
    _compiled.cache_clear()
    _concat_program.cache_clear()


def _fingerprint(fun, *args) -> str:
    """Digest of the program ``fun(*args)`` traces to: its jaxpr and constants' values.

    Covers everything that determines a run beyond the arguments: the task's code, its
    optimizer and constants, the stream. Object addresses in the printout are dropped.
    """
    traced = fun.trace(*args)
    text = re.sub(r" at 0x[0-9a-f]+", "", str(traced.jaxpr))
    digest = hashlib.sha256(text.encode())
    for c in traced.jaxpr.consts:
        if hasattr(c, "shape"):
            arr = jax.random.key_data(c) if _is_key(c) else c
            digest.update(np.ascontiguousarray(np.asarray(arr)).tobytes())
        else:
            digest.update(repr(c).encode())
    return digest.hexdigest()[:16]


def _data_digest(data) -> str:
    """Checksum of every data leaf's values, shapes and dtypes."""
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(data):
        arr = np.ascontiguousarray(np.asarray(leaf))
        digest.update(f"{arr.shape}{arr.dtype}".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()[:16]


def _describe(task, stream, plan, static, swept, seeds, data, programs) -> dict:
    """JSON description of a run: a checkpoint of another run is refused."""
    shapes = jax.tree.map(lambda a: [list(a.shape), str(a.dtype)], data)  # no host copies
    return json.loads(
        json.dumps(
            {
                "task": task.name,
                "stream": stream.name,
                "plan": dataclasses.asdict(plan),
                "static_hparams": dict(static),
                "hparams": {k: np.asarray(v).tolist() for k, v in swept.items()},
                "seeds": seeds.tolist(),
                "data": jax.tree.leaves(shapes, is_leaf=lambda x: isinstance(x, list)),
                "data_values": _data_digest(data),
                "programs (task code, optimizer, stream)": programs,
            },
            default=str,
        )
    )


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


def _raise_nan(nan_step, swept, seeds, h, s) -> None:
    flat = np.asarray(nan_step)[: h * s]
    c = int(np.argmin(np.where(flat >= 0, flat, np.iinfo(np.int32).max)))
    vals = {k: float(f"{float(np.asarray(v)[c // s]):.6g}") for k, v in swept.items()}
    raise FloatingPointError(
        f"training produced NaN/inf (a step metric or the monitored metric) at step "
        f"{int(flat[c])} in config (h={c // s}, s={c % s}): "
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
) -> Result:
    """Train every (hyperparameter, seed) pair as one ``vmap``-ed, jit-compiled program.

    Args:
      task: what to train (:class:`Task`, e.g. :func:`jreg.tasks.supervised`), or a
        :class:`jreg.widths.Bucketed` family of padded tasks (swept bucket by bucket).
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

    Returns:
      :class:`Result` with leading axes ``(H, S)``. ``result[h, s]`` equals :func:`fit`
      with ``hparams[h]`` and ``seeds[s]`` to float rounding; bit for bit when the sweep
      has one config (XLA may order reductions differently at another vmap width).

    Raises:
      FloatingPointError: a step metric or the monitored evaluation metric became NaN/inf
        (the step, (h, s), seed, hparams).
      ValueError: bad arguments, data the task rejects, unknown hyperparameters.
    """
    from jreg import widths  # a Bucketed family is swept bucket by bucket

    if isinstance(task, widths.Bucketed):
        if checkpoint_dir is not None:
            raise ValueError("checkpoint_dir is not supported for a Bucketed sweep yet.")
        kw = dict(stream=stream, num_steps=num_steps, eval_every=eval_every, monitor=monitor)
        kw.update(mode=mode, patience=patience, progress=progress, segments=segments)
        kw.update(strategy=strategy, sharding=sharding)
        return widths.sweep_buckets(task, data, hparams=hparams, seeds=seeds, **kw)
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
    mesh = _mesh(sharding, num_configs)
    # Flatten (H, S) -> C configs: hparams repeat over seeds, seeds tile over hparams; with
    # a mesh, pad C to a multiple of its devices with copies of the last config (dropped).
    take = np.arange(num_configs)
    if mesh is not None:
        take = np.concatenate([take, np.full(-num_configs % mesh.size, num_configs - 1)])
    flat_hp = {k: _put(np.repeat(np.asarray(v), s)[take], mesh, True) for k, v in swept.items()}
    flat_seeds = _put(np.tile(seeds, h).astype(np.uint32)[take], mesh, True)
    data = jax.tree.map(lambda x: _put(x, mesh, False), data)

    segment, init = _compiled(task, stream, plan, static, strategy, mesh)
    carry, chunks, start = init(flat_hp, flat_seeds), [], 0
    description = None
    if checkpointed:
        first = jnp.asarray(0)
        programs = [
            _fingerprint(init, flat_hp, flat_seeds),
            _fingerprint(segment, carry, flat_hp, flat_seeds, data, first),
        ]
        description = _describe(task, stream, plan, static, swept, seeds, data, programs)
    if checkpoint_dir is None and _CHECKPOINTS.get() is not None:
        folder, checkpoint_every, counter = _CHECKPOINTS.get()
        digest = hashlib.sha1(json.dumps(description, sort_keys=True).encode()).hexdigest()
        checkpoint_dir = os.path.join(folder, f"{counter[0]:03d}-{task.name}-{digest[:12]}")
        counter[0] += 1
    concat = _concat_program(mesh)
    if checkpoint_dir is not None:
        one = jax.eval_shape(segment, carry, flat_hp, flat_seeds, data, jnp.asarray(0))[1]
        sharded = jax.tree.map(lambda x: x.sharding, carry)
        per_config = jax.tree.leaves(sharded)[0]
        like = lambda done: (
            jax.tree.map(
                lambda x, sh: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sh), carry, sharded
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
        restored = checkpoint.restore(checkpoint_dir, like, description)
        if restored is not None:
            start, (carry, history) = restored
            chunks = [history] if start else []
    main = jax.process_index() == 0
    bar = tqdm(
        total=num_steps, desc=f"{task.name} {h}x{s}", unit="step", disable=not (progress and main)
    )
    steps_per_segment = plan.periods_per_segment * plan.eval_every
    bar.update(start * steps_per_segment)
    for seg in range(start, plan.num_segments):
        carry, hist = segment(
            carry, flat_hp, flat_seeds, data, jnp.asarray(seg * plan.periods_per_segment)
        )
        chunks.append(hist)
        bar.update(steps_per_segment)
        nan_step = _host(carry.nan_step)
        if np.any(nan_step >= 0):
            bar.close()
            _raise_nan(nan_step, swept, seeds, h, s)
        done = plan.patience is not None and bool(np.all(_host(carry.stopped)))
        if checkpoint_dir is not None and ((seg + 1) % checkpoint_every == 0 or done):
            chunks = [concat(*chunks)]
            checkpoint.save(checkpoint_dir, seg + 1, (carry, chunks[0]), description)
        if done:
            break
    bar.close()
    best = carry.best_state if plan.monitor is not None else carry.state
    res = Result(carry.state, best, concat(*chunks), carry.best_step, carry.stop_step)
    return _gather(res, num_configs, (h, s))


@functools.lru_cache(maxsize=8)
def _concat_program(mesh):
    """Join history chunks along time, each device its own configs (no collective)."""
    concat = lambda *xs: jax.tree.map(lambda *ys: jnp.concatenate(ys, axis=1), *xs)
    if mesh is None:
        return jax.jit(concat)
    cfg = jax.sharding.PartitionSpec("cfg")
    return jax.jit(jax.shard_map(concat, mesh=mesh, in_specs=cfg, out_specs=cfg, check_vma=False))


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
