"""The small transformer: shapes, attention rows, masking, QK-layernorm, entropy of uniform."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jreg.nn import transformer
from jreg.regularizers import activity

V, K, L = 12, 7, 8


def _setup(n=3):
    params = transformer.init(jax.random.key(0), vocab_size=V, num_outputs=K, length=L)
    tokens = jax.random.randint(jax.random.key(1), (n, L), 0, V)
    return params, tokens


def test_output_shapes_and_rows_sum_to_one():
    params, tokens = _setup()
    out, aux = transformer.apply(params, tokens)
    assert out.shape == (3, L, K)
    assert aux["attention"].shape == (2, 3, 4, L, L)
    assert aux["hidden"].shape == (3, L, 64)
    np.testing.assert_allclose(aux["attention"].sum(-1), 1.0, atol=1e-5)


def test_causal_mask_zeroes_future_and_blocks_information():
    params, tokens = _setup()
    out, aux = transformer.apply(params, tokens, causal=True)
    upper = np.triu(np.ones((L, L), bool), 1)
    assert np.all(np.asarray(aux["attention"])[..., upper] == 0)
    changed = tokens.at[:, -1].set((tokens[:, -1] + 1) % V)
    out2, _ = transformer.apply(params, changed, causal=True)
    np.testing.assert_allclose(out[:, :-1], out2[:, :-1], atol=1e-5)  # past unaffected
    out3, _ = transformer.apply(params, changed, causal=False)
    assert not np.allclose(out[:, 0], out3[:, 0], atol=1e-5)  # no mask: all positions see it


def test_qk_norm_bounds_logits_when_weights_grow():
    params, tokens = _setup()
    big = jax.tree.map(lambda x: x, params)
    for blk in big["blocks"]:
        blk["qkv"] = 30.0 * blk["qkv"]
    _, plain = transformer.apply(big, tokens)
    _, normed = transformer.apply(big, tokens, qk_norm=1.0)
    # with unit-scale QK-layernorm, |q·k|/sqrt(dh) <= ‖q‖‖k‖/sqrt(dh) = sqrt(dh) = 4
    assert float(normed["max_logit"]) <= 4.0 + 1e-4 < float(plain["max_logit"])


def test_entropy_of_uniform_attention_is_log_length():
    uniform = jnp.full((2, 4, L, L), 1.0 / L)
    np.testing.assert_allclose(activity.attention_entropy(uniform), np.log(L), rtol=1e-6)
    params, tokens = _setup()
    for blk in params["blocks"]:
        blk["qkv"] = blk["qkv"].at[:, : 2 * 64].set(0.0)  # q = k = 0: uniform attention
    _, aux = transformer.apply(params, tokens)
    np.testing.assert_allclose(activity.attention_entropy(aux["attention"]), np.log(L), rtol=1e-5)


def test_model_reads_qk_norm_hparam():
    net = transformer.model(vocab_size=V, num_outputs=K, length=L)
    params, state = net.init(jax.random.key(0), {})
    _, tokens = _setup()
    a = net.apply(params, state, tokens, key=None, train=False, hp={"qk_norm": 0.0})[0]
    b = net.apply(params, state, tokens, key=None, train=False, hp={"qk_norm": 1.0})[0]
    assert a.shape == b.shape == (3, L, K) and not np.allclose(a, b)


def test_sigma_reparam_matches_svd_and_has_spectral_norm_gamma():
    w = jax.random.normal(jax.random.key(2), (6, 4))
    v = jnp.ones(4) / 2.0
    step = jax.jit(lambda v: transformer.sigma_reparam(w, jnp.asarray(2.5), v)[2])
    for _ in range(200):  # one power-iteration step per call, as per training step
        v = step(v)
    w_hat, sigma, v2 = transformer.sigma_reparam(w, jnp.asarray(2.5), v, update=False)
    np.testing.assert_allclose(sigma, np.linalg.svd(np.asarray(w))[1][0], rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(w_hat), 2), 2.5, rtol=1e-5)
    np.testing.assert_array_equal(v2, v)  # evaluation does not move the vector
    # σ is differentiated through W only: dσ/dW = u vᵀ at the converged vectors
    grad = jax.grad(lambda w: transformer.sigma_reparam(w, 1.0, v, update=False)[1])(w)
    u = np.asarray(w @ v) / np.linalg.norm(np.asarray(w @ v))
    np.testing.assert_allclose(grad, np.outer(u, v), atol=1e-5)


def test_sigma_reparam_model_state_and_switch():
    net = transformer.model(vocab_size=V, num_outputs=K, length=L)
    params, state = net.init(jax.random.key(0), {"sigma_reparam": 0.0})
    _, tokens = _setup()
    assert state["blocks"][0]["qkv"].shape == (3 * 64,)
    off = net.apply(params, state, tokens, key=None, train=True, hp={"sigma_reparam": 0.0})
    plain = transformer.apply(params, tokens)[0]
    np.testing.assert_allclose(off[0], plain, atol=1e-6)  # switched off: the plain model
    on = net.apply(params, state, tokens, key=None, train=True, hp={"sigma_reparam": 1.0})
    assert not np.allclose(on[0], plain, atol=1e-3)
    moved = on[1]["blocks"][0]["qkv"]
    assert not np.allclose(moved, state["blocks"][0]["qkv"])  # one step in training
    np.testing.assert_allclose(np.linalg.norm(moved), 1.0, rtol=1e-5)
    ev = net.apply(params, state, tokens, key=None, train=False, hp={"sigma_reparam": 1.0})
    np.testing.assert_array_equal(ev[1]["blocks"][0]["qkv"], state["blocks"][0]["qkv"])
    with pytest.raises(ValueError, match="state"):
        transformer.apply(params, tokens, sigma_reparam=1.0)
