"""Evaluation metrics: accuracy, calibration (reliability curves, ECE) and sparsity.

Everything except :func:`confidence_of_wrong` is jit-able; ``num_bins`` and ``binning``
are static arguments.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jreg.regularizers.penalties import Mask
from jreg.util import checks
from jreg.util.pytrees import masked_leaves

PyTree = Any

BINNINGS = ("quantile", "uniform")

__all__ = [
    "BINNINGS",
    "ReliabilityCurve",
    "accuracy",
    "confidence_of_wrong",
    "count_zeros",
    "expected_calibration_error",
    "mode_coverage",
    "reliability_curve",
    "weight_sparsity",
]


def _check_scores(scores: Any, labels: Any) -> None:
    if np.ndim(scores) != 2:
        raise ValueError(f"expected scores of shape (N, K), got {np.shape(scores)}.")
    if np.ndim(labels) != 1 or np.shape(labels)[0] != np.shape(scores)[0]:
        raise ValueError(
            f"labels must have shape (N,) = ({np.shape(scores)[0]},), got {np.shape(labels)}."
        )
    checks.check_labels("labels", labels, np.shape(scores)[1])


def _check_probs(probs: Any, labels: Any) -> None:
    _check_scores(probs, labels)
    if np.shape(probs)[0] == 0:
        raise ValueError("probs is empty; calibration needs at least one example.")
    checks.check_finite("probs", probs)
    if not checks.is_concrete(probs):
        return
    p = np.asarray(probs, dtype=np.float64)
    if np.any(p < 0):
        raise ValueError("probs must be non-negative; pass softmax(logits), not logits.")
    tol = 1e-3 if np.finfo(np.asarray(probs).dtype).bits >= 32 else 2e-2
    worst = float(np.max(np.abs(p.sum(axis=1) - 1)))
    if worst > tol:
        raise ValueError(
            f"rows of probs must sum to 1 (largest deviation {worst:.3g}); "
            "pass softmax(logits), not logits."
        )


def accuracy(logits_or_probs: jax.Array, labels: jax.Array) -> jax.Array:
    """Top-1 accuracy ``mean(argmax_k scores == label)``.

    Args:
      logits_or_probs: scores of shape ``(N, K)`` (argmax is the same for both).
      labels: integer labels of shape ``(N,)``.

    Returns:
      Scalar float32 in ``[0, 1]``.
    """
    _check_scores(logits_or_probs, labels)
    pred = jnp.argmax(jnp.asarray(logits_or_probs), axis=-1)
    return jnp.mean(pred == jnp.asarray(labels).astype(pred.dtype), dtype=jnp.float32)


class ReliabilityCurve(NamedTuple):
    """Per-bin calibration statistics (empty bins hold zeros).

    Attributes:
      confidence: ``(M,)`` mean max-probability of the examples in each bin.
      accuracy: ``(M,)`` fraction of those examples whose argmax is the label.
      count: ``(M,)`` int32 number of examples in each bin.
      edges: ``(M + 1,)`` bin edges on the confidence axis (see
        :func:`reliability_curve`).
    """

    confidence: jax.Array
    accuracy: jax.Array
    count: jax.Array
    edges: jax.Array


def _bin_index(conf: jax.Array, num_bins: int, binning: str) -> tuple[jax.Array, jax.Array]:
    """Bin of each example, shape ``(N,)`` int32, and the ``(M + 1,)`` edges."""
    n = conf.shape[0]
    if binning == "uniform":
        edges = jnp.linspace(0.0, 1.0, num_bins + 1, dtype=conf.dtype)
        idx = jnp.searchsorted(edges, conf, side="right") - 1
        return jnp.clip(idx, 0, num_bins - 1).astype(jnp.int32), edges
    # quantile: sorted position r goes to bin m with starts[m] <= r < starts[m + 1]; the
    # first N mod M bins hold ceil(N/M) examples, the rest floor(N/M) (numpy.array_split).
    q, r = divmod(n, num_bins)
    m = np.arange(num_bins + 1)
    starts = m * q + np.minimum(m, r)
    bin_of_rank = np.searchsorted(starts, np.arange(n), side="right") - 1
    order = jnp.argsort(conf, stable=True)
    idx = jnp.zeros((n,), jnp.int32).at[order].set(jnp.asarray(bin_of_rank, jnp.int32))
    sorted_conf = conf[order]
    inner = sorted_conf[np.minimum(starts[1:-1], n - 1)]
    edges = jnp.concatenate([jnp.zeros((1,), conf.dtype), inner, jnp.ones((1,), conf.dtype)])
    return idx, edges


def reliability_curve(
    probs: jax.Array, labels: jax.Array, *, num_bins: int = 15, binning: str = "quantile"
) -> ReliabilityCurve:
    """Reliability diagram statistics (DeGroot & Fienberg 1983; Guo et al. 2017).

    Confidence is ``max_k probs``; an example is correct when ``argmax_k probs == label``.

    Binning:
      * ``"uniform"``: ``M`` equal-width bins ``[e_m, e_{m+1})`` on ``[0, 1]``, the last
        one closed (``numpy.histogram`` convention). ``edges = linspace(0, 1, M + 1)``.
      * ``"quantile"``: examples sorted by confidence (ties by index) and split into
        ``M`` consecutive groups as ``numpy.array_split`` does: the first ``N mod M`` bins
        hold ``⌈N/M⌉`` examples, the rest ``⌊N/M⌋``. This is the adaptive binning of
        adaptive calibration error (Nixon et al. 2019,
        "Measuring calibration in deep learning"). ``edges[0] = 0``, ``edges[M] = 1``
        and ``edges[m]`` is the smallest confidence in bin ``m``. Bins are empty only
        when ``N < M``.

    Args:
      probs: probabilities of shape ``(N, K)`` (rows sum to 1).
      labels: integer labels of shape ``(N,)``.
      num_bins: M, a static positive int.
      binning: ``"quantile"`` or ``"uniform"`` (static).

    Returns:
      A :class:`ReliabilityCurve`.
    """
    checks.check_choice("binning", binning, BINNINGS)
    checks.check_positive_int("num_bins", num_bins)
    _check_probs(probs, labels)
    return _reliability_curve(jnp.asarray(probs), jnp.asarray(labels), num_bins, binning)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _reliability_curve(
    probs: jax.Array, labels: jax.Array, num_bins: int, binning: str
) -> ReliabilityCurve:
    """Compiled body of :func:`reliability_curve` (one compile per shape when eager)."""
    if not jnp.issubdtype(probs.dtype, jnp.floating) or jnp.finfo(probs.dtype).bits < 32:
        probs = probs.astype(jnp.float32)
    conf = jnp.max(probs, axis=-1)
    pred = jnp.argmax(probs, axis=-1)
    correct = (pred == jnp.asarray(labels).astype(pred.dtype)).astype(conf.dtype)
    idx, edges = _bin_index(conf, num_bins, binning)
    count = jax.ops.segment_sum(jnp.ones_like(idx), idx, num_segments=num_bins)
    sum_conf = jax.ops.segment_sum(conf, idx, num_segments=num_bins)
    sum_acc = jax.ops.segment_sum(correct, idx, num_segments=num_bins)
    denom = jnp.maximum(count, 1).astype(conf.dtype)
    return ReliabilityCurve(
        confidence=sum_conf / denom, accuracy=sum_acc / denom, count=count, edges=edges
    )


def expected_calibration_error(
    probs: jax.Array, labels: jax.Array, *, num_bins: int = 15, binning: str = "quantile"
) -> jax.Array:
    """Expected calibration error ``Σ_m |Q_m|/N · |conf(Q_m) − acc(Q_m)|``.

    Guo et al. 2017, "On calibration of modern neural networks" (uniform bins);
    Naeini et al. 2015 introduced ECE. The default quantile binning has lower bias at
    small N (Nixon et al. 2019). See :func:`reliability_curve` for the bins.

    Args:
      probs: probabilities of shape ``(N, K)``.
      labels: integer labels of shape ``(N,)``.
      num_bins: M, a static positive int.
      binning: ``"quantile"`` or ``"uniform"``.

    Returns:
      Scalar in ``[0, 1]``.

    Raises:
      ValueError: unknown ``binning`` (the message lists the choices), bad shapes, or
        concrete ``probs`` that are not probabilities.
    """
    curve = reliability_curve(probs, labels, num_bins=num_bins, binning=binning)
    weight = curve.count.astype(curve.confidence.dtype) / np.shape(probs)[0]
    return jnp.sum(weight * jnp.abs(curve.confidence - curve.accuracy))


def confidence_of_wrong(probs: Any, labels: Any) -> np.ndarray:
    """Confidences ``max_k probs`` of the misclassified examples (NOT jit-able).

    The result has data-dependent length, so this runs in numpy on concrete inputs.

    Args:
      probs: probabilities of shape ``(N, K)``.
      labels: integer labels of shape ``(N,)``.

    Returns:
      numpy array of shape ``(num_wrong,)``, in example order.
    """
    if not checks.is_concrete((probs, labels)):
        raise TypeError("confidence_of_wrong has a data-dependent shape; call it outside jit.")
    _check_probs(probs, labels)
    p = np.asarray(probs)
    wrong = np.argmax(p, axis=-1) != np.asarray(labels)
    return np.max(p, axis=-1)[wrong]


def weight_sparsity(params: PyTree, tol: float = 1e-3, mask: Mask = None) -> jax.Array:
    """Fraction of parameter entries with ``|w| < tol`` over the (masked) leaves.

    Args:
      params: pytree of arrays.
      tol: non-negative threshold (``tol=0`` gives 0; use :func:`count_zeros` for exact
        zeros).
      mask: ``None``, a pytree of bools like ``params``, or a callable producing one
        (see :mod:`jreg.regularizers.penalties`).

    Returns:
      Scalar float32 in ``[0, 1]``.
    """
    checks.check_nonnegative("tol", tol)
    leaves = masked_leaves(params, mask)
    total = sum(int(np.size(w)) for w in leaves)
    if total == 0:
        raise ValueError("weight_sparsity: the mask selects no parameters.")
    small = sum(
        jnp.sum(jnp.abs(jnp.asarray(w)).astype(jnp.float32) < tol, dtype=jnp.int32) for w in leaves
    )
    return jnp.asarray(small).astype(jnp.float32) / total


def count_zeros(params: PyTree, mask: Mask = None) -> jax.Array:
    """Number of entries exactly equal to zero (what L1 / proximal methods produce).

    Args:
      params: pytree of arrays.
      mask: optional mask as in :func:`weight_sparsity`.

    Returns:
      Scalar int32.
    """
    leaves = masked_leaves(params, mask)
    return jnp.asarray(
        sum(jnp.sum(jnp.asarray(w) == 0, dtype=jnp.int32) for w in leaves), jnp.int32
    )


def mode_coverage(samples: jax.Array, centers: jax.Array, std: float) -> dict:
    """Mode coverage of samples from a Gaussian mixture, as in VEEGAN (Srivastava et al. 2017).

    A sample is *high quality* if its Euclidean distance to its nearest mode (center) is
    below ``3 * std``; a mode is *captured* if it is the nearest mode of at least one
    high-quality sample. ``kl`` is KL(p ‖ uniform) = Σ_m p_m log(M p_m) of the histogram
    p of nearest modes over the high-quality samples (0 when they spread evenly over all
    modes, log M when they all sit on one); NaN when no sample is high quality. Jit-able.

    Args:
      samples: generated points, shape (N, d).
      centers: the mixture's means, shape (M, d).
      std: the mixture components' standard deviation σ (isotropic), > 0.

    Returns:
      dict: scalars ``modes`` (number captured, float32 in [0, M]), ``high_quality``
      (fraction of high-quality samples in [0, 1]), ``kl`` (as above), and ``counts`` (M,)
      (high-quality samples per mode).

    References:
      Srivastava et al., "VEEGAN: Reducing Mode Collapse in GANs using Implicit
      Variational Learning", NeurIPS 2017 (Sec. 5.1).
    """
    samples, centers = jnp.asarray(samples), jnp.asarray(centers)
    if samples.ndim != 2 or centers.ndim != 2 or samples.shape[1] != centers.shape[1]:
        raise ValueError(
            f"samples (N, d) and centers (M, d) need the same d, got {samples.shape} and "
            f"{centers.shape}."
        )
    checks.check_positive("std", std)
    d2 = jnp.sum(jnp.square(samples[:, None, :] - centers[None, :, :]), axis=-1)  # (N, M)
    nearest = jnp.argmin(d2, axis=1)
    good = jnp.min(d2, axis=1) < jnp.square(3.0 * std)
    counts = jnp.sum(
        jax.nn.one_hot(nearest, centers.shape[0]) * good[:, None].astype(jnp.float32), axis=0
    )
    total = jnp.sum(counts)
    p = counts / jnp.maximum(total, 1.0)
    m = float(centers.shape[0])
    terms = jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0) * m), 0.0)
    return {
        "modes": jnp.sum(counts > 0).astype(jnp.float32),
        "high_quality": jnp.mean(good.astype(jnp.float32)),
        "kl": jnp.where(total > 0, jnp.sum(terms), jnp.nan),
        "counts": counts,
    }
