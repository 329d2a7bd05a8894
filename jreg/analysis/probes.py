"""Analysis of trained models: decision boundaries, PCA-basis energy, margins, confidence."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jreg.util import checks


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
    checks.check_finite("x", x)
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


def gd_pc_decay(eigenvalues, learning_rate: float, steps) -> jax.Array:
    """Closed-form per-principal-component decay of gradient descent on least squares.

    For ``L(w) = (1/2N)‖X w − y‖²`` with centred inputs ``X`` (N, D) (plus an intercept,
    which decouples when ``X`` is centred), gradient descent ``w ← w − η ∇L`` gives
    ``w_t − w* = (I − η Σ)^t (w_0 − w*)`` with ``Σ = XᵀX / N``; in the eigenbasis
    ``Σ v_k = λ_k v_k`` (:func:`pca_basis`) every component decays on its own:
    ``v_kᵀ(w_t − w*) = (1 − η λ_k)^t · v_kᵀ(w_0 − w*)``, and so does the gradient
    ``v_kᵀ ∇L(w_t)``. Large-variance directions are learned first (spectral bias; the
    basis of early stopping as a regulariser: stopping at step t keeps roughly the
    components with ``η λ_k t ≳ 1``). For ``L = (1/N)‖X w − y‖²`` (no ½, e.g. the
    ``"mse"`` loss of :func:`jreg.tasks.supervised`) pass ``2η``.

    Args:
      eigenvalues: ``λ_k`` of shape (D,) (e.g. from :func:`pca_basis`), >= 0.
      learning_rate: η > 0 (stable for ``η λ_max < 2``).
      steps: step counts t, an int or an array of shape (T,).

    Returns:
      ``(1 − η λ_k)^t`` of shape ``(T, D)`` (``(D,)`` for a scalar ``steps``).
    """
    lam = jnp.asarray(eigenvalues, jnp.float32)
    checks.check_nonnegative("learning_rate", learning_rate)
    t = jnp.asarray(steps, jnp.int32)[..., None]
    base = 1.0 - learning_rate * lam  # may be negative (η λ > 1): the sign alternates
    sign = jnp.where((base < 0) & (t % 2 == 1), -1.0, 1.0)
    return sign * jnp.power(jnp.abs(base), t.astype(jnp.float32))


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
    checks.check_positive_int("resolution", resolution)
    xs = np.linspace(*xlim, resolution, dtype=np.float32)
    ys = np.linspace(*ylim, resolution, dtype=np.float32)
    xx, yy = np.meshgrid(xs, ys)
    pts = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], axis=1))
    p1 = jax.nn.softmax(predict(pts), axis=-1)[..., 1]
    return xx, yy, np.asarray(p1).reshape(p1.shape[:-1] + (resolution, resolution))


def margins(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Multiclass margin ``z_y − max_{k≠y} z_k`` per example, shape ``(N,)``."""
    checks.check_labels("labels", labels, logits.shape[-1])
    true = jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
    others = jnp.where(jax.nn.one_hot(labels, logits.shape[-1], dtype=bool), -jnp.inf, logits)
    return true - others.max(axis=-1)


def mean_abs_logit_gap(logits: jax.Array) -> jax.Array:
    """Mean |z₁ − z₀| for binary logits ``(N, 2)``: how confident the model is overall."""
    return jnp.mean(jnp.abs(logits[..., 1] - logits[..., 0]))


def top_hessian_eigenvalue(
    loss_fn: Callable, params, key: jax.Array, num_iters: int = 20
) -> jax.Array:
    """Largest-magnitude eigenvalue of the Hessian of ``loss_fn`` at ``params`` (sharpness).

    Power iteration on Hessian-vector products ``H v = ∂/∂ε ∇L(θ + ε v)`` (forward over
    reverse mode, Pearlmutter 1994), never forming H: ``v ← H v / ‖H v‖`` from a random
    unit start, and the Rayleigh quotient ``vᵀ H v`` of the last iterate is returned. At a
    minimum (H positive semi-definite) this is λ_max, the sharpness of Keskar et al. 2017
    and Cohen et al. 2021 ("edge of stability": full-batch GD drives it to ≈ 2/η).

    Args:
      loss_fn: ``params -> scalar`` (e.g. the full-batch training loss).
      params: pytree of float arrays.
      key: PRNG key for the starting vector.
      num_iters: power iterations (each one HVP, about two gradients).

    Returns:
      Scalar: the Rayleigh quotient after ``num_iters`` iterations (converges at a rate
      ``|λ₂/λ₁|`` per iteration).
    """
    checks.check_positive_int("num_iters", num_iters)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    v = treedef.unflatten(
        [jax.random.normal(k, jnp.shape(p)) for k, p in zip(keys, leaves, strict=True)]
    )
    grad = jax.grad(loss_fn)

    def hvp(v):
        return jax.jvp(grad, (params,), (v,))[1]

    def norm(t):
        return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(t)))

    def body(_, v):
        hv = hvp(v)
        return jax.tree.map(lambda x: x / jnp.maximum(norm(hv), 1e-30), hv)

    v = jax.tree.map(lambda x: x / norm(v), v)
    v = jax.lax.fori_loop(0, num_iters, body, v)
    hv = hvp(v)
    return sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(v), jax.tree.leaves(hv), strict=True))
