"""Input validation shared by every public jreg function.

Checks run on concrete (host) values before any compute. Inside ``jit``/``vmap`` a
hyperparameter may be a tracer; value checks are then skipped (the caller validated the
concrete array before tracing, e.g. :func:`jreg.core.train.sweep`).
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import numpy as np


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds a value we can inspect on the host (not a tracer)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(x))


def is_static_zero(x: Any) -> bool:
    """True when ``x`` is a concrete (not traced) scalar equal to 0: the term can be skipped."""
    return is_concrete(x) and float(np.asarray(x)) == 0.0


def _values(name: str, value: Any) -> np.ndarray | None:
    if value is None or not is_concrete(value):
        return None
    if callable(value):  # a schedule: checked where it is evaluated
        return None
    arr = np.asarray(value)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}.")
    return arr


def check_nonnegative(name: str, value: Any) -> None:
    """Raise ``ValueError`` if a rate/strength is negative or not finite."""
    arr = _values(name, value)
    if arr is None:
        return
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0, got {value!r}.")


def check_positive(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless every entry of ``value`` is finite and > 0."""
    arr = _values(name, value)
    if arr is None:
        return
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}.")


def check_unit_interval(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``0 <= value < 1`` (dropout rates, smoothing eps)."""
    arr = _values(name, value)
    if arr is None:
        return
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr >= 1):
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}.")


def check_closed_unit_interval(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``0 <= value <= 1`` (mixing ratios, probabilities)."""
    arr = _values(name, value)
    if arr is None:
        return
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}.")


def check_positive_int(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is a Python/numpy integer >= 1."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def check_finite(name: str, x: Any) -> None:
    """Raise ``ValueError`` if a concrete array contains NaN or inf."""
    if not is_concrete(x):
        return
    for leaf in jax.tree_util.tree_leaves(x):
        arr = np.asarray(leaf)
        if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(f"{name} contains {bad} NaN/inf value(s); clean the data first.")


def check_labels(name: str, y: Any, num_classes: int | None = None) -> None:
    """Integer labels of rank 1 in ``[0, num_classes)``."""
    if not is_concrete(y):
        return
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a rank-1 array of integer labels, got shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer class labels, got dtype {arr.dtype}.")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} has negative label {arr.min()}; labels must be in [0, K).")
    if num_classes is not None and arr.size and arr.max() >= num_classes:
        raise ValueError(
            f"{name} has label {arr.max()} outside [0, {num_classes}); "
            f"the model has {num_classes} classes."
        )


def check_choice(name: str, value: str, choices) -> None:
    """Raise ``ValueError`` naming the available options."""
    if value not in choices:
        raise ValueError(f"Unknown {name} {value!r}; available: {', '.join(sorted(choices))}.")


def check_key(key: Any, fn: str) -> None:
    """A jax PRNG key (typed or raw uint32), not None or an int seed."""
    if key is None or isinstance(key, numbers.Number):
        raise TypeError(
            f"{fn} needs an explicit PRNG key, e.g. key=jax.random.key(0); got {key!r}."
        )
    dtype = getattr(key, "dtype", None)
    if dtype is None or not (
        jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key) or np.dtype(dtype) == np.uint32
    ):
        raise TypeError(f"{fn}: key must be a jax PRNG key, got {type(key).__name__}.")


def check_nonneg_int(name: str, value: Any) -> None:
    """A Python int >= 0 (not a bool)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}.")


#: Seeds are turned into keys with ``jax.random.key``, which keeps the low 32 bits only:
#: seed ``2**40`` would silently give the same numbers as seed 0.
SEED_LIMIT = 2**32


def check_seed(name: str, value: Any) -> None:
    """An int seed in ``[0, 2**32)`` (larger ones wrap around to the same key)."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok or not 0 <= value < SEED_LIMIT:
        raise ValueError(
            f"{name} must be an int in [0, 2**32), got {value!r} (jax.random.key keeps only "
            "32 bits, so a larger seed would repeat another seed's numbers)."
        )


def seed_key(seed: Any, name: str = "seed") -> jax.Array:
    """``jax.random.key(seed)`` after :func:`check_seed`: how jreg turns an int into a key."""
    check_seed(name, seed)
    return jax.random.key(int(seed))
