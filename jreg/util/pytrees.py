"""Pytree helpers shared by the penalties (masks, upcasting, batches)."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jreg.util import checks

PyTree = Any
Mask = PyTree | Callable[[PyTree], PyTree] | None


# ----------------------------------------------------------------------------- helpers


def upcast(x: Any) -> jax.Array:
    """A float array of at least 32 bits (integers and 16-bit floats become float32)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating) or jnp.finfo(x.dtype).bits < 32:
        x = x.astype(jnp.float32)
    return x


def total(terms: list[jax.Array]) -> jax.Array:
    """Sum scalar terms, casting to the widest float among them (strict-promotion safe)."""
    if not terms:
        return jnp.zeros((), jnp.float32)
    dtype = max((t.dtype for t in terms), key=lambda d: jnp.finfo(d).bits)
    return functools.reduce(operator.add, [t.astype(dtype) for t in terms])


def is_key(x) -> bool:
    """True for a typed PRNG key array (or its ``ShapeDtypeStruct``)."""
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def masked_leaves(params: PyTree, mask: Mask) -> list[Any]:
    """The leaves of ``params`` whose (static) mask entry is True."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    if mask is None:
        return leaves
    if callable(mask):
        mask = mask(params)
    try:
        flags = treedef.flatten_up_to(mask)
    except (ValueError, TypeError) as err:
        raise ValueError(
            "mask must be a pytree of bools with the same tree structure as params "
            f"(params: {treedef}); got {jax.tree_util.tree_structure(mask)}."
        ) from err
    out = []
    for leaf, flag in zip(leaves, flags, strict=True):
        if not checks.is_concrete(flag):
            raise TypeError(
                "mask entries must be static Python bools, not traced values; build the "
                "mask from shapes or names (e.g. lambda p: tree.map(lambda x: x.ndim > 1, p))."
            )
        if np.ndim(flag) != 0:
            raise ValueError(
                f"mask entries must be single bools (one per leaf), got shape {np.shape(flag)}."
            )
        if bool(flag):
            out.append(leaf)
    return out


def paired_leaves(name: str, params: PyTree, other: PyTree) -> list[Any]:
    """Leaves of ``other`` aligned with the leaves of ``params`` (same structure)."""
    treedef = jax.tree_util.tree_structure(params)
    try:
        return treedef.flatten_up_to(other)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{name} must have the same tree structure as params (params: {treedef}); "
            f"got {jax.tree_util.tree_structure(other)}."
        ) from err


def check_nonnegative_tree(name: str, tree: PyTree) -> None:
    """Concrete leaves must be finite and >= 0 (skipped for tracers)."""
    checks.check_finite(name, tree)
    if not checks.is_concrete(tree):
        return
    for leaf in jax.tree_util.tree_leaves(tree):
        if np.any(np.asarray(leaf) < 0):
            raise ValueError(
                f"{name} must be >= 0 everywhere (they are prior precisions / importances); "
                f"got a minimum of {np.min(np.asarray(leaf))}."
            )


def as_batch(name: str, x: Any) -> jax.Array:
    """Validate a batch ``(B, ...)`` and return it as a float array (ints -> float32)."""
    if np.ndim(x) < 2:
        raise ValueError(f"{name} must have shape (B, features...), got {np.shape(x)}.")
    checks.check_finite(name, x)
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.float32)


def safe_norm(sq: jax.Array) -> jax.Array:
    """``sqrt`` with a finite gradient at 0 (the clamp is far below float32 resolution)."""
    return jnp.sqrt(jnp.maximum(sq, jnp.finfo(sq.dtype).tiny))


def normalize(x: jax.Array) -> jax.Array:
    return x / safe_norm(jnp.sum(x * x))


def as_scalar_fn(fn: Callable, name: str) -> Callable:
    """Wrap ``fn`` so that its output is a scalar (shape () or (1,) accepted)."""

    def wrapped(x):
        out = fn(x)
        if np.size(out) != 1:
            raise ValueError(
                f"{name} must map one example to a scalar, got output shape {np.shape(out)}."
            )
        return jnp.reshape(out, ())

    return wrapped
