"""Analysis of trained models: decision boundaries, PCA-basis energy, margins, confidence."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jreg import _checks


def pca_basis(x) -> tuple[jax.Array, jax.Array]:
    """Principal components of the rows of ``x``.

    Args:
      x: data ``(N, D)``.

    Returns:
      ``(eigenvalues (D,), V (D, D))``, eigenvalues in decreasing order and ``V[:, k]``
      the k-th principal direction (unit norm) of the centred covariance.
    """
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 2:
        raise ValueError(f"pca_basis needs x of shape (N, D), got {x.shape}.")
    _checks.check_finite("x", x)
    xc = x - x.mean(axis=0)
    cov = xc.T @ xc / x.shape[0]
    evals, evecs = jnp.linalg.eigh(cov)
    return evals[::-1], evecs[:, ::-1]


def pc_energy(delta_w: jax.Array, basis: jax.Array) -> jax.Array:
    """Energy of a first-layer weight change along each principal direction.

    ``E_k = ‖ΔW v_k‖²`` for ΔW of shape (hidden, D) in the usual (out, in) convention;
    jreg stores first-layer weights as ``(D, hidden)`` so this takes ``delta_w`` of shape
    ``(D, hidden)`` and computes ``E_k = Σ_j (v_kᵀ ΔW)_j²`` (Rahaman et al. 2019 study the
    same spectral bias in function space).

    Args:
      delta_w: ``W(t) - W(0)`` of shape ``(D, H)``.
      basis: ``V`` of shape ``(D, D)`` from :func:`pca_basis`.

    Returns:
      Energies of shape ``(D,)``; they sum to ``‖ΔW‖_F²`` since V is orthonormal.
    """
    if delta_w.ndim != 2 or basis.shape != (delta_w.shape[0], delta_w.shape[0]):
        raise ValueError(
            f"delta_w must be (D, H) and basis (D, D); got {delta_w.shape} and {basis.shape}."
        )
    return jnp.sum(jnp.square(basis.T @ delta_w), axis=1)


def cumulative_energy(energy: jax.Array) -> jax.Array:
    """``E_{≤k} = Σ_{l≤k} E_l / Σ_m E_m`` along the last axis (shape preserved)."""
    total = jnp.sum(energy, axis=-1, keepdims=True)
    return jnp.cumsum(energy, axis=-1) / jnp.where(total > 0, total, 1.0)


def decision_grid(
    predict: Callable[[jax.Array], jax.Array],
    *,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    resolution: int = 100,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate a 2-D binary classifier on a grid for contour plots.

    Args:
      predict: maps points ``(M, 2)`` to logits ``(M, 2)``.
      xlim, ylim: plot ranges.
      resolution: points per axis R.

    Returns:
      ``(xx, yy, p1)`` each of shape ``(R, R)``; ``p1`` is the class-1 probability.
    """
    _checks.check_positive_int("resolution", resolution)
    xs = np.linspace(*xlim, resolution, dtype=np.float32)
    ys = np.linspace(*ylim, resolution, dtype=np.float32)
    xx, yy = np.meshgrid(xs, ys)
    pts = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], axis=1))
    p1 = jax.nn.softmax(predict(pts), axis=-1)[..., 1]
    return xx, yy, np.asarray(p1).reshape(p1.shape[:-1] + (resolution, resolution))


def margins(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Multiclass margin ``z_y − max_{k≠y} z_k`` per example, shape ``(N,)``."""
    _checks.check_labels("labels", labels, logits.shape[-1])
    true = jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
    others = jnp.where(jax.nn.one_hot(labels, logits.shape[-1], dtype=bool), -jnp.inf, logits)
    return true - others.max(axis=-1)


def mean_abs_logit_gap(logits: jax.Array) -> jax.Array:
    """Mean |z₁ − z₀| for binary logits ``(N, 2)``: how confident the model is overall."""
    return jnp.mean(jnp.abs(logits[..., 1] - logits[..., 0]))
