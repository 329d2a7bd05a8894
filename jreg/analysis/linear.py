"""Penalized linear regression (ridge, lasso, elastic net) in JAX, with scikit-learn's objectives.

The objectives are scikit-learn's (and are tested against it), with optional per-feature
penalty factors ``p`` (glmnet's ``penalty.factor``; ``p = 1`` everywhere is
scikit-learn's model, ``p_j = 0`` leaves feature ``j`` unpenalized):

* :func:`ridge` (``sklearn.linear_model.Ridge``): ``‖y − Xw − b‖² + α Σ_j p_j w_j²``
  (Hoerl & Kennard 1970), solved in closed form.
* :func:`elastic_net` (``ElasticNet``): ``(1/2n)‖y − Xw − b‖² + α·l1_ratio Σ_j p_j |w_j|
  + α(1 − l1_ratio)/2 Σ_j p_j w_j²`` (Zou & Hastie 2005); :func:`lasso` (``Lasso``,
  Tibshirani 1996) is ``l1_ratio = 1``. Solved by cyclic coordinate descent with
  soft-thresholding (Friedman, Hastie & Tibshirani 2010, "Regularization paths for
  generalized linear models via coordinate descent"), so coefficients are exactly 0
  where the solution is; stopped on the KKT conditions.

Unlike glmnet, the penalty factors are used as given (glmnet rescales them to sum to the
number of features). With ``fit_intercept=True`` the intercept ``b`` is unpenalized and,
as in scikit-learn, fitted by centering: ``X`` and ``y`` are centered by their means,
``w`` is fitted on the centered data and ``b = mean(y) − mean(X)·w``.

Every solver is a pure function of arrays (``alpha``, ``l1_ratio`` and the penalty
factors may be traced): ``jit`` it, and ``vmap`` it over strengths or data sets. The
dtype is ``x``'s (float64 under ``jax.enable_x64(True)`` for tight comparisons).

Concrete inputs are checked before solving (``ValueError``): ``x`` and ``y`` finite,
shapes (n, d) and (n,), ``alpha >= 0``, ``l1_ratio`` in [0, 1], penalty factors >= 0.
Traced inputs (inside ``jit``/``vmap``) are not inspected: check them before tracing.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jreg.util import checks, linalg


class LinearFit(NamedTuple):
    """A fitted linear model ``y ≈ x @ coef + intercept``.

    Attributes:
      coef: (d,) coefficients.
      intercept: scalar (0 without ``fit_intercept``).
      n_iter: coordinate-descent sweeps used (0 for the closed-form ridge).
      kkt: the largest violation of the optimality (KKT) conditions at the solution,
        relative to ``max_j |x_jᵀ(y − ȳ)| / n``; compare with ``tol`` to check convergence
        (0 for ridge).
    """

    coef: jax.Array
    intercept: jax.Array
    n_iter: jax.Array
    kkt: jax.Array


def predict(fit: LinearFit, x: jax.Array) -> jax.Array:
    """Predictions ``x @ coef + intercept`` for ``x`` (n, d); returns (n,)."""
    return x @ fit.coef + fit.intercept


def soft_threshold(z: jax.Array, t) -> jax.Array:
    """``sign(z) · max(|z| − t, 0)``, the proximal operator of ``t‖·‖₁``; exact zeros."""
    return jnp.sign(z) * jnp.maximum(jnp.abs(z) - t, 0.0)


def _check(x, y, alpha=None, l1_ratio=None, penalty_factor=None) -> None:
    """Validate concrete inputs (a traced one, inside ``jit``/``vmap``, is skipped)."""
    checks.check_finite("x", x)
    checks.check_finite("y", y)
    checks.check_nonnegative("alpha", alpha)
    checks.check_closed_unit_interval("l1_ratio", l1_ratio)
    checks.check_nonnegative("penalty_factor", penalty_factor)


def _prepare(x, y, penalty_factor, fit_intercept):
    """Cast to one float dtype, center (or not); returns xc, yc, means, factors, dtype."""
    x = jnp.asarray(x)
    dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
    x, y = x.astype(dtype), jnp.asarray(y).astype(dtype)
    if x.ndim != 2 or y.shape != x.shape[:1]:
        raise ValueError(f"need x (n, d) and y (n,); got {x.shape} and {y.shape}.")
    d = x.shape[1]
    p = jnp.ones(d, dtype) if penalty_factor is None else jnp.asarray(penalty_factor, dtype)
    if p.shape != (d,):
        raise ValueError(f"penalty_factor must have shape ({d},), got {p.shape}.")
    if fit_intercept:
        x_mean, y_mean = x.mean(0), y.mean()
    else:
        x_mean, y_mean = jnp.zeros(d, dtype), jnp.zeros((), dtype)
    return x - x_mean, y - y_mean, x_mean, y_mean, p, dtype


def ridge(x, y, alpha, *, penalty_factor=None, fit_intercept: bool = True) -> LinearFit:
    """Ridge regression, ``min ‖y − Xw − b‖² + α Σ_j p_j w_j²`` (sklearn's ``Ridge``).

    Solves ``(XcᵀXc + α diag(p)) w = Xcᵀ yc`` on centered data (a d × d system).

    Args:
      x: (n, d) inputs.
      y: (n,) targets.
      alpha: α ≥ 0, scalar (may be traced). With α = 0 this is least squares (needs
        XcᵀXc invertible).
      penalty_factor: (d,) non-negative factors ``p`` (default all ones).
      fit_intercept: fit an unpenalized intercept by centering.

    Returns:
      :class:`LinearFit` (``n_iter = kkt = 0``).
    """
    _check(x, y, alpha, None, penalty_factor)
    xc, yc, x_mean, y_mean, p, dtype = _prepare(x, y, penalty_factor, fit_intercept)
    gram = xc.T @ xc + jnp.diag(jnp.asarray(alpha, dtype) * p)
    coef = linalg.solve(gram, xc.T @ yc)  # no batched LAPACK on CPU (jreg.util.linalg)
    zero = jnp.zeros((), dtype)
    return LinearFit(coef, y_mean - x_mean @ coef, jnp.zeros((), jnp.int32), zero)


def _kkt_violation(xc, r, w, l1, l2):
    """Largest violation of 0 ∈ ∇f(w) + ∂(Σ l1_j |w_j|) with f the smooth part."""
    n = xc.shape[0]
    g = -(xc.T @ r) / n + l2 * w
    at_zero = jnp.maximum(jnp.abs(g) - l1, 0.0)
    return jnp.max(jnp.where(w == 0, at_zero, jnp.abs(g + l1 * jnp.sign(w))))


def elastic_net(
    x,
    y,
    alpha,
    l1_ratio=0.5,
    *,
    penalty_factor=None,
    fit_intercept: bool = True,
    tol: float | None = None,
    max_iter: int = 10_000,
) -> LinearFit:
    """Elastic net by cyclic coordinate descent (sklearn's ``ElasticNet`` objective).

    Minimizes ``(1/2n)‖y − Xw − b‖² + α·l1_ratio Σ_j p_j|w_j| + α(1 − l1_ratio)/2 Σ_j
    p_j w_j²``. Each sweep updates ``w_j ← S(x_jᵀr/n + z_j w_j, α·l1_ratio·p_j) / (z_j +
    α(1 − l1_ratio)p_j)`` for j = 1..d in turn (``z_j = ‖x_j‖²/n``, ``r`` the residual,
    ``S`` :func:`soft_threshold`), as in Friedman et al. (2010) and scikit-learn. It
    stops when the KKT violation (see :class:`LinearFit`) is at most ``tol`` or after
    ``max_iter`` sweeps. A feature with ``z_j + α(1 − l1_ratio)p_j = 0`` (constant,
    and no ridge part) gets ``w_j = 0``.

    Args:
      x: (n, d) inputs.
      y: (n,) targets.
      alpha: α ≥ 0, scalar (may be traced).
      l1_ratio: in [0, 1]; 1 is the lasso, 0 a ridge with sklearn's ``1/2n`` scaling.
      penalty_factor: (d,) non-negative factors ``p`` (default all ones; 0: unpenalized).
      fit_intercept: fit an unpenalized intercept by centering.
      tol: KKT tolerance, relative (default ``eps ** 0.75`` of the dtype: about 7e-6 in
        float32, 2e-12 in float64).
      max_iter: maximum number of sweeps (static).

    Returns:
      :class:`LinearFit`; ``kkt > tol`` means it stopped at ``max_iter`` unconverged.
    """
    _check(x, y, alpha, l1_ratio, penalty_factor)
    checks.check_positive_int("max_iter", max_iter)
    if tol is not None:
        checks.check_positive("tol", tol)
    xc, yc, x_mean, y_mean, p, dtype = _prepare(x, y, penalty_factor, fit_intercept)
    n, d = xc.shape
    tol = float(jnp.finfo(dtype).eps) ** 0.75 if tol is None else tol
    alpha, l1_ratio = jnp.asarray(alpha, dtype), jnp.asarray(l1_ratio, dtype)
    l1, l2 = alpha * l1_ratio * p, alpha * (1 - l1_ratio) * p
    xt = xc.T  # (d, n): feature j is a contiguous row
    denom = jnp.sum(xc * xc, axis=0) / n + l2
    scale = jnp.maximum(jnp.max(jnp.abs(xt @ yc)) / n, jnp.finfo(dtype).tiny)

    def coordinate(j, carry):
        w, r = carry
        rho = xt[j] @ r / n + (denom[j] - l2[j]) * w[j]
        safe = jnp.where(denom[j] > 0, denom[j], 1.0)
        new = jnp.where(denom[j] > 0, soft_threshold(rho, l1[j]) / safe, 0.0)
        return w.at[j].set(new), r - xt[j] * (new - w[j])

    def sweep(carry):
        w, _, it, _ = carry
        w, _ = jax.lax.fori_loop(0, d, coordinate, (w, yc - xc @ w))
        r = yc - xc @ w  # recomputed each sweep: no drift from the rank-one updates
        return w, r, it + 1, _kkt_violation(xc, r, w, l1, l2) / scale

    def not_done(carry):
        _, _, it, viol = carry
        return (it < max_iter) & (viol > tol)

    w0 = jnp.zeros(d, dtype)
    init = (w0, yc, jnp.zeros((), jnp.int32), _kkt_violation(xc, yc, w0, l1, l2) / scale)
    w, _, it, viol = jax.lax.while_loop(not_done, sweep, init)
    return LinearFit(w, y_mean - x_mean @ w, it, viol)


def lasso(x, y, alpha, **kwargs) -> LinearFit:
    """Lasso, ``(1/2n)‖y − Xw − b‖² + α Σ_j p_j|w_j|`` (sklearn's ``Lasso``; Tibshirani 1996).

    :func:`elastic_net` with ``l1_ratio = 1``; the same keyword arguments.
    """
    return elastic_net(x, y, alpha, 1.0, **kwargs)


def alpha_max(x, y, l1_ratio=1.0, *, penalty_factor=None, fit_intercept: bool = True):
    """Smallest α at which the (elastic-net) solution is all zeros.

    ``max_j |x_jᵀ(y − ȳ)| / (n · l1_ratio · p_j)`` over features with ``p_j > 0``
    (sklearn's ``_alpha_grid``, with penalty factors); the start of a regularization path.
    Exact when every ``p_j > 0`` (unpenalized features are never zero). Scalar.
    """
    _check(x, y, None, l1_ratio, penalty_factor)
    checks.check_positive("l1_ratio", l1_ratio)
    xc, yc, _, _, p, _ = _prepare(x, y, penalty_factor, fit_intercept)
    corr = jnp.abs(xc.T @ yc) / xc.shape[0]
    ratio = jnp.where(p > 0, corr / jnp.where(p > 0, p, 1.0), 0.0)
    return jnp.max(ratio) / l1_ratio
