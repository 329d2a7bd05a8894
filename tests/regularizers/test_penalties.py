import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jreg.regularizers import activity as A
from jreg.regularizers import penalties as P
from jreg.regularizers import spectral as S


@pytest.fixture
def params():
    return {"w": jnp.array([[1.0, -2.0], [3.0, 0.5]]), "b": jnp.array([0.5, -1.0])}


def _np(tree):
    return {k: np.asarray(v, np.float64) for k, v in tree.items()}


# ----------------------------------------------------------------------------- norms


def test_l2_l1_elastic_net_closed_form(params, maybe_jit):
    p = _np(params)
    sq = np.sum(p["w"] ** 2) + np.sum(p["b"] ** 2)
    ab = np.sum(np.abs(p["w"])) + np.sum(np.abs(p["b"]))
    np.testing.assert_allclose(maybe_jit(P.l2)(params), sq, rtol=1e-6)
    np.testing.assert_allclose(maybe_jit(P.l1)(params), ab, rtol=1e-6)
    en = maybe_jit(P.elastic_net)(params, 0.3)
    np.testing.assert_allclose(en, 0.3 * ab + 0.7 * sq, rtol=1e-6)
    np.testing.assert_allclose(P.elastic_net(params, 1.0), ab, rtol=1e-6)
    np.testing.assert_allclose(P.elastic_net(params, 0.0), sq, rtol=1e-6)


def test_masks_pytree_and_callable(params, maybe_jit):
    p = _np(params)
    only_w = {"w": True, "b": False}
    by_ndim = lambda t: jax.tree.map(lambda x: x.ndim > 1, t)
    for mask in (only_w, by_ndim):
        np.testing.assert_allclose(
            maybe_jit(lambda q, m=mask: P.l2(q, m))(params), np.sum(p["w"] ** 2), rtol=1e-6
        )
        np.testing.assert_allclose(P.l1(params, mask), np.sum(np.abs(p["w"])), rtol=1e-6)
        np.testing.assert_allclose(
            P.elastic_net(params, 0.5, mask),
            0.5 * np.sum(np.abs(p["w"])) + 0.5 * np.sum(p["w"] ** 2),
            rtol=1e-6,
        )
    assert float(P.l2(params, {"w": False, "b": False})) == 0.0


def test_bad_mask_and_ratio(params):
    with pytest.raises(ValueError, match="same tree structure"):
        P.l2(params, {"w": True})
    with pytest.raises(ValueError, match="single bools"):
        P.l2(params, {"w": np.array([True, False]), "b": True})
    with pytest.raises(ValueError, match="l1_ratio"):
        P.elastic_net(params, 1.5)
    with pytest.raises(ValueError, match="NaN"):
        P.l2({"w": jnp.array([1.0, jnp.nan])})


def test_l2_bf16_accumulates_in_float32():
    out = P.l2({"w": jnp.ones((3,), jnp.bfloat16), "v": jnp.ones((2,), jnp.float32)})
    assert out.dtype == jnp.float32 and float(out) == 5.0


def test_grads_match_finite_differences(params):
    check_grads(jax.jit(P.l2), (params,), order=2, modes=["rev"])
    check_grads(jax.jit(lambda q: P.elastic_net(q, 0.4)), (params,), order=1, modes=["rev"])
    g = jax.grad(P.l2)(params)
    np.testing.assert_allclose(g["w"], 2 * params["w"])  # no 1/2 factor


def test_weighted_and_anchored(params, maybe_jit):
    p = _np(params)
    weights = {"w": jnp.array([[1.0, 2.0], [0.0, 0.5]]), "b": 3.0}
    wl1 = np.sum(np.asarray(weights["w"]) * np.abs(p["w"])) + 3.0 * np.sum(np.abs(p["b"]))
    wl2 = np.sum(np.asarray(weights["w"]) * p["w"] ** 2) + 3.0 * np.sum(p["b"] ** 2)
    np.testing.assert_allclose(maybe_jit(P.weighted_l1)(params, weights), wl1, rtol=1e-6)
    np.testing.assert_allclose(maybe_jit(P.weighted_l2)(params, weights), wl2, rtol=1e-6)

    anchor = jax.tree.map(lambda x: x + 0.5, params)
    fisher = {"w": jnp.array([[1.0, 0.0], [2.0, 4.0]]), "b": jnp.array([1.0, 0.25])}
    np.testing.assert_allclose(maybe_jit(P.anchored_l2)(params, anchor), 6 * 0.25, rtol=1e-6)
    np.testing.assert_allclose(maybe_jit(P.ewc)(params, anchor, fisher), 8.25 * 0.25, rtol=1e-6)


def test_weighted_bad_inputs(params):
    neg = {"w": -jnp.ones((2, 2)), "b": 1.0}
    with pytest.raises(ValueError, match="weights must be >= 0"):
        P.weighted_l1(params, neg)
    with pytest.raises(ValueError, match="weights must be >= 0"):
        P.weighted_l2(params, neg)
    with pytest.raises(ValueError, match="fisher must be >= 0"):
        P.ewc(params, params, neg)
    with pytest.raises(ValueError, match="same tree structure"):
        P.weighted_l1(params, {"w": 1.0})
    with pytest.raises(ValueError, match="NaN"):
        P.anchored_l2(params, {"w": jnp.full((2, 2), jnp.nan), "b": 0.0})


def test_diagonal_fisher_linear_gaussian(key):
    # log p(y | x, w) = -(y - w.x)^2 / 2  =>  grad_w = (y - w.x) x.
    kx, ky = jax.random.split(key)
    xs = jax.random.normal(kx, (7, 3))
    ys = jax.random.normal(ky, (7,))
    params = {"w": jnp.array([0.5, -1.0, 2.0])}
    loglik = lambda p, x, y: -0.5 * (y - jnp.dot(p["w"], x)) ** 2
    fisher = jax.jit(P.diagonal_fisher, static_argnums=0)(loglik, params, xs, ys)
    x, y = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
    r = y - x @ np.asarray(params["w"], np.float64)
    np.testing.assert_allclose(fisher["w"], np.mean((r[:, None] * x) ** 2, 0), rtol=1e-5)
    with pytest.raises(ValueError, match="leading example axis"):
        P.diagonal_fisher(loglik, params, xs, ys[:3])


# ----------------------------------------------------------------------------- spectral


@pytest.fixture
def matrix():
    return jax.random.normal(jax.random.key(1), (6, 4))


def test_spectral_norm_matches_numpy(matrix, key, maybe_jit):
    sigma = maybe_jit(lambda w, k: S.spectral_norm(w, key=k))(matrix, key)
    ref = np.linalg.norm(np.asarray(matrix, np.float64), 2)
    np.testing.assert_allclose(sigma, ref, rtol=1e-3)


def test_power_iteration_vector_and_gradient(matrix):
    u_ref, s_ref, vt_ref = np.linalg.svd(np.asarray(matrix, np.float64))
    sigma, v = S.power_iteration(matrix, jnp.ones(4), 30)
    assert v.shape == (4,)
    np.testing.assert_allclose(sigma, s_ref[0], rtol=1e-4)
    np.testing.assert_allclose(np.abs(np.dot(v, vt_ref[0])), 1.0, atol=1e-4)
    grad = jax.grad(lambda w: S.power_iteration(w, jnp.ones(4), 30)[0])(matrix)
    np.testing.assert_allclose(grad, np.outer(u_ref[:, 0], vt_ref[0]), atol=1e-3)
    # warm start with one iteration keeps the converged estimate
    sigma1, _ = S.power_iteration(matrix, v, 1)
    np.testing.assert_allclose(sigma1, s_ref[0], rtol=1e-4)
    with pytest.raises(ValueError, match=r"v must have shape"):
        S.power_iteration(matrix, jnp.ones(6), 1)
    with pytest.raises(ValueError, match="ndim >= 2"):
        S.power_iteration(jnp.ones(4), jnp.ones(4), 1)


def test_spectral_penalty(matrix, key):
    maybe_jit = jax.jit  # the eager path is exercised by check_grads below
    tree = {"a": matrix, "c": matrix[:3].T * 2.0, "b": jnp.ones(5)}
    ref = sum(np.linalg.norm(np.asarray(tree[k], np.float64), 2) ** 2 for k in ("a", "c"))
    np.testing.assert_allclose(maybe_jit(S.spectral_penalty)(tree), ref, rtol=1e-3)
    with_key = maybe_jit(lambda t, k: S.spectral_penalty(t, key=k))(tree, key)
    np.testing.assert_allclose(with_key, ref, rtol=1e-3)
    only_a = S.spectral_penalty(tree, {"a": True, "b": True, "c": False})
    np.testing.assert_allclose(only_a, np.linalg.norm(np.asarray(matrix), 2) ** 2, rtol=1e-3)
    check_grads(
        jax.jit(lambda w: S.spectral_penalty({"w": w})), (matrix,), order=1, modes=["rev"], eps=1e-2
    )


# ----------------------------------------------------------------------------- input gradients


def test_jacobian_penalty_linear_and_elementwise(key, maybe_jit):
    a = jax.random.normal(key, (3, 4))
    out = maybe_jit(lambda x: A.jacobian_penalty(lambda v: a @ v, x))(jnp.ones((6, 4)))
    np.testing.assert_allclose(out, np.sum(np.asarray(a) ** 2), rtol=1e-5)
    tall = a.T  # d_out > d_in: forward mode
    out = A.jacobian_penalty(lambda v: tall @ v, jnp.ones((2, 3)))
    np.testing.assert_allclose(out, np.sum(np.asarray(a) ** 2), rtol=1e-5)
    x = jnp.array([[1.0, 2.0], [0.0, -1.0]])
    # J = diag(2x) => ||J||_F^2 = 4 sum x^2, batch mean (20 + 4) / 2
    np.testing.assert_allclose(A.jacobian_penalty(lambda v: v**2, x), 12.0, rtol=1e-6)
    with pytest.raises(ValueError, match=r"shape \(B, features"):
        A.jacobian_penalty(lambda v: v, jnp.ones(3))


def test_gradient_penalty_linear_critic(key, maybe_jit):
    a = jnp.array([1.0, 2.0, 2.0])  # ||a|| = 3
    real = jax.random.normal(key, (5, 3))
    fake = jnp.zeros((5, 3))
    gp = maybe_jit(lambda r, f, k: A.gradient_penalty(lambda x: a @ x, r, f, key=k))
    np.testing.assert_allclose(gp(real, fake, key), 4.0, rtol=1e-6)


def test_gradient_penalty_quadratic_critic_reproduces_draw(key, maybe_jit):
    kr, kf, kt = jax.random.split(key, 3)
    real = jax.random.normal(kr, (4, 2, 3))
    fake = jax.random.normal(kf, (4, 2, 3))
    critic = lambda x: 0.5 * jnp.sum(x**2)  # grad = x
    gp = maybe_jit(lambda r, f, k: A.gradient_penalty(critic, r, f, key=k))(real, fake, kt)
    t = np.asarray(jax.random.uniform(kt, (4, 1, 1), dtype=jnp.float32), np.float64)
    x_hat = t * np.asarray(real, np.float64) + (1 - t) * np.asarray(fake, np.float64)
    norms = np.sqrt(np.sum(x_hat**2, axis=(1, 2)))
    np.testing.assert_allclose(gp, np.mean((norms - 1) ** 2), rtol=1e-5)


def test_r1_penalty_quadratic_critic(key, maybe_jit):
    real = jax.random.normal(key, (6, 3))
    out = maybe_jit(lambda r: A.r1_penalty(lambda x: 0.5 * jnp.sum(x**2), r))(real)
    np.testing.assert_allclose(out, np.mean(np.sum(np.asarray(real) ** 2, 1)), rtol=1e-5)


def test_critic_penalties_bad_inputs(key):
    critic = lambda x: jnp.sum(x)
    with pytest.raises(ValueError, match="same shape"):
        A.gradient_penalty(critic, jnp.ones((3, 2)), jnp.ones((4, 2)), key=key)
    with pytest.raises(ValueError, match=r"shape \(B, features"):
        A.r1_penalty(critic, jnp.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        A.r1_penalty(critic, jnp.array([[1.0, jnp.nan]]))
    with pytest.raises(ValueError, match="to a scalar"):
        A.r1_penalty(lambda x: x, jnp.ones((3, 2)))


def test_gradient_penalty_param_grad_finite_at_zero_gradient(key):
    # A critic with zero input-gradient must not produce NaN parameter gradients.
    def gp(scale):
        return A.gradient_penalty(
            lambda x: scale * jnp.sum(x), jnp.ones((2, 2)), jnp.zeros((2, 2)), key=key
        )

    assert np.isfinite(jax.grad(gp)(0.0))


# ----------------------------------------------------------------------------- attention


def test_attention_entropy(maybe_jit):
    uniform = jnp.full((2, 3, 5), 0.2)
    np.testing.assert_allclose(maybe_jit(A.attention_entropy)(uniform), np.log(5), rtol=1e-6)
    mixed = jnp.array([[1.0, 0.0], [0.5, 0.5]])  # entropies 0 and log 2
    np.testing.assert_allclose(A.attention_entropy(mixed), np.log(2) / 2, rtol=1e-6)
    np.testing.assert_allclose(A.attention_entropy(mixed.T, axis=0), np.log(2) / 2, rtol=1e-6)
    assert np.all(np.isfinite(jax.grad(A.attention_entropy)(mixed)))
    with pytest.raises(ValueError, match="non-negative"):
        A.attention_entropy(jnp.array([[-0.5, 1.5]]))


def test_jacobian_penalty_sigmoid_layer_closed_form(key):
    # Contractive AE (Rifai et al. 2011): for h = sigmoid(x W + b),
    # ‖∂h/∂x‖_F² = Σ_j (h_j (1 − h_j))² Σ_i W_ij², averaged over the batch.
    kw, kb, kx = jax.random.split(key, 3)
    w = jax.random.normal(kw, (7, 4))
    b = jax.random.normal(kb, (4,))
    x = jax.random.normal(kx, (5, 7))
    h = jax.nn.sigmoid(x @ w + b)
    closed = np.mean(np.sum(np.square(h * (1 - h)) * np.sum(np.square(w), axis=0), axis=1))
    got = A.jacobian_penalty(lambda v: jax.nn.sigmoid(v @ w + b), x)
    np.testing.assert_allclose(got, closed, rtol=1e-5)


def test_diagonal_fisher_softmax_regression_by_hand():
    # log p(y|x) = log softmax(W x + b)_y: ∂/∂W = (e_y − p) xᵀ, ∂/∂b = e_y − p, so the
    # empirical diagonal Fisher is the mean over examples of their squares.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 3)).astype(np.float32)
    y = rng.integers(0, 4, size=7)
    params = {"w": rng.normal(size=(4, 3)).astype(np.float32), "b": np.zeros(4, np.float32)}

    def log_lik(p, xi, yi):
        return jax.nn.log_softmax(p["w"] @ xi + p["b"])[yi]

    fisher = P.diagonal_fisher(log_lik, params, jnp.asarray(x), jnp.asarray(y))
    logits = x @ params["w"].T
    prob = np.exp(logits - logits.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    resid = np.eye(4)[y] - prob  # (N, K)
    want_w = np.mean(np.square(resid[:, :, None] * x[:, None, :]), axis=0)
    np.testing.assert_allclose(np.asarray(fisher["w"]), want_w, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(fisher["b"]), np.mean(resid**2, 0), rtol=1e-5)
