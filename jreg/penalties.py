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

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jreg import _checks

PyTree = Any
Mask = PyTree | Callable[[PyTree], PyTree] | None

__all__ = [
    "anchored_l2",
    "attention_entropy",
    "diagonal_fisher",
    "elastic_net",
    "ewc",
    "gradient_penalty",
    "jacobian_penalty",
    "l1",
    "l2",
    "power_iteration",
    "r1_penalty",
    "spectral_norm",
    "spectral_penalty",
    "weighted_l1",
    "weighted_l2",
]


from jreg._tree import (  # noqa: E402
    _check_nonnegative_tree,
    _normalize,
    _paired_leaves,
    _safe_norm_sq_to_norm,
    _total,
    _upcast,
    masked_leaves,
)

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
    _checks.check_finite("params", params)
    return _total([jnp.sum(jnp.square(_upcast(w))) for w in masked_leaves(params, mask)])


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
    _checks.check_finite("params", params)
    return _total([jnp.sum(jnp.abs(_upcast(w))) for w in masked_leaves(params, mask)])


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
    _checks.check_closed_unit_interval("l1_ratio", l1_ratio)
    a, b = l1(params, mask), l2(params, mask)
    r = jnp.asarray(l1_ratio).astype(a.dtype)
    return r * a + (1 - r) * b


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
    _check_nonnegative_tree("weights", weights)
    _checks.check_finite("params", params)
    ws = _paired_leaves("weights", params, weights)
    leaves = jax.tree_util.tree_leaves(params)
    return _total(
        [jnp.sum(_upcast(c) * jnp.abs(_upcast(w))) for w, c in zip(leaves, ws, strict=True)]
    )


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
    _check_nonnegative_tree("weights", weights)
    _checks.check_finite("params", params)
    ws = _paired_leaves("weights", params, weights)
    leaves = jax.tree_util.tree_leaves(params)
    return _total(
        [jnp.sum(_upcast(c) * jnp.square(_upcast(w))) for w, c in zip(leaves, ws, strict=True)]
    )


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
    _checks.check_finite("params", params)
    _checks.check_finite("anchor", anchor)
    anchors = _paired_leaves("anchor", params, anchor)
    leaves = jax.tree_util.tree_leaves(params)
    return _total(
        [jnp.sum(jnp.square(_upcast(w) - _upcast(a))) for w, a in zip(leaves, anchors, strict=True)]
    )


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
    _check_nonnegative_tree("fisher", fisher)
    _checks.check_finite("params", params)
    _checks.check_finite("anchor", anchor)
    anchors = _paired_leaves("anchor", params, anchor)
    fishers = _paired_leaves("fisher", params, fisher)
    leaves = jax.tree_util.tree_leaves(params)
    return _total(
        [
            jnp.sum(_upcast(f) * jnp.square(_upcast(w) - _upcast(a)))
            for w, a, f in zip(leaves, anchors, fishers, strict=True)
        ]
    )


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
    _checks.check_finite("xs", xs)
    grads = jax.vmap(jax.grad(log_likelihood_fn), in_axes=(None, 0, 0))(params, xs, ys)
    return jax.tree_util.tree_map(lambda g: jnp.mean(jnp.square(g), axis=0), grads)


# ----------------------------------------------------------------------------- spectral


def _as_matrix(matrix: jax.Array) -> jax.Array:
    """``(..., n) -> (prod(...), n)``: conv kernels ``(h, w, in, out)`` become ``(h·w·in, out)``."""
    matrix = jnp.asarray(matrix)
    if matrix.ndim < 2:
        raise ValueError(f"matrix must have ndim >= 2, got shape {matrix.shape}.")
    return matrix.reshape(-1, matrix.shape[-1])


def power_iteration(
    matrix: jax.Array,
    v: jax.Array,
    num_iters: int = 1,
    *,
    max_iters: int | None = None,
    tol: float = 0.0,
) -> tuple[jax.Array, jax.Array]:
    """Power iteration for the largest singular value (Miyato et al. 2018, Alg. 1).

    With ``W = matrix.reshape(-1, n)`` and ``n = matrix.shape[-1]``, each iteration does
    ``u = W v / ‖W v‖``, ``v = Wᵀ u / ‖Wᵀ u‖``; then ``σ = ‖W v‖ = uᵀ W v``. ``v`` is the
    RIGHT singular vector estimate, shape ``(matrix.shape[-1],)``, so a transform can
    keep one per matrix and warm-start with ``num_iters=1`` per step. If ``W`` maps ``v``
    to zero the vector is kept (and ``σ = 0``), so a zero matrix does not destroy a warm
    start. This is the library's one power iteration (the penalties here and
    :func:`jreg.transforms.spectral_norm_constraint` call it).

    With ``max_iters`` (> ``num_iters``) the iteration continues after ``num_iters`` steps
    (a ``lax.while_loop``) until the estimate grows by at most ``tol·σ`` in one step or
    ``max_iters`` steps ran; this adaptive form is not reverse-differentiable.

    Without ``max_iters`` no ``stop_gradient`` is applied: σ is differentiable w.r.t.
    ``matrix`` through the iterations, and once converged ``∂σ/∂W ≈ u vᵀ``.

    Args:
      matrix: array of ndim >= 2; leading axes are flattened (the reshape convention
        of Miyato et al.; for convolutions this is not the operator norm).
      v: start vector of shape ``(matrix.shape[-1],)``; it is normalised first and must
        not be orthogonal to the top right singular vector.
      num_iters: static number of iterations (>= 0; 0 evaluates ``‖W v̂‖``); with
        ``max_iters`` the minimum number.
      max_iters: static maximum number of iterations (adaptive stop), or None.
      tol: relative growth of the estimate per step below which the adaptive form stops.

    Returns:
      ``(sigma, v)``: scalar estimate of σ_max (a lower bound), and the updated unit
      vector of shape ``(matrix.shape[-1],)``.
    """
    w = _as_matrix(matrix)
    if not jnp.issubdtype(w.dtype, jnp.floating):
        w = w.astype(jnp.float32)
    if not isinstance(num_iters, int | np.integer) or num_iters < 0:
        raise ValueError(f"num_iters must be a non-negative int, got {num_iters!r}.")
    if max_iters is not None and (
        not isinstance(max_iters, int | np.integer) or max_iters < num_iters
    ):
        raise ValueError(f"max_iters must be an int >= num_iters={num_iters}, got {max_iters!r}.")
    _checks.check_nonnegative("tol", tol)
    v = jnp.asarray(v)
    if v.shape != (w.shape[1],):
        raise ValueError(f"v must have shape (matrix.shape[-1],) = ({w.shape[1]},), got {v.shape}.")
    max_iters = int(num_iters if max_iters is None else max_iters)
    return _power_iteration(w, v.astype(w.dtype), int(num_iters), max_iters, float(tol))


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _power_iteration(
    w: jax.Array, v: jax.Array, min_iters: int, max_iters: int, tol: float
) -> tuple[jax.Array, jax.Array]:
    """Compiled body of :func:`power_iteration` (cached across eager calls)."""

    def body(v):  # -> (‖W v‖, next v); a v that W maps to zero is kept
        wv = w @ v
        wtu = w.T @ _normalize(wv)
        sq = jnp.sum(wtu * wtu)
        keep = sq > jnp.finfo(sq.dtype).tiny
        return _safe_norm_sq_to_norm(jnp.sum(wv * wv)), jnp.where(keep, _normalize(wtu), v)

    v = _normalize(v)
    if max_iters == min_iters:
        v = lax.fori_loop(0, min_iters, lambda _, v: body(v)[1], v)
    else:  # carry (i, v, estimate before the last step, last estimate)

        def cond(c):
            i, _, prev, sigma = c
            return (i < min_iters) | ((i < max_iters) & (sigma - prev > tol * sigma))

        def step(c):
            i, v, _, sigma = c
            new_sigma, v = body(v)
            return i + 1, v, sigma, new_sigma

        zero = jnp.zeros((), w.dtype)
        _, v, _, _ = lax.while_loop(cond, step, (jnp.zeros((), jnp.int32), v, zero, zero))
    sigma = _safe_norm_sq_to_norm(jnp.sum(jnp.square(w @ v)))
    return sigma, v


def spectral_norm(matrix: jax.Array, *, num_iters: int = 20, key: jax.Array) -> jax.Array:
    """Largest singular value of ``matrix`` by power iteration from a random start.

    Args:
      matrix: array of ndim >= 2 (leading axes flattened, see :func:`power_iteration`).
      num_iters: static number of iterations (>= 1). The error in σ shrinks like
        ``(σ₂/σ₁)^(4·num_iters)``.
      key: PRNG key for the start vector, uniform on the unit sphere.

    Returns:
      Scalar estimate of σ_max (Miyato et al. 2018, "Spectral normalization for GANs").
    """
    _checks.check_positive_int("num_iters", num_iters)
    w = _upcast(_as_matrix(matrix))
    _checks.check_finite("matrix", w)
    v0 = jax.random.normal(key, (w.shape[1],), dtype=w.dtype)
    sigma, _ = power_iteration(w, v0, num_iters)
    return sigma


def spectral_penalty(
    params: PyTree, mask: Mask = None, *, num_iters: int = 20, key: jax.Array | None = None
) -> jax.Array:
    """Sum of squared spectral norms ``Σ σ_max(W)²`` over leaves with ``ndim >= 2``.

    Spectral norm regularization (Yoshida & Miyato 2017). Vectors (biases, norm scales)
    are skipped. Each σ comes from :func:`power_iteration` and is differentiable.

    Args:
      params: pytree of arrays.
      mask: ``None``, a pytree of bools like ``params``, or a callable producing one;
        masked-in leaves with ``ndim < 2`` are still skipped.
      num_iters: static number of power iterations per matrix (>= 1).
      key: optional PRNG key for random start vectors (one split per matrix). When
        ``None`` the deterministic start ``1/√n`` is used, so the penalty is a fixed
        smooth function of the weights (it fails only if that vector is orthogonal to
        the top singular vector).

    Returns:
      Scalar array.
    """
    _checks.check_positive_int("num_iters", num_iters)
    _checks.check_finite("params", params)
    mats = [_as_matrix(w) for w in masked_leaves(params, mask) if np.ndim(w) >= 2]
    keys = [None] * len(mats) if key is None else list(jax.random.split(key, max(len(mats), 1)))
    terms = []
    for w, k in zip(mats, keys, strict=False):
        w = _upcast(w)
        n = w.shape[1]
        if k is None:
            v0 = jnp.full((n,), 1.0 / math.sqrt(n), w.dtype)
        else:
            v0 = jax.random.normal(k, (n,), dtype=w.dtype)
        sigma, _ = power_iteration(w, v0, num_iters)
        terms.append(jnp.square(sigma))
    return _total(terms)


# The input-gradient and attention penalties live in their own module.
from jreg._input_penalties import (  # noqa: E402
    attention_entropy,
    gradient_penalty,
    jacobian_penalty,
    r1_penalty,
)
