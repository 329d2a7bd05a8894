"""Classification losses with label smoothing.

Label smoothing here follows the convention of the reference notes: with smoothing ε
the target puts ``1 − ε`` on the true class and ``ε / (K − 1)`` on each of the other
``K − 1`` classes, so ε is exactly the probability mass moved off the true class.

This differs from Szegedy et al. (2016) and ``optax.smooth_labels(onehot, α)``, which
mix with the uniform distribution over ALL K classes: ``(1 − α)·onehot + α/K``, i.e.
``1 − α(K − 1)/K`` on the true class and ``α/K`` elsewhere. The two agree when

    α = ε · K / (K − 1)        (equivalently ε = α · (K − 1) / K),

so ``cross_entropy(logits, y, label_smoothing=eps)`` equals
``optax.softmax_cross_entropy(logits, optax.smooth_labels(onehot, eps * K / (K - 1))).mean()``.
At ``ε = (K − 1)/K`` the target is uniform; larger ε (allowed up to 1) makes the true
class LESS likely than each other class.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jreg.util import checks

__all__ = ["cross_entropy", "per_example_cross_entropy", "smoothed_targets"]


def _check_eps(eps) -> None:
    if np.ndim(eps) != 0:
        raise ValueError(f"label_smoothing must be a scalar, got shape {np.shape(eps)}.")
    checks.check_unit_interval("label_smoothing", eps)


def smoothed_targets(
    labels: jax.Array,
    num_classes: int,
    label_smoothing: float | jax.Array,
    *,
    dtype=jnp.float32,
) -> jax.Array:
    """Smoothed one-hot targets: ``1 − ε`` on the label, ``ε/(K − 1)`` elsewhere.

    Szegedy et al. 2016, "Rethinking the Inception architecture" (§7), with the
    ``ε/(K − 1)`` convention described in the module docstring.

    Args:
      labels: integer labels of shape ``(N,)`` in ``[0, num_classes)``.
      num_classes: K (static, >= 2).
      label_smoothing: ε in ``[0, 1)``; may be traced (then not validated).
      dtype: float dtype of the result.

    Returns:
      Array of shape ``(N, K)`` whose rows sum to 1.
    """
    checks.check_positive_int("num_classes", num_classes)
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 for label smoothing, got {num_classes}.")
    checks.check_labels("labels", labels, num_classes)
    _check_eps(label_smoothing)
    eps = jnp.asarray(label_smoothing).astype(dtype)
    onehot = jax.nn.one_hot(labels, num_classes, dtype=dtype)
    return (1 - eps) * onehot + eps / (num_classes - 1) * (1 - onehot)


def per_example_cross_entropy(
    logits: jax.Array, labels: jax.Array, *, label_smoothing: float | jax.Array = 0.0
) -> jax.Array:
    """Softmax cross-entropy ``−Σ_k y'_k log softmax(logits)_k`` per example.

    Args:
      logits: unnormalised scores of shape ``(N, K)``.
      labels: integer labels of shape ``(N,)`` in ``[0, K)``.
      label_smoothing: ε in ``[0, 1)`` (``1 − ε`` on the label, ``ε/(K − 1)`` elsewhere;
        see the module docstring for the optax conversion). May be a traced value, e.g.
        a vmapped sweep hyperparameter, in which case it is not validated.

    Returns:
      Array of shape ``(N,)`` in the (at least 32-bit) float dtype of ``logits``.
    """
    logits = jnp.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, K), got {logits.shape}.")
    if np.ndim(labels) != 1 or np.shape(labels)[0] != logits.shape[0]:
        raise ValueError(
            f"labels must have shape (N,) = ({logits.shape[0]},) to match logits, "
            f"got {np.shape(labels)}."
        )
    num_classes = logits.shape[1]
    checks.check_labels("labels", labels, num_classes)
    _check_eps(label_smoothing)
    if not jnp.issubdtype(logits.dtype, jnp.floating) or jnp.finfo(logits.dtype).bits < 32:
        logits = logits.astype(jnp.float32)
    logp = jax.nn.log_softmax(logits, axis=-1)
    idx = jnp.asarray(labels).astype(jnp.int32)[:, None]
    nll = -jnp.take_along_axis(logp, idx, axis=1)[:, 0]
    if checks.is_static_zero(label_smoothing):
        return nll
    if num_classes < 2:
        raise ValueError("label smoothing needs K >= 2 classes.")
    eps = jnp.asarray(label_smoothing).astype(logp.dtype)
    # −Σ_{k≠y} log p_k = −Σ_k log p_k − nll
    rest = -jnp.sum(logp, axis=-1) - nll
    return (1 - eps) * nll + eps / (num_classes - 1) * rest


def cross_entropy(
    logits: jax.Array, labels: jax.Array, *, label_smoothing: float | jax.Array = 0.0
) -> jax.Array:
    """Mean softmax cross-entropy over the batch, with optional label smoothing.

    Args:
      logits: unnormalised scores of shape ``(N, K)``.
      labels: integer labels of shape ``(N,)`` in ``[0, K)``.
      label_smoothing: ε in ``[0, 1)``; see :func:`per_example_cross_entropy`.

    Returns:
      Scalar array: the mean of :func:`per_example_cross_entropy` over N.
    """
    return jnp.mean(per_example_cross_entropy(logits, labels, label_smoothing=label_smoothing))
