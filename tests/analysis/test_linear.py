import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet, Lasso, Ridge

from jreg.analysis import linear

X, Y = load_diabetes(return_X_y=True)  # (442, 10), features centered with unit norm
ATOL = 1e-4


def _sk(model):
    model.fit(X, Y)
    return model.coef_, model.intercept_


def _check(fit, coef, intercept):
    np.testing.assert_allclose(np.asarray(fit.coef), coef, rtol=0, atol=ATOL)
    assert abs(float(fit.intercept) - intercept) <= ATOL
    # Exact zeros exactly where scikit-learn has them.
    np.testing.assert_array_equal(np.asarray(fit.coef) == 0, coef == 0)


@pytest.mark.parametrize("alpha", [1e-3, 0.1, 1.0, 10.0])
def test_ridge_matches_sklearn(alpha):
    with jax.enable_x64(True):
        fit = jax.jit(linear.ridge)(X, Y, alpha)
    _check(fit, *_sk(Ridge(alpha=alpha)))


@pytest.mark.parametrize("alpha", [0.01, 0.1, 0.5, 1.0, 2.0])
def test_lasso_matches_sklearn_with_exact_zeros(alpha):
    coef, intercept = _sk(Lasso(alpha=alpha, tol=1e-12, max_iter=1_000_000))
    with jax.enable_x64(True):
        fit = jax.jit(linear.lasso)(X, Y, alpha)
    assert float(fit.kkt) <= 1e-11
    _check(fit, coef, intercept)
    if alpha >= 0.1:
        assert np.sum(coef == 0) >= 1  # the test covers zeros


@pytest.mark.parametrize("alpha,l1_ratio", [(0.001, 0.5), (0.01, 0.7), (0.05, 0.9), (0.1, 0.2)])
def test_elastic_net_matches_sklearn(alpha, l1_ratio):
    model = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-12, max_iter=1_000_000)
    coef, intercept = _sk(model)
    with jax.enable_x64(True):
        fit = jax.jit(linear.elastic_net)(X, Y, alpha, l1_ratio)
    _check(fit, coef, intercept)


def test_vmap_over_alpha_and_float32():
    alphas = np.array([0.05, 0.3, 1.0])
    fits = jax.vmap(lambda a: linear.lasso(X.astype(np.float32), Y.astype(np.float32), a))(
        jnp.asarray(alphas, jnp.float32)
    )
    for i, a in enumerate(alphas):
        coef, intercept = _sk(Lasso(alpha=a, tol=1e-12, max_iter=1_000_000))
        # float32: coefficients of size ~500 agree to float32 precision.
        np.testing.assert_allclose(fits.coef[i], coef, rtol=0, atol=1e-2)
        np.testing.assert_array_equal(np.asarray(fits.coef[i]) == 0, coef == 0)
        assert abs(float(fits.intercept[i]) - intercept) < 1e-2


def test_penalty_factors():
    p = np.linspace(0.5, 2.0, 10)
    with jax.enable_x64(True):
        # All factors c: the same as alpha * c.
        fit = linear.lasso(X, Y, 0.2, penalty_factor=np.full(10, 2.5))
        np.testing.assert_allclose(fit.coef, linear.lasso(X, Y, 0.5).coef, atol=1e-8)
        # Ridge with factors p = sklearn Ridge on features x_j / sqrt(p_j) (v_j = sqrt(p_j) w_j).
        _check(linear.ridge(X, Y, 3.0, penalty_factor=p), *_sk_scaled(Ridge(alpha=3.0), np.sqrt(p)))
        # Lasso with factors p = sklearn Lasso on features x_j / p_j (v_j = p_j w_j).
        lasso = Lasso(alpha=0.3, tol=1e-12, max_iter=1_000_000)
        _check(linear.lasso(X, Y, 0.3, penalty_factor=p), *_sk_scaled(lasso, p))
        # Elastic net with factors has no sklearn counterpart: check its KKT conditions.
        assert float(linear.elastic_net(X, Y, 0.3, 0.6, penalty_factor=p).kkt) <= 1e-11
        # An unpenalized feature (p_j = 0) is never zero, even at a huge alpha.
        p0 = np.ones(10)
        p0[2] = 0.0
        fit = linear.lasso(X, Y, 1e6, penalty_factor=p0)
        ols = np.linalg.lstsq(np.c_[np.ones(len(X)), X[:, 2]], Y, rcond=None)[0]
        assert np.count_nonzero(np.asarray(fit.coef)) == 1
        np.testing.assert_allclose(fit.coef[2], ols[1], rtol=1e-8)
        np.testing.assert_allclose(fit.intercept, ols[0], rtol=1e-8)


def _sk_scaled(model, scale):
    """sklearn fitted on features x_j / scale_j, coefficients mapped back to x."""
    model.fit(X / scale, Y)
    return model.coef_ / scale, model.intercept_


def test_alpha_max_and_no_intercept():
    with jax.enable_x64(True):
        a_max = float(linear.alpha_max(X, Y))
        assert np.all(np.asarray(linear.lasso(X, Y, a_max).coef) == 0)
        assert np.any(np.asarray(linear.lasso(X, Y, 0.99 * a_max).coef) != 0)
        fit = linear.lasso(X, Y, 0.1, fit_intercept=False)
        coef, intercept = _sk(Lasso(alpha=0.1, fit_intercept=False, tol=1e-12, max_iter=10**6))
        _check(fit, coef, intercept)
        x1 = np.c_[X, np.ones(len(X))]  # a constant column: centered away, coefficient 0
        assert float(linear.lasso(x1, Y, 0.1).coef[-1]) == 0.0
        pred = linear.predict(linear.ridge(X, Y, 0.1), X)
        np.testing.assert_allclose(pred, Ridge(alpha=0.1).fit(X, Y).predict(X), atol=1e-8)


def test_bad_shapes():
    with pytest.raises(ValueError, match="penalty_factor"):
        linear.ridge(X, Y, 1.0, penalty_factor=np.ones(3))
    with pytest.raises(ValueError, match="need x"):
        linear.lasso(X, Y[:10], 1.0)
