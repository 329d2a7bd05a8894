"""The fits of :mod:`.viral_escape`: five regularized regressions, validation, scores.

Ridge, lasso, elastic net and the surface-prior (penalty-factor) ridge and lasso of
:mod:`jreg.analysis.linear`, ``vmap``-ed over strengths and penalty factors, each strength
picked by the validation MSE; :func:`scores` rates a fit against the true effects.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.metrics import r2_score, roc_auc_score

from jreg.analysis import linear

#: Fits, in the order of every method axis.
METHODS = ("ridge", "lasso", "elastic net", "weighted ridge", "weighted lasso")


def _select(fits: linear.LinearFit, alphas, x_val, y_val):
    """The fit with the least validation MSE among K fits (leading axis K)."""
    mse = jnp.mean((x_val @ fits.coef.T + fits.intercept - y_val[:, None]) ** 2, axis=0)
    best = jnp.argmin(mse)
    return fits.coef[best], fits.intercept[best], alphas[best], jnp.max(fits.kkt)


@functools.partial(
    jax.jit, static_argnames=("num_alphas", "alpha_ratio", "l1_ratio", "tol", "max_iter")
)
def fit_all(
    x, y, x_val, y_val, factors, ridge_alphas, *, num_alphas, alpha_ratio, l1_ratio, tol, max_iter
):
    """All five fits of one data set, each at its validation-best strength.

    Training ``x`` (n, d), ``y`` (n,); validation ``x_val``, ``y_val``; ``factors`` (d,)
    penalty factors of the weighted fits; ``ridge_alphas`` (K,) (sklearn ``Ridge``'s α);
    the lasso / elastic-net grids have ``num_alphas`` strengths log-spaced from
    :func:`jreg.analysis.linear.alpha_max` (all zeros) down to ``alpha_ratio`` times it;
    ``l1_ratio``, ``tol``, ``max_iter``: :func:`jreg.analysis.linear.elastic_net`'s.
    Returns ``(coef (M, d), intercept (M,), alpha (M,), kkt (M,))`` over ridge, lasso,
    elastic net, then the weighted ridge of each prior, then the weighted lasso of each
    (M = 3 + 2Q); ``kkt`` is the largest KKT violation over the grid (0 for ridge).
    """
    p = jnp.concatenate([jnp.ones_like(factors[:1]), factors])  # plain, then each prior
    select = lambda fits, a: _select(fits, a, x_val, y_val)

    def ridge_path(p):
        fits = jax.vmap(lambda a: linear.ridge(x, y, a, penalty_factor=p))(ridge_alphas)
        return select(fits, ridge_alphas)

    def cd_path(p, ratio):
        top = linear.alpha_max(x, y, ratio, penalty_factor=p)
        alphas = top * jnp.geomspace(1.0, alpha_ratio, num_alphas)
        solve = lambda a: linear.elastic_net(
            x, y, a, ratio, penalty_factor=p, tol=tol, max_iter=max_iter
        )
        return select(jax.vmap(solve)(alphas), alphas)

    ridge = jax.vmap(ridge_path)(p)  # ridge, weighted ridges
    lasso = jax.vmap(lambda f: cd_path(f, 1.0))(p)  # lasso, weighted lassos
    enet = cd_path(p[0], l1_ratio)  # apart: its slower convergence would hold up the lasso
    order = lambda r, c, e: jnp.concatenate([r[:1], c[:1], e[None], r[1:], c[1:]])
    return tuple(order(*t) for t in zip(ridge, lasso, enet, strict=True))


def scores(coef, intercept, effects, hotspot, x_test, y_test, num_sites):
    """``(correlation, auroc, r2)`` of one fit: ``coef`` (d,), ``intercept``, against the true
    ``effects`` (d,) and escape sites ``hotspot`` (L,) of ``num_sites`` L, and on held-out
    variants. The correlation of an all-zero estimate (no information) is defined as 0."""
    coef = np.asarray(coef, np.float64)
    corr = float(np.corrcoef(coef, effects)[0, 1]) if np.ptp(coef) > 0 else 0.0
    site = np.maximum(coef, 0.0).reshape(num_sites, -1).sum(1)
    auroc = float(roc_auc_score(hotspot, site))
    r2 = float(r2_score(y_test, x_test @ coef + float(intercept)))
    return corr, auroc, r2
