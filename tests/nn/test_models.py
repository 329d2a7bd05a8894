import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jreg.nn import models


def test_mlp_init_shapes_and_scale(key):
    params = models.mlp_init(key, (400, 300, 3))
    assert [p["w"].shape for p in params] == [(400, 300), (300, 3)]
    assert [p["b"].shape for p in params] == [(300,), (3,)]
    # LeCun normal: var(w) = 1/fan_in.
    np.testing.assert_allclose(np.var(params[0]["w"]), 1 / 400, rtol=0.02)
    assert models.count_params(params) == 400 * 300 + 300 + 300 * 3 + 3


def test_mlp_apply_matches_numpy(key, maybe_jit):
    params = models.mlp_init(key, (3, 5, 4, 2))
    x = jax.random.normal(jax.random.key(1), (7, 3))
    f = maybe_jit(lambda p, x: models.mlp_apply(p, x, activation="tanh"))
    h = np.asarray(x)
    for layer in params[:-1]:
        h = np.tanh(h @ np.asarray(layer["w"]) + np.asarray(layer["b"]))
    ref = h @ np.asarray(params[-1]["w"]) + np.asarray(params[-1]["b"])
    np.testing.assert_allclose(f(params, x), ref, rtol=1e-5, atol=1e-6)


def test_dropout_identity_at_eval_and_unbiased_in_train(key):
    x = jnp.ones((200, 50))
    assert jnp.array_equal(models.dropout(x, 0.4, key=None, train=False), x)
    y = models.dropout(x, 0.4, key=key, train=True)
    vals = np.unique(np.asarray(y))
    np.testing.assert_allclose(vals, [0.0, 1 / 0.6], rtol=1e-6)
    frac = float(jnp.mean(y == 0))
    se = np.sqrt(0.4 * 0.6 / y.size)
    assert abs(frac - 0.4) < 4 * se
    assert abs(float(y.mean()) - 1.0) < 4 * np.sqrt(0.4 / 0.6 / y.size)


def test_dropout_bad_input(key):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        models.dropout(jnp.ones(3), 1.0, key=key, train=True)
    with pytest.raises(ValueError, match="PRNG"):
        models.dropout(jnp.ones(3), 0.5, key=None, train=True)
    params = models.mlp_init(key, (2, 3, 2))
    with pytest.raises(ValueError, match="PRNG"):
        models.mlp_apply(params, jnp.ones((1, 2)), dropout_rate=0.5, train=True)
    with pytest.raises(ValueError, match="activation"):
        models.mlp_apply(params, jnp.ones((1, 2)), activation="sigmoidal")
    with pytest.raises(ValueError, match="features"):
        models.mlp_apply(params, jnp.ones((1, 3)))


def test_drop_path_drops_whole_examples(key):
    x = jnp.ones((1000, 4, 3))
    y = models.drop_path(x, 0.25, key=key, train=True)
    per_example = np.asarray(y).reshape(1000, -1)
    assert np.all(per_example.min(1) == per_example.max(1))  # all-or-nothing per example
    frac = float(np.mean(per_example[:, 0] == 0))
    assert abs(frac - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 1000)
    assert jnp.array_equal(models.drop_path(x, 0.25, key=None, train=False), x)


def test_mc_dropout_predict_is_mean_of_passes(key):
    params = models.mlp_init(key, (2, 16, 3))
    x = jax.random.normal(jax.random.key(2), (5, 2))
    probs, mean = models.mc_dropout_predict(
        params, x, key=jax.random.key(3), num_samples=4, dropout_rate=0.3
    )
    keys = jax.random.split(jax.random.key(3), 4)
    manual = [
        jax.nn.softmax(models.mlp_apply(params, x, dropout_rate=0.3, key=k, train=True))
        for k in keys
    ]
    np.testing.assert_allclose(probs, np.stack(manual), rtol=1e-6)
    np.testing.assert_allclose(mean, np.mean(manual, 0), rtol=1e-6)
    assert not np.allclose(probs[0], probs[1])


def _embed(small, big):
    """Copy the small MLP into the top-left corner of a bigger one."""
    out = []
    for s, b in zip(small, big, strict=True):
        w = b["w"].at[: s["w"].shape[0], : s["w"].shape[1]].set(s["w"])
        out.append({"w": w, "b": b["b"].at[: s["b"].shape[0]].set(s["b"])})
    return out


def test_unit_masks_make_a_padded_mlp_equal_the_small_one(key):
    small = models.mlp_init(key, (4, 3, 5, 2))
    big = _embed(small, models.mlp_init(jax.random.key(9), (4, 7, 9, 2)))
    masks = [jnp.arange(7) < 3, jnp.arange(9) < 5]
    x = jax.random.normal(jax.random.key(1), (6, 4))
    y = jax.random.randint(jax.random.key(2), (6,), 0, 2)

    def loss(p, masks):
        logits = models.mlp_apply(p, x, activation="relu", unit_masks=masks)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))

    np.testing.assert_allclose(
        models.mlp_apply(big, x, activation="relu", unit_masks=masks),
        models.mlp_apply(small, x, activation="relu"),
        rtol=1e-5,
        atol=1e-6,
    )
    g_small = jax.grad(loss)(small, None)
    g_big = jax.grad(loss)(big, masks)
    for gs, gb in zip(g_small, g_big, strict=True):
        i, o = gs["w"].shape
        np.testing.assert_allclose(gb["w"][:i, :o], gs["w"], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(gb["b"][:o], gs["b"], rtol=1e-5, atol=1e-7)
    # Padded hidden units get exactly zero gradient on every weight touching them.
    assert float(jnp.abs(g_big[0]["w"][:, 3:]).sum()) == 0.0
    assert float(jnp.abs(g_big[0]["b"][3:]).sum()) == 0.0
    assert float(jnp.abs(g_big[1]["w"][:, 5:]).sum()) == 0.0
    assert float(jnp.abs(g_big[1]["w"][3:, :]).sum()) == 0.0
    assert float(jnp.abs(g_big[2]["w"][5:, :]).sum()) == 0.0


def test_batch_norm_equals_flax(key):
    x = 3.0 + 2.0 * jax.random.normal(key, (16, 5))
    bn = nn.BatchNorm(momentum=0.9, epsilon=1e-5)
    variables = bn.init(jax.random.key(1), x, use_running_average=False)
    scale = jnp.linspace(0.5, 2.0, 5)
    bias = jnp.linspace(-1.0, 1.0, 5)
    variables = {"params": {"scale": scale, "bias": bias}, "batch_stats": variables["batch_stats"]}
    ref, upd = bn.apply(variables, x, use_running_average=False, mutable=["batch_stats"])
    params = {"scale": scale, "bias": bias}
    y, state = models.batch_norm(x, params=params, momentum=0.9)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(state.mean, upd["batch_stats"]["mean"], rtol=1e-5)
    np.testing.assert_allclose(state.var, upd["batch_stats"]["var"], rtol=1e-5)
    # Eval mode uses the running statistics.
    y_eval, same = models.batch_norm(x, params=params, state=state, train=False)
    ref_eval = bn.apply(
        {"params": params, "batch_stats": upd["batch_stats"]}, x, use_running_average=True
    )
    np.testing.assert_allclose(y_eval, ref_eval, rtol=1e-5, atol=1e-5)
    assert same is state


def test_ghost_batch_norm_normalises_each_ghost(key):
    x = jax.random.normal(key, (12, 3)) * jnp.arange(1.0, 13.0)[:, None]
    y, state = models.ghost_batch_norm(x, ghost_size=4, momentum=0.5)
    for g in range(3):
        part, _ = models.batch_norm(x[4 * g : 4 * g + 4])
        np.testing.assert_allclose(y[4 * g : 4 * g + 4], part, rtol=1e-5, atol=1e-5)
    ghosts = np.asarray(x).reshape(3, 4, 3)
    np.testing.assert_allclose(state.mean, 0.5 * ghosts.mean(1).mean(0), rtol=1e-5)
    np.testing.assert_allclose(state.var, 0.5 + 0.5 * ghosts.var(1).mean(0), rtol=1e-5)
    full, _ = models.ghost_batch_norm(x, ghost_size=12)
    ref, _ = models.batch_norm(x)
    np.testing.assert_allclose(full, ref, rtol=1e-6)
    with pytest.raises(ValueError, match="divide"):
        models.ghost_batch_norm(x, ghost_size=5)


def test_drop_path_unbiased_and_drops_whole_branches(key):
    # E[drop_path(x)] = x over keys, and each example keeps or drops its whole branch.
    x = jax.random.normal(key, (8, 3, 5)) + 2.0
    rate = 0.3
    keys = jax.random.split(jax.random.key(1), 4000)
    out = jax.vmap(lambda k: models.drop_path(x, rate, key=k, train=True))(keys)
    kept = np.asarray(out != 0)  # (K, 8, 3, 5)
    per_example = kept.reshape(kept.shape[0], kept.shape[1], -1)
    assert np.all(per_example.all(-1) | ~per_example.any(-1))  # all or nothing per example
    np.testing.assert_allclose(
        np.asarray(out)[kept], np.broadcast_to(x / 0.7, out.shape)[kept], rtol=1e-6
    )
    # drop frequency and mean match within ~4 standard errors of the key-level statistics
    drop = 1.0 - per_example[..., 0].mean()
    assert abs(drop - rate) < 4 * np.sqrt(rate * (1 - rate) / per_example[..., 0].size)
    mean, sem = np.asarray(out).mean(0), np.asarray(out).std(0) / np.sqrt(len(keys))
    assert np.all(np.abs(mean - np.asarray(x)) < 4.5 * sem)
    np.testing.assert_array_equal(models.drop_path(x, rate, key=None, train=False), x)
