"""jreg.widths: bucketing against brute force, labels, and the padded problem."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jreg import models, widths


def _brute_force(ws, cost, overhead, m, d):
    """Cheapest split of sorted ``ws`` into contiguous buckets, by enumeration."""
    best = math.inf
    for cuts in itertools.product([0, 1], repeat=len(ws) - 1):
        buckets, cur = [], [ws[0]]
        for w, cut in zip(ws[1:], cuts, strict=True):
            if cut:
                buckets.append(cur)
                cur = []
            cur.append(w)
        buckets.append(cur)
        c = sum(math.ceil(len(b) * m / d) * cost(b[-1]) + overhead for b in buckets)
        best = min(best, c)
    return best


@pytest.mark.parametrize(
    "m, d, overhead", [(1, 1, 0.0), (1, 1, 500.0), (3, 2, 200.0), (1, 4, 50.0), (6, 8, 0.0)]
)
def test_bucket_widths_is_optimal(m, d, overhead):
    ws = [2, 3, 5, 8, 13, 21, 34, 55]
    cost = lambda w: w * w + 40 * w
    got = widths.bucket_widths(ws, cost=cost, overhead=overhead, configs_per_width=m, num_devices=d)
    assert sorted(sum(got, [])) == ws and all(b == sorted(b) for b in got)
    got_cost = sum(math.ceil(len(b) * m / d) * cost(b[-1]) + overhead for b in got)
    assert got_cost == pytest.approx(_brute_force(ws, cost, overhead, m, d))


def test_bucket_widths_uses_idle_devices():
    cost = lambda w: w * w
    # One device: padding 10 up to 100 costs more than a second bucket.
    assert widths.bucket_widths([10, 100], cost=cost) == [[10], [100]]
    # Two devices run both models at once: one bucket costs cost(100) only.
    assert widths.bucket_widths([10, 100], cost=cost, num_devices=2, overhead=1.0) == [[10, 100]]
    with pytest.raises(ValueError, match="positive"):
        widths.bucket_widths([0, 3], cost=cost)


def test_geometric_widths_distinct_and_ends():
    w = widths.geometric_widths(2, 300, 20)
    assert w[0] == 2 and w[-1] == 300 and len(w) == 20 and np.all(np.diff(w) >= 1)
    assert widths.hidden_params(62, 40, 10) == 40 * 62 + 62 + 62 * 62 + 62 + 62 * 10 + 10


def test_flip_labels_exact_fraction_and_pack_roundtrip():
    y = np.arange(1000) % 10
    y_noisy, flipped = widths.flip_labels(jax.random.key(0), y, 10, 0.15)
    assert flipped.sum() == 150
    assert np.all(y_noisy[flipped] != y[flipped]) and np.all(y_noisy[~flipped] == y[~flipped])
    packed = widths.pack_labels(y, y_noisy, 10)
    np.testing.assert_array_equal(widths.unpack_labels(packed, 0.0, 10), y)
    np.testing.assert_array_equal(widths.unpack_labels(packed, 1.0, 10), y_noisy)


def test_padded_problem_trains_exactly_the_small_network():
    """Loss and one SGD step of the padded width-5 model equal the unpadded width-5 MLP."""
    in_dim, k, h, big = 6, 3, 5, 12
    prob = widths.padded_mlp_problem(
        in_dim=in_dim, num_classes=k, max_width=big, optimizer=lambda hp: optax.sgd(0.1)
    )
    hp = {"width": jnp.float32(h), "noisy": jnp.float32(1.0)}
    params = prob.init(jax.random.key(0), hp)
    # Padded entries start at exactly zero; real ones use the real fan-in h.
    assert float(jnp.abs(params[1]["w"][h:, :]).sum() + jnp.abs(params[1]["w"][:, h:]).sum()) == 0
    small = [
        {"w": params[0]["w"][:, :h], "b": params[0]["b"][:h]},
        {"w": params[1]["w"][:h, :h], "b": params[1]["b"][:h]},
        {"w": params[2]["w"][:h, :], "b": params[2]["b"]},
    ]
    x = jax.random.normal(jax.random.key(1), (16, in_dim))
    y_clean = np.arange(16) % k
    y_noisy = (y_clean + 1) % k
    packed = widths.pack_labels(y_clean, y_noisy, k)

    def small_loss(p):
        logits = models.mlp_apply(p, x, activation="relu")
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(16), y_noisy])

    big_loss = lambda p: prob.loss(p, x, packed, key=jax.random.key(2), hp=hp)
    np.testing.assert_allclose(big_loss(params), small_loss(small), rtol=1e-6)
    g_big, g_small = jax.grad(big_loss)(params), jax.grad(small_loss)(small)
    np.testing.assert_allclose(g_big[1]["w"][:h, :h], g_small[1]["w"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(g_big[0]["w"][:, :h], g_small[0]["w"], rtol=1e-5, atol=1e-7)
    assert float(jnp.abs(g_big[1]["w"][h:, :]).sum() + jnp.abs(g_big[0]["w"][:, h:]).sum()) == 0
    # Evaluation: train error against the noisy labels, test error against clean ones.
    ev = prob.evaluate(params, (x, packed, x, y_clean), hp)
    pred = np.argmax(models.mlp_apply(small, x, activation="relu"), -1)
    assert float(ev["train_error"]) == pytest.approx(np.mean(pred != y_noisy))
    assert float(ev["test_error"]) == pytest.approx(np.mean(pred != y_clean))


@pytest.mark.parametrize("h", [1, 5, 12])
def test_padded_init_does_not_depend_on_the_bucket(h):
    """Width h gets the same initial weights padded to 12 or to 40 (any bucket, any devices)."""
    hp = {"width": jnp.float32(h), "noisy": jnp.float32(0.0)}
    make = lambda big: widths.padded_mlp_problem(
        in_dim=6, num_classes=3, max_width=big, optimizer=lambda hp: optax.sgd(0.1)
    ).init(jax.random.key(7), hp)
    p12, p40 = make(12), make(40)
    np.testing.assert_array_equal(p12[0]["w"][:, :h], p40[0]["w"][:, :h])
    np.testing.assert_array_equal(p12[1]["w"][:h, :h], p40[1]["w"][:h, :h])
    np.testing.assert_array_equal(p12[2]["w"][:h, :], p40[2]["w"][:h, :])
    # Real entries are standard normals scaled by sqrt(2 / fan_in) (He), not all equal.
    assert float(jnp.std(p40[0]["w"][:, :h])) > 0.1
