import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.svm import SVC

from jreg.analysis import svm


def _separable(key, n=60, d=5, gap=0.3):
    """Random data separable through the origin with a gap around a random hyperplane."""
    kx, ku = jax.random.split(key)
    x = np.asarray(jax.random.normal(kx, (4 * n, d)), np.float32)
    u = np.asarray(jax.random.normal(ku, (d,)), np.float32)
    s = x @ u / np.linalg.norm(u)
    keep = np.flatnonzero(np.abs(s) > gap)[:n]
    return x[keep], np.where(s[keep] > 0, 1, -1).astype(np.int32)


def test_two_points_by_hand():
    res = svm.hard_margin_svm(jnp.array([[1.0, 0.0], [-1.0, 0.0]]), jnp.array([1, -1]))
    np.testing.assert_allclose(res.w, [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(res.margin, 1.0, atol=1e-6)
    assert bool(res.converged)


def test_four_points_by_hand():
    # z_i = y_i x_i = (2,0), (0,1), (2,2), (3,1). The SVM is the min-norm point of the
    # segment [(2,0), (0,1)]: (0.4, 0.8), so w = z*/|z*|^2 = (0.5, 1), margin = 2/sqrt(5),
    # alpha = (0.25, 1, 0, 0); (2,2) and (3,1) have y w.x = 3 and 2.5 (not support vectors).
    x = jnp.array([[2.0, 0.0], [0.0, -1.0], [-2.0, -2.0], [3.0, 1.0]])
    y = jnp.array([1, -1, -1, 1])
    res = svm.hard_margin_svm(x, y)
    np.testing.assert_allclose(res.w, [0.5, 1.0], rtol=1e-5)
    np.testing.assert_allclose(res.alpha, [0.25, 1.0, 0.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(res.margin, 2 / np.sqrt(5), rtol=1e-5)
    np.testing.assert_array_equal(res.support, [True, True, False, False])
    np.testing.assert_allclose(y.astype(jnp.float32) * (x @ res.w), [1.0, 1.0, 3.0, 2.5], rtol=1e-5)


def test_kkt_conditions(key):
    x, y = _separable(key)
    res = svm.hard_margin_svm(x, y)
    alpha, w = np.asarray(res.alpha), np.asarray(res.w)
    fm = y * (x @ w)
    assert bool(res.converged) and float(res.violation) <= 1e-5
    assert np.all(alpha >= 0)  # dual feasibility
    assert np.all(fm >= 1 - 1e-4)  # primal feasibility
    np.testing.assert_allclose(alpha * (fm - 1), 0.0, atol=1e-4)  # complementary slackness
    np.testing.assert_allclose(w, (alpha * y) @ x, rtol=1e-5, atol=1e-5)  # stationarity
    np.testing.assert_allclose(res.margin, 1 / np.linalg.norm(w), rtol=1e-4)
    np.testing.assert_allclose(res.margin, fm.min() / np.linalg.norm(w), rtol=1e-6)
    assert 1 <= int(res.support.sum()) <= x.shape[1] + 1
    np.testing.assert_allclose(fm[np.asarray(res.support)], 1.0, atol=1e-4)


def test_matches_sklearn_on_symmetric_data(key):
    # Adding the mirrored points (-x, -y) keeps the homogeneous SVM unchanged and makes the
    # affine SVM's optimal intercept 0, so SVC(kernel="linear") solves the same problem.
    x, y = _separable(key, n=40, d=4)
    res = svm.hard_margin_svm(x, y)
    xs, ys = np.concatenate([x, -x]), np.concatenate([y, -y])
    ref = SVC(kernel="linear", C=1e6, tol=1e-8).fit(xs.astype(np.float64), ys)
    assert abs(ref.intercept_[0]) < 1e-3
    np.testing.assert_allclose(res.w, ref.coef_[0], rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(res.margin, 1 / np.linalg.norm(ref.coef_[0]), rtol=2e-3)
    # SVC sees each point twice (x_i and its mirror i + n): fold its duals back.
    n = len(y)
    sk_alpha = np.zeros(2 * n)
    sk_alpha[ref.support_] = np.abs(ref.dual_coef_[0])
    np.testing.assert_allclose(res.alpha, sk_alpha[:n] + sk_alpha[n:], rtol=5e-3, atol=5e-3)
    assert set(np.flatnonzero(res.support)) == {int(i) % n for i in ref.support_}


def test_scaling_the_data_scales_the_margin(key):
    x, y = _separable(key, n=30, d=3)
    a = svm.hard_margin_svm(x, y)
    b = svm.hard_margin_svm(3.0 * x, y)
    np.testing.assert_allclose(b.margin, 3.0 * a.margin, rtol=1e-4)
    np.testing.assert_allclose(b.w, a.w / 3.0, rtol=1e-4, atol=1e-6)


def test_float64():
    with jax.enable_x64(True):
        x = jnp.array([[2.0, 0.0], [0.0, -1.0], [-2.0, -2.0], [3.0, 1.0]], jnp.float64)
        res = svm.hard_margin_svm(x, jnp.array([1, -1, -1, 1]), tol=1e-12)
        assert res.w.dtype == jnp.float64
        np.testing.assert_allclose(res.margin, 2 / np.sqrt(5), rtol=1e-12)


def test_not_separable_raises():
    x = jnp.array([[1.0, 0.0], [2.0, 0.0], [1.0, 1.0]])  # +1 at (1,0) and -1 at (2,0)
    with pytest.raises(ValueError, match="not linearly separable"):
        svm.hard_margin_svm(x, jnp.array([1, -1, 1]), num_iters=2000)
    xor = jnp.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    with pytest.raises(ValueError, match="not linearly separable"):
        svm.hard_margin_svm(xor, jnp.array([1, 1, -1, -1]), num_iters=2000)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (np.ones((3,)), np.ones(3), "shape"),
        (np.ones((3, 2)), np.ones(2), "shape"),
        (np.ones((2, 2)), np.array([0, 1]), "-1 or \\+1"),
        (np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([1, -1]), "all-zero"),
        (np.array([[1.0, np.nan], [1.0, 0.0]]), np.array([1, -1]), "NaN"),
    ],
)
def test_validation(x, y, match):
    with pytest.raises(ValueError, match=match):
        svm.hard_margin_svm(x, y)


def test_unconverged_separable_raises():
    x, y = _separable(jax.random.key(1), n=60, d=5, gap=0.01)
    with pytest.raises(ValueError, match="did not converge"):
        svm.hard_margin_svm(x, y, num_iters=1, tol=0.0)


def test_normalized_margin(maybe_jit):
    x = jnp.array([[2.0, 0.0], [0.0, -1.0]])
    y = jnp.array([1.0, -1.0])
    ws = jnp.array([[0.5, 1.0], [1.0, 0.0], [-1.0, 0.0]])
    out = maybe_jit(svm.normalized_margin)(ws, x, y)
    np.testing.assert_allclose(out, [2 / np.sqrt(5), 0.0, -2.0], rtol=1e-6)
