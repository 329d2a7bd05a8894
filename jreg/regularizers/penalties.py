"""Explicit regularization penalties as pure functions of pytrees.

Every penalty returns a scalar ``jax.Array`` and is safe under ``jit``, ``grad`` and
``vmap``. None carries a strength: multiply by λ where you add it to the loss, e.g.
``loss + 0.5 * lam * l2(params)`` (the ½ is yours to choose; :func:`l2` has none).

``mask`` arguments follow optax: ``None`` (every leaf), a pytree of Python bools with
the structure of ``params``, or a callable ``params -> such pytree`` such as
``lambda p: jax.tree.map(lambda x: x.ndim > 1, p)`` (weights but not biases). Masks
are static: they are read on the host and may never be traced values.

Leaves in 16-bit floats are accumulated in float32, so the penalties of a bfloat16
model are float32 scalars.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jreg.util import checks
from jreg.util.pytrees import (
    Mask,
    check_nonnegative_tree,
    masked_leaves,
    paired_leaves,
    total,
    upcast,
)

PyTree = Any

__all__ = [
    "anchored_l2",
    "diagonal_fisher",
    "elastic_net",
    "ewc",
    "l1",
    "l2",
    "weighted_l1",
    "weighted_l2",
]


# ----------------------------------------------------------------------------- norms


def l2(params: PyTree, mask: Mask = None) -> jax.Array:
    """Squared L2 norm ``Σ w²`` over the (masked) leaves — ridge / weight decay.

    There is no ½: ``grad(l2)`` is ``2w``. Use ``0.5 * lam * l2(params)`` for the
    penalty whose gradient is ``lam * w`` (Krogh & Hertz 1992, "A simple weight decay
    can improve generalization"; Hoerl & Kennard 1970 for ridge regression).

    Args:
      params: pytree of arrays.
      mask: ``None``, a pytree of bools like ``params``, or a callable producing one.

    Returns:
      Scalar array (float32 for 16-bit or integer leaves).
    """
    checks.check_finite("params", params)
    return total([jnp.sum(jnp.square(upcast(w))) for w in masked_leaves(params, mask)])


def l1(params: PyTree, mask: Mask = None) -> jax.Array:
    """L1 norm ``Σ |w|`` over the (masked) leaves — the lasso (Tibshirani 1996).

    Its (sub)gradient ``sign(w)`` has constant magnitude, which drives small weights to
    exactly zero under proximal updates and close to zero under plain SGD.

    Args:
      params: pytree of arrays.
      mask: ``None``, a pytree of bools like ``params``, or a callable producing one.

    Returns:
      Scalar array.
    """
    checks.check_finite("params", params)
    return total([jnp.sum(jnp.abs(upcast(w))) for w in masked_leaves(params, mask)])


def elastic_net(params: PyTree, l1_ratio: float | jax.Array, mask: Mask = None) -> jax.Array:
    """Elastic net ``l1_ratio * Σ|w| + (1 - l1_ratio) * Σ w²`` (Zou & Hastie 2005).

    Args:
      params: pytree of arrays.
      l1_ratio: mixing weight in ``[0, 1]`` (1 is pure L1, 0 pure squared L2); may be
        traced, in which case it is not validated.
      mask: ``None``, a pytree of bools like ``params``, or a callable producing one.

    Returns:
      Scalar array.
    """
    checks.check_closed_unit_interval("l1_ratio", l1_ratio)
    a, b = l1(params, mask), l2(params, mask)
    r = jnp.asarray(l1_ratio).astype(a.dtype)
    return r * a + (1 - r) * b


def _weighted_sum(params: PyTree, fn: Callable, **others: PyTree) -> jax.Array:
    """``Σ_leaves sum(fn(w, *others' leaves))``, the others paired leaf by leaf with ``params``."""
    checks.check_finite("params", params)
    paired = [paired_leaves(name, params, tree) for name, tree in others.items()]
    leaves = jax.tree_util.tree_leaves(params)
    terms = zip(leaves, *paired, strict=True)
    return total([jnp.sum(fn(upcast(w), *map(upcast, o))) for w, *o in terms])


def weighted_l1(params: PyTree, weights: PyTree) -> jax.Array:
    """Per-coordinate L1 ``Σ c ⊙ |w|`` — MAP under independent Laplace priors.

    With prior ``w_i ~ Laplace(0, b_i)`` the negative log-prior is ``Σ |w_i| / b_i`` plus
    a constant, i.e. ``weights = 1 / b``; the adaptive lasso (Zou 2006) picks
    ``c_i = 1 / |ŵ_i|^γ`` from a pilot estimate.

    Args:
      params: pytree of arrays.
      weights: pytree with the structure of ``params``; each leaf broadcastable to the
        matching parameter (a scalar weights a whole leaf). Must be >= 0.

    Returns:
      Scalar array.

    Raises:
      ValueError: concrete ``weights`` with a negative or non-finite entry, or a
        structure that does not match ``params``.
    """
    check_nonnegative_tree("weights", weights)
    return _weighted_sum(params, lambda w, c: c * jnp.abs(w), weights=weights)


def weighted_l2(params: PyTree, weights: PyTree) -> jax.Array:
    """Per-coordinate squared L2 ``Σ c ⊙ w²`` — MAP under independent Gaussian priors.

    With prior ``w_i ~ N(0, s_i²)`` the negative log-prior is ``Σ w_i² / (2 s_i²)`` plus a
    constant, i.e. ``weights = 1 / (2 s²)`` (MacKay 1992, "A practical Bayesian framework
    for backpropagation networks": one precision per group of weights).

    Args:
      params: pytree of arrays.
      weights: pytree with the structure of ``params``; each leaf broadcastable to the
        matching parameter. Must be >= 0.

    Returns:
      Scalar array.

    Raises:
      ValueError: concrete negative/non-finite ``weights`` or mismatched structure.
    """
    check_nonnegative_tree("weights", weights)
    return _weighted_sum(params, lambda w, c: c * jnp.square(w), weights=weights)


def anchored_l2(params: PyTree, anchor: PyTree) -> jax.Array:
    """Squared distance to a reference point ``Σ (w - w₀)²`` — L2-SP.

    Shrinks towards pre-trained weights instead of zero (Li, Grandvalet & Davoine 2018,
    "Explicit inductive bias for transfer learning with convolutional networks").

    Args:
      params: pytree of arrays.
      anchor: pytree like ``params`` (leaves broadcastable), e.g. the initial weights.

    Returns:
      Scalar array.
    """
    checks.check_finite("anchor", anchor)
    return _weighted_sum(params, lambda w, a: jnp.square(w - a), anchor=anchor)


def ewc(params: PyTree, anchor: PyTree, fisher: PyTree) -> jax.Array:
    """Elastic weight consolidation ``Σ F ⊙ (w - w*)²`` (Kirkpatrick et al. 2017).

    The paper's loss is ``L_B + (λ/2) Σ F_i (θ_i - θ*_A,i)²``; this returns the sum
    without λ/2. It is the Laplace approximation of the posterior of an earlier task
    with a diagonal Fisher as precision; see :func:`diagonal_fisher`.

    Args:
      params: pytree of arrays (current weights θ).
      anchor: pytree like ``params``: weights θ* after the previous task.
      fisher: pytree like ``params`` of non-negative importances F.

    Returns:
      Scalar array.

    Raises:
      ValueError: concrete negative/non-finite ``fisher`` or mismatched structures.
    """
    check_nonnegative_tree("fisher", fisher)
    checks.check_finite("anchor", anchor)
    fn = lambda w, a, f: f * jnp.square(w - a)
    return _weighted_sum(params, fn, anchor=anchor, fisher=fisher)


def diagonal_fisher(
    log_likelihood_fn: Callable[[PyTree, jax.Array, jax.Array], jax.Array],
    params: PyTree,
    xs: jax.Array,
    ys: jax.Array,
) -> PyTree:
    """Diagonal Fisher ``F = mean_n (∇_θ log p(y_n | x_n, θ))²`` for :func:`ewc`.

    Per-example gradients come from ``vmap(grad(log_likelihood_fn))``. With the data's
    labels ``ys`` this is the *empirical* Fisher; pass labels sampled from the model's
    predictive distribution for the true Fisher (Kunstner, Hennig & Balles 2019, "Limitations
    of the empirical Fisher approximation"; Martens 2020).

    Args:
      log_likelihood_fn: ``(params, x, y) -> scalar`` log-likelihood of ONE example.
      params: pytree of arrays.
      xs: inputs of shape ``(N, ...)``.
      ys: targets of shape ``(N, ...)``.

    Returns:
      A pytree like ``params`` of non-negative arrays.
    """
    if np.ndim(xs) < 1 or np.ndim(ys) < 1 or np.shape(xs)[0] != np.shape(ys)[0]:
        raise ValueError(
            f"xs and ys must share a leading example axis, got shapes {np.shape(xs)} "
            f"and {np.shape(ys)}."
        )
    if np.shape(xs)[0] == 0:
        raise ValueError("diagonal_fisher needs at least one example.")
    checks.check_finite("xs", xs)
    grads = jax.vmap(jax.grad(log_likelihood_fn), in_axes=(None, 0, 0))(params, xs, ys)
    return jax.tree_util.tree_map(lambda g: jnp.mean(jnp.square(g), axis=0), grads)
