"""Penalties on input gradients and attention: contractive, WGAN-GP, R1, attention entropy.

Re-exported by :mod:`jreg.regularizers.penalties`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jreg.util import checks
from jreg.util.pytrees import as_batch, as_scalar_fn, safe_norm, total, upcast

PyTree = Any
Mask = PyTree | Callable[[PyTree], PyTree] | None

# ----------------------------------------------------------------------------- input gradients


def jacobian_penalty(fn: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
    """Contractive penalty ``mean_b ‖∂fn/∂x (x_b)‖_F²`` (Rifai et al. 2011).

    Args:
      fn: maps ONE example of shape ``x.shape[1:]`` to an array (e.g. ``(d_out,)``) or
        a pytree of arrays (their Jacobians are summed).
      x: batch of shape ``(B, d_in...)``.

    Returns:
      Scalar: the batch mean of the squared Frobenius norm of the input Jacobian. Forward
      mode is used when the input is smaller than the output, reverse mode otherwise.
    """
    x = as_batch("x", x)
    out = jax.eval_shape(fn, x[0])
    out_size = sum(math.prod(o.shape) for o in jax.tree_util.tree_leaves(out))
    jac_fn = jax.jacfwd(fn) if math.prod(x.shape[1:]) < out_size else jax.jacrev(fn)
    jac = jax.vmap(jac_fn)(x)
    sq = total(
        [
            jnp.sum(jnp.square(upcast(j)).reshape(x.shape[0], -1), axis=1)
            for j in jax.tree_util.tree_leaves(jac)
        ]
    )
    return jnp.mean(sq)


def _input_grad_sq_norms(critic: Callable, x: jax.Array) -> jax.Array:
    """``‖∇ₓ critic(x_b)‖²`` per example, shape ``(B,)``."""
    grads = jax.vmap(jax.grad(as_scalar_fn(critic, "critic")))(x)
    return jnp.sum(jnp.square(upcast(grads)).reshape(x.shape[0], -1), axis=1)


def gradient_penalty(
    critic: Callable[[jax.Array], jax.Array],
    real: jax.Array,
    fake: jax.Array,
    *,
    key: jax.Array,
) -> jax.Array:
    """WGAN-GP two-sided penalty ``mean_b (‖∇ₓ critic(x̂_b)‖₂ − 1)²`` (Gulrajani et al. 2017).

    ``x̂ = t·real + (1 − t)·fake`` with
    ``t = jax.random.uniform(key, (B,) + (1,) * (real.ndim - 1), real.dtype)``, one t per
    example. The paper's loss adds ``λ`` (10) times this value.

    Args:
      critic: maps ONE example of shape ``real.shape[1:]`` to a scalar.
      real: batch of shape ``(B, ...)``.
      fake: batch of the same shape.
      key: PRNG key for the interpolation coefficients.

    Returns:
      Scalar array.
    """
    real, fake = as_batch("real", real), as_batch("fake", fake)
    if real.shape != fake.shape:
        raise ValueError(
            f"real and fake must have the same shape, got {real.shape} and {fake.shape}."
        )
    t = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), dtype=real.dtype)
    x_hat = t * real + (1 - t) * fake
    norms = safe_norm(_input_grad_sq_norms(critic, x_hat))
    return jnp.mean(jnp.square(norms - 1))


def r1_penalty(critic: Callable[[jax.Array], jax.Array], real: jax.Array) -> jax.Array:
    """R1 penalty ``mean_b ‖∇ₓ critic(real_b)‖²`` on real data (Mescheder et al. 2018).

    The paper writes ``(γ/2) E‖∇D(x)‖²``; this returns the expectation without ``γ/2``.

    Args:
      critic: maps ONE example of shape ``real.shape[1:]`` to a scalar (D's logit).
      real: batch of shape ``(B, ...)``.

    Returns:
      Scalar array.
    """
    return jnp.mean(_input_grad_sq_norms(critic, as_batch("real", real)))


# ----------------------------------------------------------------------------- attention


def attention_entropy(probs: jax.Array, axis: int = -1) -> jax.Array:
    """Mean entropy ``−Σ p log p`` of attention distributions along ``axis``.

    ``0 log 0`` is taken as 0, with a finite gradient. Entropy collapse in attention
    is linked to training instability (Zhai et al. 2023, "Stabilizing transformer
    training by preventing attention entropy collapse"); subtract this (times λ) from the
    loss to encourage spread-out attention, or add it to sharpen.

    Args:
      probs: non-negative array whose slices along ``axis`` sum to 1, e.g. attention
        weights of shape ``(batch, heads, queries, keys)``.
      axis: the distribution axis.

    Returns:
      Scalar: entropy (nats) averaged over all other axes.
    """
    probs = jnp.asarray(probs)
    if probs.ndim < 1:
        raise ValueError("probs must have ndim >= 1.")
    checks.check_finite("probs", probs)
    if checks.is_concrete(probs) and np.any(np.asarray(probs) < 0):
        raise ValueError("probs must be non-negative (pass softmax outputs, not logits).")
    p = upcast(probs)
    positive = p > 0
    plogp = jnp.where(positive, p * jnp.log(jnp.where(positive, p, 1)), 0)
    return jnp.mean(-jnp.sum(plogp, axis=axis))
