"""Tests for jreg.regularizers.transforms: closed forms and exact agreement with optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jreg.regularizers import spectral as S
from jreg.regularizers import transforms as T


# optax's Adam bias correction is not written for strict promotion (conftest turns it on).
def _standard_promotion():
    return jax.numpy_dtype_promotion("standard")


def _params(key):
    kw, kb = jax.random.split(key)
    return {"w": jax.random.normal(kw, (3, 2)), "b": jax.random.normal(kb, (2,))}


def _run(tx, params, grad_fn, steps, maybe_jit):
    """Apply ``tx`` for ``steps`` steps; returns the list of params after each step."""
    state = tx.init(params)

    def step(params, state):
        updates, state = tx.update(grad_fn(params), state, params)
        return optax.apply_updates(params, updates), state

    step = maybe_jit(step)
    history = []
    for _ in range(steps):
        params, state = step(params, state)
        history.append(params)
    return history


# ------------------------------------------------------------------------ weight decay


def test_default_decay_mask():
    params = {
        "w": jnp.ones((3, 2)),
        "b": jnp.ones((2,)),
        "s": jnp.ones(()),
        "k": jnp.ones((1, 2, 3)),
    }
    assert T.default_decay_mask(params) == {"w": True, "b": False, "s": False, "k": True}


def test_adamw_matches_optax(key, maybe_jit):
    kp, kx, ky = jax.random.split(key, 3)
    params = _params(kp)
    x = jax.random.normal(kx, (4, 3))
    y = jax.random.normal(ky, (4, 2))

    def grad_fn(p):
        return jax.grad(lambda p: jnp.mean((x @ p["w"] + p["b"] - y) ** 2))(p)

    lr, wd = 0.05, 0.3
    reference = optax.adamw(lr, weight_decay=wd, mask=T.default_decay_mask)
    chained = optax.chain(
        optax.scale_by_adam(), T.decoupled_weight_decay(wd), optax.scale_by_learning_rate(lr)
    )
    with _standard_promotion():  # optax.scale_by_adam mixes float and int32 internally
        ref = _run(reference, params, grad_fn, 20, maybe_jit)
        for tx in (chained, T.adamw(lr, wd)):
            got = _run(tx, params, grad_fn, 20, maybe_jit)
            for a, b in zip(ref, got, strict=True):
                for k in ("w", "b"):
                    np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-6)


@pytest.mark.parametrize("n", [1, 7])
def test_decay_closed_form_is_scaled_by_learning_rate(key, maybe_jit, n):
    params = _params(key)
    lr, wd = 0.1, 0.5
    tx = optax.chain(T.decoupled_weight_decay(wd), optax.scale(-lr))
    out = _run(tx, params, lambda p: jax.tree.map(jnp.zeros_like, p), n, maybe_jit)[-1]
    np.testing.assert_allclose(out["w"], (1 - lr * wd) ** n * params["w"], rtol=1e-6)
    np.testing.assert_array_equal(out["b"], params["b"])


def test_decay_after_learning_rate_is_rate_independent(key, maybe_jit):
    """The docstring recipe: decay placed after the learning-rate scaling."""
    params = _params(key)
    wd, n = 0.2, 5
    for lr in (0.01, 1.0):
        tx = optax.chain(
            optax.scale_by_adam(),
            optax.scale_by_learning_rate(lr, flip_sign=False),
            T.decoupled_weight_decay(wd),
            optax.scale(-1.0),
        )
        with _standard_promotion():
            out = _run(tx, params, lambda p: jax.tree.map(jnp.zeros_like, p), n, maybe_jit)[-1]
        np.testing.assert_allclose(out["w"], (1 - wd) ** n * params["w"], rtol=1e-6)


def test_decay_masks_and_schedule(key, maybe_jit):
    params = _params(key)
    zeros = lambda p: jax.tree.map(jnp.zeros_like, p)  # noqa: E731
    # mask=None decays everything, a pytree mask picks leaves.
    out = _run(
        optax.chain(T.decoupled_weight_decay(0.5, mask=None), optax.scale(-1.0)),
        params,
        zeros,
        1,
        maybe_jit,
    )[-1]
    np.testing.assert_allclose(out["b"], 0.5 * params["b"], rtol=1e-6)
    tx = optax.chain(T.decoupled_weight_decay(0.5, mask={"w": False, "b": True}), optax.scale(-1.0))
    out = _run(tx, params, zeros, 1, maybe_jit)[-1]
    np.testing.assert_array_equal(out["w"], params["w"])
    np.testing.assert_allclose(out["b"], 0.5 * params["b"], rtol=1e-6)
    # A schedule is evaluated at the step count 0, 1, 2.
    sched = lambda c: 0.1 * (c.astype(jnp.float32) + 1)  # noqa: E731
    tx = optax.chain(T.decoupled_weight_decay(sched), optax.scale(-1.0))
    out = _run(tx, params, zeros, 3, maybe_jit)[-1]
    np.testing.assert_allclose(out["w"], 0.9 * 0.8 * 0.7 * params["w"], rtol=1e-6)


def test_decay_traced_rate_in_vmap(key):
    params = _params(key)

    def one_step(rate):
        tx = T.decoupled_weight_decay(rate)
        updates, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
        return updates["w"]

    rates = jnp.array([0.0, 0.5])
    out = jax.vmap(one_step)(rates)
    np.testing.assert_allclose(out[1], 0.5 * params["w"], rtol=1e-6)
    np.testing.assert_array_equal(out[0], jnp.zeros_like(params["w"]))


def test_sgdw(key, maybe_jit):
    params = _params(key)

    def grad_fn(p):
        return jax.tree.map(lambda x: jnp.sin(x) + 0.1, p)

    ref = optax.chain(optax.add_decayed_weights(0.3, T.default_decay_mask), optax.sgd(0.1))
    a = _run(ref, params, grad_fn, 4, maybe_jit)[-1]
    b = _run(T.sgdw(0.1, 0.3), params, grad_fn, 4, maybe_jit)[-1]
    np.testing.assert_allclose(a["w"], b["w"], atol=1e-6)
    # With momentum the decay is not accumulated in the buffer (decoupled, SGDW).
    lr, wd, beta = 0.1, 0.3, 0.9
    got = _run(T.sgdw(lr, wd, momentum=beta), params, grad_fn, 3, maybe_jit)
    w, m = np.asarray(params["w"]), np.zeros((3, 2), np.float32)
    for p in got:
        m = beta * m + (np.sin(w) + 0.1)
        w = w - lr * (m + wd * w)
        np.testing.assert_allclose(p["w"], w, atol=1e-5)


# ----------------------------------------------------------------------- proximal L1


def _lasso_grad(z):
    return lambda w: w - z  # gradient of 0.5 * (w - z) ** 2


def _closed_form(z, lam):
    return np.sign(z) * np.maximum(np.abs(z) - lam, 0.0)


def test_prox_lr1_one_step_is_exact(key, maybe_jit):
    kz, kw = jax.random.split(key)
    z = jax.random.normal(kz, (20,))
    lam = 0.7
    expected = _closed_form(np.asarray(z), lam)
    tx = optax.chain(optax.sgd(1.0), T.proximal_l1(lam, 1.0))
    out = _run(tx, jnp.zeros(20), _lasso_grad(z), 1, maybe_jit)[-1]
    np.testing.assert_array_equal(out, expected)
    n_zero = int(np.sum(np.abs(np.asarray(z)) <= lam))
    assert n_zero >= 5 and int(np.sum(out == 0)) == n_zero
    # From any start: one step lands on the solution (exact zeros, others to rounding).
    out = _run(tx, jax.random.normal(kw, (20,)), _lasso_grad(z), 1, maybe_jit)[-1]
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert int(np.sum(out == 0)) == n_zero


def test_prox_small_lr_converges_with_exact_zeros_but_subgradient_does_not(key, maybe_jit):
    kz, kw = jax.random.split(key)
    z = jax.random.normal(kz, (20,))
    w0 = jax.random.normal(kw, (20,))
    lam, lr, steps = 0.7, 0.1, 150
    expected = _closed_form(np.asarray(z), lam)
    n_zero = int(np.sum(np.abs(np.asarray(z)) <= lam))

    prox = optax.chain(optax.sgd(lr), T.proximal_l1(lam, lr))
    out = _run(prox, w0, _lasso_grad(z), steps, maybe_jit)[-1]
    np.testing.assert_allclose(out, expected, atol=1e-5)
    prox_zeros = int(np.sum(out == 0))
    assert prox_zeros == n_zero

    loss = lambda w: jnp.sum(0.5 * (w - z) ** 2 + lam * jnp.abs(w))  # noqa: E731
    sub = _run(optax.sgd(lr), w0, jax.grad(loss), steps, maybe_jit)[-1]
    sub_zeros = int(np.sum(sub == 0))
    assert sub_zeros <= prox_zeros // 3


def test_prox_schedule_mask_and_state(maybe_jit):
    sched = lambda c: 1.0 / (c.astype(jnp.float32) + 1)  # noqa: E731
    tx = T.proximal_l1(0.5, sched, mask={"a": True, "b": False})
    params = {"a": jnp.array([2.0, -0.2]), "b": jnp.array([2.0, -0.2])}
    zero = jax.tree.map(jnp.zeros_like, params)
    out = _run(tx, params, lambda p: zero, 2, maybe_jit)
    # thresholds 0.5 then 0.25
    np.testing.assert_allclose(out[0]["a"], [1.5, 0.0])
    np.testing.assert_allclose(out[1]["a"], [1.25, 0.0])
    np.testing.assert_array_equal(out[1]["b"], params["b"])
    state = tx.init(params)
    _, state = maybe_jit(tx.update)(zero, state, params)
    assert int(state.inner_state.count) == 1
    assert isinstance(T.proximal_l1(0.1, 0.1).init(params), T.ProximalL1State)


# ------------------------------------------------------------------- spectral norm


def _spectral_params(key):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "w1": jax.random.normal(k1, (8, 5)),
        "w2": jax.random.normal(k2, (5, 3)),
        "b": jax.random.normal(k3, (3,)),
    }


@pytest.mark.parametrize("random_start, exact", [(False, False), (True, False), (False, True)])
def test_spectral_constraint_bounds_every_step(key, maybe_jit, random_start, exact):
    kp, ka, ks = jax.random.split(key, 3)
    params = _spectral_params(kp)
    pushes = jax.tree.map(lambda p: jax.random.normal(ka, p.shape), params)
    # Gradient of -sum(W * A) - 0.5 * ||W||^2: each sgd step grows the norm and rotates W.
    grad_fn = lambda p: jax.tree.map(lambda w, a: -(w + a), p, pushes)  # noqa: E731
    kwargs = {"key": ks} if random_start else {}
    kwargs["exact"] = exact
    tx = optax.chain(optax.sgd(0.5), S.spectral_norm_constraint(1.0, **kwargs))
    history = _run(tx, params, grad_fn, 10, maybe_jit)
    b = np.asarray(params["b"])
    for p in history:
        for k in ("w1", "w2"):
            assert np.linalg.norm(np.asarray(p[k]), 2) <= 1.0 * (1 + 1e-3)
        b = b + 0.5 * (b + np.asarray(pushes["b"]))  # plain sgd: bias untouched by constraint
        np.testing.assert_allclose(p["b"], b, rtol=1e-6)
    # The projection is active (the norm is at the bound, not far below).
    assert np.linalg.norm(np.asarray(history[-1]["w1"]), 2) > 0.99


def test_spectral_constraint_leaves_small_matrix_unchanged(key, maybe_jit):
    params = jax.tree.map(lambda p: 0.05 * p, _spectral_params(key))
    assert np.linalg.norm(np.asarray(params["w1"]), 2) < 1.0
    tx = S.spectral_norm_constraint(1.0)
    zero = jax.tree.map(jnp.zeros_like, params)
    out = _run(tx, params, lambda p: zero, 2, maybe_jit)[-1]
    for k in params:
        np.testing.assert_array_equal(out[k], params[k])


def test_spectral_state_and_mask(key, maybe_jit):
    params = _spectral_params(key)
    state = S.spectral_norm_constraint(1.0).init(params)
    v = state.inner_state.v
    assert v["w1"].shape == (5,) and v["w2"].shape == (3,)
    assert isinstance(v["b"], optax.MaskedNode)
    top = np.linalg.svd(np.asarray(params["w1"]))[2][0]
    assert abs(abs(float(np.dot(np.asarray(v["w1"]), top))) - 1.0) < 1e-4
    # An explicit mask may bound a vector's L2 norm and skip a matrix.
    tx = S.spectral_norm_constraint(1.0, mask={"w1": False, "w2": True, "b": True})
    out = _run(tx, params, lambda p: jax.tree.map(jnp.zeros_like, p), 1, maybe_jit)[-1]
    np.testing.assert_array_equal(out["w1"], params["w1"])
    np.testing.assert_allclose(np.linalg.norm(np.asarray(out["b"])), 1.0, rtol=1e-5)
    assert np.linalg.norm(np.asarray(out["w2"]), 2) <= 1.0 * (1 + 1e-3)


def test_spectral_crossing_needs_exact(maybe_jit):
    """Documented limitation: one step that makes another direction the largest."""
    params = {"w": jnp.diag(jnp.array([2.0, 1.0, 0.5]))}
    push = {"w": jnp.diag(jnp.array([0.0, 2.0, 0.0]))}  # sgd(1) step -> diag(2, 3, 0.5)
    grad_fn = lambda p: jax.tree.map(jnp.negative, push)  # noqa: E731
    for exact in (False, True):
        tx = optax.chain(optax.sgd(1.0), S.spectral_norm_constraint(2.5, exact=exact))
        out = _run(tx, params, grad_fn, 1, maybe_jit)[-1]
        sigma = np.linalg.norm(np.asarray(out["w"]), 2)
        if exact:
            np.testing.assert_allclose(sigma, 2.5, rtol=1e-5)
        else:  # the warm start has ~1e-30 weight on the new top direction: stalls at 2
            assert sigma > 2.9


# ---------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "tx",
    [
        lambda: T.proximal_l1(0.1, 0.1),
        lambda: T.proximal_l1(0.1, 0.1, mask={"w": True, "b": False}),
        lambda: S.spectral_norm_constraint(1.0),
        lambda: T.decoupled_weight_decay(0.1),
    ],
)
def test_missing_params_raises(key, tx):
    tx = tx()
    params = _params(key)
    with pytest.raises(ValueError, match="params"):
        tx.update(params, tx.init(params))


@pytest.mark.parametrize(
    "make",
    [
        lambda: T.decoupled_weight_decay(-0.1),
        lambda: T.adamw(0.1, -0.1),
        lambda: T.adamw(-0.1, 0.1),
        lambda: T.sgdw(0.1, -1.0),
        lambda: T.sgdw(0.1, 0.1, momentum=1.5),
        lambda: T.proximal_l1(-0.1, 0.1),
        lambda: T.proximal_l1(0.1, -0.1),
        lambda: T.proximal_l1(float("nan"), 0.1),
        lambda: S.spectral_norm_constraint(0.0),
        lambda: S.spectral_norm_constraint(-1.0),
        lambda: S.spectral_norm_constraint(1.0, num_iters=0),
        lambda: S.spectral_norm_constraint(1.0, num_iters=10, max_iters=5),
        lambda: S.spectral_norm_constraint(1.0, tol=-1.0),
    ],
)
def test_invalid_hyperparameters_raise(make):
    with pytest.raises(ValueError):
        make()
