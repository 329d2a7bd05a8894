"""Hard-margin linear SVM (homogeneous, no bias) by dual coordinate ascent in JAX.

The primal problem is ``min_w ½‖w‖²  s.t.  y_i w·x_i >= 1`` for every example. Its dual

    max_{α >= 0}  Σ_i α_i − ½ ‖Σ_i α_i y_i x_i‖²,      w = Σ_i α_i y_i x_i,

is solved by exact coordinate ascent (Hsieh et al. 2008 with C = ∞): for each ``i`` in turn,
``α_i <- max(0, α_i + (1 − y_i w·x_i) / ‖x_i‖²)`` and ``w`` is updated in place. The solution
``ŵ`` is the max-margin direction that gradient descent on the logistic loss converges to on
separable data (Soudry et al. 2018); its geometric margin is ``min_i y_i ŵ·x_i / ‖ŵ‖ = 1/‖ŵ‖``.

There is no bias: the separating hyperplane passes through the origin. For an affine
separator append a constant feature to ``x`` (the liblinear trick); note that the bias is then
penalized like the other weights, so the result is not the unpenalized-bias SVM.

References:
    Vapnik, "The Nature of Statistical Learning Theory", Springer 1995 (Boser, Guyon &
    Vapnik, COLT 1992, for the maximal-margin classifier).
    Hsieh, Chang, Lin, Keerthi & Sundararajan, "A Dual Coordinate Descent Method for
    Large-scale Linear SVM", ICML 2008.
    Soudry, Hoffer, Nacson, Gunasekar & Srebro, "The Implicit Bias of Gradient Descent on
    Separable Data", JMLR 2018.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jreg.util import checks

__all__ = ["SVMResult", "hard_margin_svm", "normalized_margin"]


class SVMResult(NamedTuple):
    """Solution of :func:`hard_margin_svm`.

    Attributes:
      w: weights ``(D,)``, ``w = Σ α_i y_i x_i``, scaled so that ``min_i y_i w·x_i = 1``
        at the optimum.
      alpha: dual variables ``(N,)``, all ``>= 0``.
      margin: geometric margin ``min_i y_i w·x_i / ‖w‖`` (scalar; ``= 1/‖w‖`` at the optimum).
      support: bool mask ``(N,)`` of the support vectors (``α_i > 0``).
      num_sweeps: passes over the data that were run (int32 scalar).
      violation: largest KKT violation at the end (scalar): ``|1 − y_i w·x_i|`` where
        ``α_i > 0`` and ``max(0, 1 − y_i w·x_i)`` where ``α_i = 0``.
      converged: ``violation <= tol`` (bool scalar).
    """

    w: jax.Array
    alpha: jax.Array
    margin: jax.Array
    support: jax.Array
    num_sweeps: jax.Array
    violation: jax.Array
    converged: jax.Array


def normalized_margin(w: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """Geometric margin ``min_i y_i w·x_i / ‖w‖`` of a homogeneous linear classifier.

    Args:
      w: weights ``(..., D)`` (leading axes broadcast, e.g. a trajectory ``(T, D)``).
      x: inputs ``(N, D)``.
      y: labels ``(N,)`` in ``{-1, +1}`` (float or int).

    Returns:
      Margins of shape ``w.shape[:-1]``; negative when some example is misclassified.
    """
    y = jnp.asarray(y, x.dtype)
    scores = jnp.einsum("...d,nd->...n", w, x) * y
    return scores.min(axis=-1) / jnp.linalg.norm(w, axis=-1)


def _violation(alpha: jax.Array, gap: jax.Array) -> jax.Array:
    """Largest projected-gradient KKT violation; ``gap_i = 1 − y_i w·x_i``."""
    return jnp.max(jnp.where(alpha > 0, jnp.abs(gap), jnp.maximum(gap, 0.0)))


def _separable_lp(z: np.ndarray) -> bool:
    """Whether some ``w`` has ``z_i·w >= 1`` for all rows (an LP feasibility problem)."""
    from scipy.optimize import linprog  # scipy ships with scikit-learn; only needed here

    n, d = z.shape
    res = linprog(np.zeros(d), A_ub=-z, b_ub=-np.ones(n), bounds=[(None, None)] * d, method="highs")
    if res.status not in (0, 2):
        raise RuntimeError(f"the separability check (scipy linprog) failed: {res.message}")
    return res.status == 0


@functools.partial(jax.jit, static_argnames=("num_iters",))
def _coordinate_ascent(z: jax.Array, num_iters: int, tol: jax.Array):
    """Dual coordinate ascent on rows ``z_i = y_i x_i`` (N, D); returns (alpha, w, sweeps, viol)."""
    n = z.shape[0]
    sq = jnp.sum(z * z, axis=1)

    def coord(i, carry):
        alpha, w = carry
        new = jnp.maximum(alpha[i] + (1.0 - z[i] @ w) / sq[i], 0.0)
        w = w + (new - alpha[i]) * z[i]
        return alpha.at[i].set(new), w

    def cond(c):
        _, _, sweep, viol = c
        return (sweep < num_iters) & (viol > tol)

    def body(c):
        alpha, w, sweep, _ = c
        alpha, w = jax.lax.fori_loop(0, n, coord, (alpha, w))
        # Recompute w from alpha once per sweep so rounding errors do not accumulate.
        w = alpha @ z
        return alpha, w, sweep + 1, _violation(alpha, 1.0 - z @ w)

    alpha0 = jnp.zeros((n,), z.dtype)
    w0 = jnp.zeros((z.shape[1],), z.dtype)
    init = (alpha0, w0, jnp.zeros((), jnp.int32), jnp.asarray(jnp.inf, z.dtype))
    return jax.lax.while_loop(cond, body, init)


def hard_margin_svm(
    x: jax.Array,
    y: jax.Array,
    *,
    num_iters: int = 100_000,
    tol: float = 1e-5,
) -> SVMResult:
    """Hard-margin linear SVM through the origin (no bias) by dual coordinate ascent.

    Solves ``max_{α>=0} Σα_i − ½‖Σ α_i y_i x_i‖²`` (see the module docstring) with exact
    coordinate updates in cyclic order under ``lax.while_loop``, stopping when the largest
    KKT violation is at most ``tol`` or after ``num_iters`` sweeps over the data.

    The data are separable through the origin exactly when the convex hull of the points
    ``y_i x_i`` does not contain 0; the dual is then bounded and its optimum gives the SVM.
    Otherwise the dual objective grows without bound and the loop cannot converge. When it
    ends unconverged, separability is decided exactly by the feasibility of the linear
    program ``y_i w·x_i >= 1`` (``scipy.optimize.linprog``) so that the error says which
    case it is. (Every iterate also bounds the distance of the hull from 0, i.e. the SVM
    margin, by ``‖w‖ / Σα``; it tends to 0 for non-separable data and is quoted.)

    Args:
      x: inputs ``(N, D)``, finite, no all-zero row. Computation runs in ``x``'s float
        dtype (float32 by default; pass float64 under ``jax.enable_x64(True)`` for more
        digits).
      y: labels ``(N,)``, each ``-1`` or ``+1``.
      num_iters: maximum number of sweeps over the N coordinates.
      tol: stopping tolerance on the KKT violation (``>= 0``; relative to the target
        functional margin 1). The default suits float32 (about 100 ulp of 1); use
        e.g. ``1e-9`` with float64 inputs.

    Returns:
      :class:`SVMResult` with ``w`` ``(D,)``, ``alpha`` ``(N,)``, ``margin`` (scalar),
      ``support`` ``(N,)`` bool and convergence information.

    Raises:
      ValueError: bad shapes or labels, an all-zero input row, or data that are not
        linearly separable through the origin; also if the solver separated the data but
        did not reach ``tol`` within ``num_iters`` sweeps (raise ``num_iters``).

    References:
      Vapnik 1995; Hsieh et al., ICML 2008; Soudry et al., JMLR 2018 (see module docstring).
    """
    checks.check_positive_int("num_iters", num_iters)
    checks.check_nonnegative("tol", tol)
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"x must have shape (N, D) with N, D >= 1, got {x.shape}.")
    y_np = np.asarray(y)
    if y_np.shape != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},) to match x, got {y_np.shape}.")
    if not np.all(np.isin(y_np, (-1, 1))):
        bad = np.unique(y_np[~np.isin(y_np, (-1, 1))])[:5]
        raise ValueError(f"y must hold labels -1 or +1 only, found {bad.tolist()}.")
    checks.check_finite("x", x)
    zero_rows = np.flatnonzero(~np.any(np.asarray(x) != 0, axis=1))
    if zero_rows.size:
        raise ValueError(
            f"x has all-zero row(s) {zero_rows[:5].tolist()}: a hyperplane through the origin "
            "gives them margin 0, so no hard-margin solution exists. Drop them or add a "
            "constant feature for a bias."
        )
    z = x * jnp.asarray(y_np, x.dtype)[:, None]
    alpha, w, sweeps, viol = _coordinate_ascent(z, num_iters, jnp.asarray(tol, x.dtype))
    converged = bool(viol <= tol)
    if not converged:
        func_margin = float(jnp.min(z @ w))
        if func_margin <= 0 and not _separable_lp(np.asarray(z, np.float64)):
            hull_bound = float(jnp.linalg.norm(w) / jnp.maximum(alpha.sum(), 1e-30))
            raise ValueError(
                "the data are not linearly separable through the origin: the linear program "
                "y_i w·x_i >= 1 has no solution, and after "
                f"{int(sweeps)} sweeps the dual is still growing (Σα = {float(alpha.sum()):.3g}; "
                f"the distance of conv{{y_i x_i}} from 0 is at most {hull_bound:.3g}). A "
                "hard-margin SVM needs separable data; use a soft margin or drop outliers."
            )
        raise ValueError(
            f"the SVM solver did not converge in {num_iters} sweeps (KKT violation "
            f"{float(viol):.3g} > tol={tol}, functional margin {func_margin:.3g}); the data "
            "are linearly separable, but the problem is ill-conditioned (a small margin "
            "relative to ‖x‖) or tol is below the precision of x's dtype. Raise num_iters "
            "or tol."
        )
    norm = jnp.linalg.norm(w)
    return SVMResult(
        w=w,
        alpha=alpha,
        margin=jnp.min(z @ w) / norm,
        support=alpha > 0,
        num_sweeps=sweeps,
        violation=viol,
        converged=jnp.asarray(converged),
    )
