"""Helpers shared by jreg's optax transforms (params checks, masks, schedules)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

MaskOrFn = Any | Callable[[optax.Params], Any] | None

# --------------------------------------------------------------------------- helpers


def require_params(name: str, params: optax.Params | None) -> None:
    if params is None:
        raise ValueError(
            f"{name} needs the current params: call `update(updates, state, params)` "
            "(e.g. `tx.update(grads, opt_state, params)`), not `update(updates, state)`."
        )


def with_params_check(
    name: str, inner: optax.GradientTransformation
) -> optax.GradientTransformation:
    """Wrap ``inner`` so that a missing ``params`` raises a ``ValueError`` naming ``name``."""

    def update_fn(updates, state, params=None):
        require_params(name, params)
        return inner.update(updates, state, params)

    return optax.GradientTransformation(inner.init, update_fn)


def maybe_masked(
    inner: optax.GradientTransformation, mask: MaskOrFn
) -> optax.GradientTransformation:
    return inner if mask is None else optax.masked(inner, mask)


def value_at(value: optax.ScalarOrSchedule, count: jax.Array) -> Any:
    return value(count) if callable(value) else value


def default_decay_mask(params: optax.Params) -> Any:
    """Mask that decays matrices and kernels but not biases or normalization scales.

    Args:
        params: a pytree of arrays.

    Returns:
        A pytree with the structure of ``params`` whose leaves are Python bools, ``True``
        for leaves with ``ndim >= 2``. Being static, it can be used under ``jit``.
    """
    return jax.tree.map(lambda x: jnp.ndim(x) >= 2, params)
