"""models.dropout / mlp_apply with ``shared_mask``: one mask per call shared by the batch."""

import jax
import jax.numpy as jnp
import numpy as np

from jreg.nn import models


def test_shared_mask_is_one_mask_for_every_row(key):
    x = jnp.ones((16, 200))
    shared = models.dropout(x, 0.4, key=key, train=True, shared_mask=True)
    per_example = models.dropout(x, 0.4, key=key, train=True)
    assert shared.shape == x.shape
    np.testing.assert_array_equal(shared, jnp.broadcast_to(shared[0], x.shape))
    assert not np.all(per_example == per_example[0])  # the default: one mask per entry
    # Kept units are scaled by 1/(1-p); the mask is unbiased over keys.
    np.testing.assert_allclose(np.unique(np.asarray(shared)), [0.0, 1 / 0.6], rtol=1e-6)
    keys = jax.random.split(key, 2000)
    mean = jax.vmap(lambda k: models.dropout(x[:1], 0.4, key=k, train=True, shared_mask=True))(
        keys
    ).mean(0)
    np.testing.assert_allclose(mean, 1.0, atol=0.12)
    # For a single example (F,) both modes draw the same mask.
    np.testing.assert_array_equal(
        models.dropout(x[0], 0.4, key=key, train=True, shared_mask=True),
        models.dropout(x[0], 0.4, key=key, train=True),
    )


def test_shared_mask_mlp_equals_one_key_vmapped_over_examples(key):
    k_init, k_x, k_drop = jax.random.split(key, 3)
    params = models.mlp_init(k_init, (3, 32, 32, 2))
    x = jax.random.normal(k_x, (50, 3))
    kw = {"dropout_rate": 0.3, "key": k_drop, "train": True}
    shared = models.mlp_apply(params, x, shared_mask=True, **kw)
    one_key = jax.vmap(lambda xi: models.mlp_apply(params, xi, **kw))(x)
    np.testing.assert_allclose(shared, one_key, rtol=1e-6, atol=1e-6)
    per_example = models.mlp_apply(params, x, **kw)
    assert not np.allclose(per_example, shared)
    # At evaluation the option does nothing.
    np.testing.assert_array_equal(
        models.mlp_apply(params, x, dropout_rate=0.3, shared_mask=True),
        models.mlp_apply(params, x),
    )


def test_traced_shared_mask_selects_between_the_two(key):
    x = jnp.ones((8, 40))
    f = jax.jit(lambda flag: models.dropout(x, 0.5, key=key, train=True, shared_mask=flag))
    for flag in (False, True):
        np.testing.assert_array_equal(
            f(jnp.float32(flag)), models.dropout(x, 0.5, key=key, train=True, shared_mask=flag)
        )
