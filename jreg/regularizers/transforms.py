"""Regularizing gradient transformations in the optax style.

Every factory returns an :class:`optax.GradientTransformation` whose state is a
``NamedTuple`` (or optax's own state when a transform is built from optax parts), so it
composes with :func:`optax.chain` like any optax transform.

Where each transform goes in a chain matters:

* :func:`decoupled_weight_decay` adds ``rate * param`` to the updates. Chained BEFORE
  ``optax.scale_by_learning_rate`` (as :func:`optax.adamw` does) the decay is multiplied by
  the learning rate: ``w <- w - lr * (step + rate * w)``. Put it after the learning-rate
  scaling to get a rate-independent decay ``w <- w - lr * step - rate * w`` (see its
  docstring for the sign-correct recipe).
* :func:`proximal_l1` comes AFTER the optimizer (it soft-thresholds ``params + updates``).
* :func:`spectral_norm_constraint` must come LAST: it projects ``params + updates``.

References:
    Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
    Beck & Teboulle, "A Fast Iterative Shrinkage-Thresholding Algorithm", SIAM J. Imaging
    Sciences 2009.
    Duchi & Singer, "Efficient Online and Batch Learning Using Forward Backward Splitting",
    JMLR 2009.
    Yoshida & Miyato, "Spectral Norm Regularization for Improving the Generalizability of
    Deep Learning", arXiv:1705.10941, 2017.
    Miyato et al., "Spectral Normalization for Generative Adversarial Networks", ICLR 2018.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jreg.regularizers._optax import (
    default_decay_mask,
    maybe_masked,
    require_params,
    value_at,
    with_params_check,
)
from jreg.util.checks import (
    check_nonnegative,
    check_unit_interval,
)

__all__ = [
    "ProximalL1State",
    "adamw",
    "decoupled_weight_decay",
    "default_decay_mask",
    "proximal_l1",
    "sgdw",
]

MaskOrFn = Any | Callable[[optax.Params], Any] | None


# ---------------------------------------------------------------------- weight decay


def decoupled_weight_decay(
    rate: optax.ScalarOrSchedule,
    mask: MaskOrFn = default_decay_mask,
) -> optax.GradientTransformation:
    """Add ``rate * param`` to the updates (decoupled weight decay, AdamW/SGDW style).

    This transform never multiplies by a learning rate itself. The decay is multiplied by
    the learning rate when chained before ``scale_by_learning_rate`` (as ``optax.adamw``
    does): ``optax.chain(optax.scale_by_adam(), decoupled_weight_decay(wd),
    optax.scale_by_learning_rate(lr))`` gives ``w <- w - lr * (adam_step + wd * w)``, a
    per-step decay of ``lr * wd * w``, and equals ``optax.adamw(lr, weight_decay=wd,
    mask=mask)`` exactly. With zero gradients, ``optax.chain(decoupled_weight_decay(wd),
    optax.scale(-lr))`` gives ``w_n = (1 - lr * wd) ** n * w_0`` on the masked leaves.

    Put it after the learning-rate scaling to get a rate-independent decay,
    ``w <- w - lr * step - wd * w`` (big_vision instead multiplies it by the schedule
    only). Updates are descent directions only after the final sign flip, so keep the
    sign flip last::

        optax.chain(
            optax.scale_by_adam(),
            optax.scale_by_learning_rate(lr, flip_sign=False),  # +lr * step
            decoupled_weight_decay(wd),                          # +wd * w
            optax.scale(-1.0),                                   # -(lr * step + wd * w)
        )

    Args:
        rate: decay coefficient ``>= 0``; a float, a scalar array (may be traced inside
            ``vmap``), or a schedule ``count -> rate`` (a step count is then kept in the
            state, as in ``optax.add_decayed_weights``).
        mask: which leaves are decayed: ``None`` (all), a pytree of bools with the params'
            structure (or a prefix of it), or a callable ``params -> pytree of bools``.
            Default :func:`default_decay_mask` (``ndim >= 2``: no decay of biases and
            normalization scales).

    Returns:
        An ``optax.GradientTransformation``; ``update`` requires ``params`` and returns
        updates with the params' shapes.

    Raises:
        ValueError: if ``rate`` is negative or not finite, or if ``update`` gets no params.

    Reference:
        Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
    """
    check_nonnegative("rate", rate)
    inner = optax.add_decayed_weights(rate, mask=mask)
    return with_params_check("decoupled_weight_decay", inner)


def adamw(
    learning_rate: optax.ScalarOrSchedule,
    weight_decay: optax.ScalarOrSchedule,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    mask: MaskOrFn = default_decay_mask,
) -> optax.GradientTransformation:
    """AdamW: Adam with decoupled weight decay scaled by the learning rate.

    Built as ``optax.chain(optax.scale_by_adam(b1, b2, eps), decoupled_weight_decay(
    weight_decay, mask), optax.scale_by_learning_rate(learning_rate))``, which matches
    ``optax.adamw(learning_rate, b1, b2, eps, weight_decay=weight_decay, mask=mask)``
    exactly. The per-step decay is ``learning_rate * weight_decay * w``.

    Args:
        learning_rate: step size ``>= 0`` or an optax schedule.
        weight_decay: decay coefficient ``>= 0`` or a schedule.
        b1: first-moment decay in ``[0, 1)``.
        b2: second-moment decay in ``[0, 1)``.
        eps: ``>= 0`` term added to the denominator.
        mask: leaves to decay; see :func:`decoupled_weight_decay`.

    Returns:
        An ``optax.GradientTransformation`` (updates already multiplied by ``-lr``).

    Reference:
        Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
    """
    check_nonnegative("learning_rate", learning_rate)
    check_unit_interval("b1", b1)
    check_unit_interval("b2", b2)
    check_nonnegative("eps", eps)
    return optax.chain(
        optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
        decoupled_weight_decay(weight_decay, mask=mask),
        optax.scale_by_learning_rate(learning_rate),
    )


def sgdw(
    learning_rate: optax.ScalarOrSchedule,
    weight_decay: optax.ScalarOrSchedule,
    *,
    momentum: float | None = None,
    mask: MaskOrFn = default_decay_mask,
) -> optax.GradientTransformation:
    """SGD (optionally with heavy-ball momentum) and decoupled weight decay.

    Built as ``optax.chain(optax.trace(momentum), decoupled_weight_decay(weight_decay,
    mask), optax.scale_by_learning_rate(learning_rate))``: the decay is not accumulated in
    the momentum buffer, and the per-step decay is ``learning_rate * weight_decay * w``.
    With ``momentum=None`` this equals ``optax.chain(optax.add_decayed_weights(wd, mask),
    optax.sgd(lr))``.

    Args:
        learning_rate: step size ``>= 0`` or an optax schedule.
        weight_decay: decay coefficient ``>= 0`` or a schedule.
        momentum: momentum in ``[0, 1)``, or ``None`` for plain SGD.
        mask: leaves to decay; see :func:`decoupled_weight_decay`.

    Returns:
        An ``optax.GradientTransformation``.

    Reference:
        Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
    """
    check_nonnegative("learning_rate", learning_rate)
    parts: list[optax.GradientTransformation] = []
    if momentum is not None:
        check_unit_interval("momentum", momentum)
        parts.append(optax.trace(decay=momentum))
    parts += [
        decoupled_weight_decay(weight_decay, mask=mask),
        optax.scale_by_learning_rate(learning_rate),
    ]
    return optax.chain(*parts)


# -------------------------------------------------------------------- proximal L1


class ProximalL1State(NamedTuple):
    """State of :func:`proximal_l1`: ``count`` (int32 scalar), the number of updates done."""

    count: jax.Array


def _soft_threshold(x: jax.Array, threshold: Any) -> jax.Array:
    t = jnp.asarray(threshold, dtype=x.dtype)
    return jnp.sign(x) * jnp.maximum(jnp.abs(x) - t, jnp.zeros((), x.dtype))


def proximal_l1(
    strength: float | jax.Array,
    learning_rate: optax.ScalarOrSchedule,
    mask: MaskOrFn = None,
) -> optax.GradientTransformation:
    """Proximal step for an L1 penalty ``strength * ||w||_1`` (ISTA / FOBOS).

    Place it AFTER the optimizer in a chain, e.g. ``optax.chain(optax.sgd(lr),
    proximal_l1(strength, lr))``. Given the optimizer's updates ``u`` and params ``w`` it
    soft-thresholds the tentative new params ``w' = w + u``::

        w'' = sign(w') * max(|w'| - learning_rate * strength, 0)

    and returns the updates ``w'' - w``, so ``optax.apply_updates`` yields ``w''``. Entries
    with ``|w'| <= learning_rate * strength`` become EXACT zeros (``w + (0 - w) == 0`` in
    floating point), unlike a subgradient of ``|w|`` in the loss, which oscillates around
    zero. Pass the same ``learning_rate`` (or schedule) as the optimizer so that the
    threshold is the prox of ``lr * strength * |.|``.

    Args:
        strength: L1 coefficient ``lambda >= 0`` (a float or scalar array).
        learning_rate: step size ``eta >= 0`` or an optax schedule ``count -> eta``; the
            step count is kept in the state and starts at 0.
        mask: leaves to threshold: ``None`` (all), a pytree of bools or a callable of
            params (see ``optax.masked``).

    Returns:
        An ``optax.GradientTransformation`` with state :class:`ProximalL1State` (wrapped in
        ``optax.MaskedState`` when ``mask`` is given); updates keep the params' shapes.

    Raises:
        ValueError: if ``strength`` or ``learning_rate`` is negative or not finite, or if
            ``update`` gets no params.

    References:
        Beck & Teboulle, "A Fast Iterative Shrinkage-Thresholding Algorithm for Linear
        Inverse Problems", SIAM J. Imaging Sciences 2009.
        Duchi & Singer, "Efficient Online and Batch Learning Using Forward Backward
        Splitting", JMLR 2009.
    """
    check_nonnegative("strength", strength)
    check_nonnegative("learning_rate", learning_rate)

    def init_fn(params: optax.Params) -> ProximalL1State:
        del params
        return ProximalL1State(count=jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None):
        require_params("proximal_l1", params)
        threshold = value_at(learning_rate, state.count) * strength

        def leaf(u, w):
            if u is None:
                return None
            return _soft_threshold(w + u, threshold) - w

        new_updates = jax.tree.map(leaf, updates, params, is_leaf=lambda x: x is None)
        return new_updates, ProximalL1State(count=optax.safe_increment(state.count))

    tx = maybe_masked(optax.GradientTransformation(init_fn, update_fn), mask)
    return with_params_check("proximal_l1", tx)
