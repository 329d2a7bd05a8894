"""Learning-rate schedules as optax schedules (``step -> learning rate``).

Anything that optax accepts as a schedule works wherever jreg takes one (e.g.
``optax.cosine_decay_schedule``, ``optax.warmup_cosine_decay_schedule``,
``optax.join_schedules``); this module adds the power law used by the reference
experiments and a validated :func:`constant`.

Step convention: optax calls the schedule with ``count``, the number of updates
ALREADY applied, so the first update sees ``count = 0``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jreg.util import checks

Schedule = Callable[[jax.Array | int], jax.Array]

__all__ = ["Schedule", "constant", "power_law"]


def _float_dtype(*values) -> np.dtype:
    """Widest non-weak float dtype among ``values``, else the default float dtype."""
    dtypes = [
        jnp.asarray(v).dtype
        for v in values
        if not getattr(jnp.asarray(v), "weak_type", False)
        and jnp.issubdtype(jnp.asarray(v).dtype, jnp.floating)
    ]
    default = jnp.zeros(()).dtype
    return max(dtypes + [default], key=lambda d: jnp.finfo(d).bits)


def power_law(
    lr0: float | jax.Array,
    a: float | jax.Array,
    tau: float | jax.Array,
    *,
    offset: int | float = 0,
) -> Schedule:
    """Power-law decay ``lr(t) = lr0 / (1 + (t + offset)/τ)^a``.

    Darken & Moody 1992 ("search then converge", a = 1); the Robbins–Monro conditions
    hold for ``1/2 < a <= 1`` (Robbins & Monro 1951). The rate stays near ``lr0`` for
    ``t ≪ τ`` and decays like ``t^{-a}`` after.

    ``t`` is optax's ``count`` (0 for the first update). The reference numpy optimizer
    increments its counter BEFORE computing the rate (first update uses ``t = 1``);
    ``offset=1`` reproduces it exactly.

    Args:
      lr0: initial rate, >= 0.
      a: decay exponent, >= 0 (0 gives a constant rate).
      tau: time scale in steps, > 0.
      offset: added to ``count`` before evaluating (static or traced number).

    All of ``lr0``, ``a`` and ``tau`` may be traced (e.g. vmapped sweep
    hyperparameters); they are validated only when concrete.

    Returns:
      A schedule ``count -> lr`` returning a scalar (or an array shaped like ``count``).
    """
    checks.check_nonnegative("lr0", lr0)
    checks.check_nonnegative("a", a)
    checks.check_positive("tau", tau)
    checks.check_finite("offset", offset)
    dtype = _float_dtype(lr0, a, tau)
    lr0_, a_, tau_ = (jnp.asarray(v).astype(dtype) for v in (lr0, a, tau))

    def schedule(count):
        t = jnp.asarray(count).astype(dtype) + jnp.asarray(offset).astype(dtype)
        return lr0_ / jnp.power(1 + t / tau_, a_)

    return schedule


def constant(lr: float | jax.Array) -> Schedule:
    """A constant schedule ``count -> lr`` (``optax.constant_schedule`` with validation).

    Args:
      lr: learning rate, >= 0 (may be traced).

    Returns:
      A schedule returning ``lr`` for every step.
    """
    checks.check_nonnegative("lr", lr)
    return optax.constant_schedule(lr)
