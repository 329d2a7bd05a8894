"""The small transformer: shapes, attention rows, masking, QK-layernorm, entropy of uniform."""

import jax
import jax.numpy as jnp
import numpy as np

from jreg import penalties, transformer

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
    np.testing.assert_allclose(penalties.attention_entropy(uniform), np.log(L), rtol=1e-6)
    params, tokens = _setup()
    for blk in params["blocks"]:
        blk["qkv"] = blk["qkv"].at[:, : 2 * 64].set(0.0)  # q = k = 0: uniform attention
    _, aux = transformer.apply(params, tokens)
    np.testing.assert_allclose(penalties.attention_entropy(aux["attention"]), np.log(L), rtol=1e-5)


def test_model_reads_qk_norm_hparam():
    net = transformer.model(vocab_size=V, num_outputs=K, length=L)
    params, state = net.init(jax.random.key(0), {})
    _, tokens = _setup()
    a = net.apply(params, state, tokens, key=None, train=False, hp={"qk_norm": 0.0})[0]
    b = net.apply(params, state, tokens, key=None, train=False, hp={"qk_norm": 1.0})[0]
    assert a.shape == b.shape == (3, L, K) and not np.allclose(a, b)
