"""What a sweep trains: a :class:`Task` (pure functions and declared hyperparameters) and
the :class:`Result` it returns; hyperparameter grids and their checks.

A :class:`Task` says *what* to train — ``init(key, hp) -> state``, ``step(state, batch, key,
hp) -> (state, metrics)``, ``evaluate(state, data, hp) -> dict`` — and declares the
hyperparameters it reads, with defaults and bounds. :func:`jreg.core.train.sweep` trains it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jreg.util import checks

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


def check_seeds(seeds) -> np.ndarray:
    seeds = np.arange(seeds) if isinstance(seeds, (int, np.integer)) else np.asarray(seeds)
    if seeds.ndim != 1 or seeds.size == 0 or not np.issubdtype(seeds.dtype, np.integer):
        raise ValueError(f"seeds must be a positive count or a 1-D array of ints, got {seeds!r}.")
    for value in (int(seeds.min()), int(seeds.max())):
        checks.check_seed("seeds", value)
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
            f"{ {k: np.shape(v) for k, v in given.items()} }. Use jreg.core.train.grid for "
            "products."
        )
    h = next(iter(lengths.values()), 1)
    swept = {}
    for name, value in given.items():
        arr = np.broadcast_to(np.asarray(value), (h,))
        checks.check_finite(f"hyperparameter {name!r}", arr)
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
