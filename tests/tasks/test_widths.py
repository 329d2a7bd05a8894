"""jreg.tasks.widths: bucketing against brute force, padded MLPs, and Bucketed sweeps."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jreg import tasks
from jreg.core import streams, train
from jreg.nn import models, nets
from jreg.regularizers import losses
from jreg.tasks import widths


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


def _small(params, h):
    """The width-h MLP inside a padded one."""
    return [
        {"w": params[0]["w"][:, :h], "b": params[0]["b"][:h]},
        {"w": params[1]["w"][:h, :h], "b": params[1]["b"][:h]},
        {"w": params[2]["w"][:h, :], "b": params[2]["b"]},
    ]


def test_padded_mlp_is_exactly_the_small_network():
    """Init, loss and gradients of the padded width-5 model equal the unpadded width-5 MLP."""
    in_dim, k, h, big = 6, 3, 5, 12
    model = nets.padded_mlp(in_dim, k, big)
    hp = {"width": jnp.float32(h)}
    params, state = model.init(jax.random.key(0), hp)
    # Padded entries start at exactly zero; real ones use the real fan-in h.
    assert float(jnp.abs(params[1]["w"][h:, :]).sum() + jnp.abs(params[1]["w"][:, h:]).sum()) == 0
    assert float(jnp.abs(params[2]["w"][h:, :]).sum() + jnp.abs(params[0]["w"][:, h:]).sum()) == 0
    np.testing.assert_allclose(jnp.std(params[1]["w"][:h, :h]), np.sqrt(2 / h), rtol=0.5)
    x = jax.random.normal(jax.random.key(1), (16, in_dim))
    y = np.arange(16) % k

    def big_loss(p):
        out, _, _ = model.apply(p, state, x, key=None, train=True, hp=hp)
        return losses.cross_entropy(out, y)

    def small_loss(p):
        logits = models.mlp_apply(p, x, activation="relu")
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(16), y])

    small = _small(params, h)
    np.testing.assert_allclose(big_loss(params), small_loss(small), rtol=1e-6)
    g_big, g_small = jax.grad(big_loss)(params), jax.grad(small_loss)(small)
    for gb, gs in zip(_small(g_big, h), g_small, strict=True):
        np.testing.assert_allclose(gb["w"], gs["w"], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(gb["b"], gs["b"], rtol=1e-5, atol=1e-7)
    # Padded weights get exactly zero gradient, so they stay zero under any optimizer.
    assert float(jnp.abs(g_big[1]["w"][h:, :]).sum() + jnp.abs(g_big[0]["w"][:, h:]).sum()) == 0
    assert float(jnp.abs(g_big[1]["b"][h:]).sum() + jnp.abs(g_big[2]["w"][h:, :]).sum()) == 0


@pytest.mark.parametrize("h", [1, 5, 12])
def test_padded_init_does_not_depend_on_the_bucket(h):
    """Width h gets the same initial weights padded to 12 or to 40 (any bucket, any devices)."""
    hp = {"width": jnp.float32(h)}
    make = lambda big: nets.padded_mlp(6, 3, big).init(jax.random.key(7), hp)[0]
    p12, p40 = make(12), make(40)
    np.testing.assert_array_equal(p12[0]["w"][:, :h], p40[0]["w"][:, :h])
    np.testing.assert_array_equal(p12[1]["w"][:h, :h], p40[1]["w"][:h, :h])
    np.testing.assert_array_equal(p12[2]["w"][:h, :], p40[2]["w"][:h, :])
    # Real entries are standard normals scaled by sqrt(2 / fan_in) (He), not all equal.
    assert float(jnp.std(p40[0]["w"][:, :h])) > 0.1


def test_bucketed_sweep_equals_separate_sweeps_per_width():
    """A Bucketed sweep over widths gives each width's own (unbucketed) sweep history."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 5)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32)
    data = tasks.split_data(x, y, x[:16], y[:16])
    make = lambda big: tasks.supervised(  # noqa: E731
        nets.padded_mlp(5, 2, big),
        optimizer=lambda hp: optax.sgd(hp["learning_rate"], momentum=0.9),
        hparams={"width": float(big), "learning_rate": 0.1},
    )
    family = widths.Bucketed(make, cost=lambda w: w * w, overhead=100.0)
    ws = np.array([2, 3, 9, 10], np.float32)
    assert family.buckets(ws, configs_per_width=4) == [[2, 3], [9, 10]]
    kw = dict(stream=streams.epochs(16), seeds=[0, 1], num_steps=12, eval_every=3, progress=False)
    hp = train.grid(learning_rate=[0.05, 0.2], width=ws)
    res = widths.sweep_buckets(family, data, hparams=hp, **kw)
    assert res.history["test_loss"].shape == (8, 2, 4)
    assert res.state["params"][1]["w"].shape == (8, 2, 10, 10)
    for w in ws:  # one plain sweep per width, padded to exactly that width
        rows = np.flatnonzero(hp["width"] == w)
        alone = train.sweep(make(int(w)), data, hparams={k: v[rows] for k, v in hp.items()}, **kw)
        for name, v in alone.history.items():
            np.testing.assert_allclose(res.history[name][rows], v, rtol=2e-5, atol=1e-6)
        for j, row in enumerate(rows):
            got = _small(jax.tree.map(lambda a: a[row, 0], res.state["params"]), int(w))
            want = _small(jax.tree.map(lambda a: a[j, 0], alone.state["params"]), int(w))
            for g, v in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
                np.testing.assert_allclose(g, v, rtol=2e-5, atol=1e-6)
