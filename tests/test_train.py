import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jreg import losses, models, train

pytestmark = pytest.mark.standard_promotion


def _blobs(key, n=64, d=3, k=3):
    """Separable Gaussian blobs: a tiny classification problem."""
    kx, ky = jax.random.split(key)
    y = jax.random.randint(ky, (n,), 0, k)
    centers = 3.0 * jnp.eye(k, d)
    x = centers[y] + jax.random.normal(kx, (n, d))
    return np.asarray(x, np.float32), np.asarray(y, np.int32)


@pytest.fixture(scope="module")
def data():
    x, y = _blobs(jax.random.key(0), n=96)
    xt, yt = _blobs(jax.random.key(1), n=48)
    return x, y, xt, yt


def _problem(**defaults):
    return train.mlp_classifier(
        (3, 8, 3),
        optimizer=lambda hp: optax.sgd(hp.get("lr", 0.1)),
        **defaults,
    )


def test_fit_equals_a_python_loop_of_train_steps(data):
    """The scanned loop is exactly: per-epoch permutation, fold_in keys, one step per batch."""
    problem = _problem(weight_decay=0.01, dropout_rate=0.2)
    key = jax.random.key(3)
    res = train.fit(problem, data, key=key, num_epochs=3, batch_size=32)
    hp = {}
    state = train.init_state(problem, jax.random.fold_in(key, 0), hp)
    order_key, step_key = jax.random.split(jax.random.fold_in(key, 1))
    step = jax.jit(train.make_train_step(problem, hp))
    for epoch in range(3):
        perm = jax.random.permutation(jax.random.fold_in(order_key, epoch), 96)
        for i in range(3):
            idx = perm[32 * i : 32 * (i + 1)]
            state, m = step(
                state, (data[0][idx], data[1][idx]), jax.random.fold_in(step_key, state.step)
            )
    for a, b in zip(jax.tree.leaves(res.params), jax.tree.leaves(state.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert res.history["step"].tolist() == [3, 6, 9]
    logits = problem.predict(state.params, data[2], {})
    np.testing.assert_allclose(
        res.history["test_loss"][-1], losses.cross_entropy(logits, data[3]), rtol=1e-5
    )


def test_sweep_equals_separate_fits(data):
    """4 weight decays x 3 seeds in one vmapped program == 12 separate fit calls."""
    problem = _problem()
    wds = np.array([0.0, 0.01, 0.05, 0.1], np.float32)
    seeds = np.array([0, 5, 7])
    res = train.sweep(
        problem,
        data,
        seeds=seeds,
        hparams={"weight_decay": wds},
        num_epochs=4,
        batch_size=16,
        eval_every=2,
        progress=False,
    )
    assert res.history["test_loss"].shape == (4, 3, 2)
    for h, wd in enumerate(wds):
        for s, seed in enumerate(seeds):
            one = train.fit(
                problem,
                data,
                key=jax.random.key(int(seed)),
                num_epochs=4,
                batch_size=16,
                eval_every=2,
                hparams={"weight_decay": wd},
            )
            for a, b in zip(
                jax.tree.leaves(one.params),
                jax.tree.leaves(jax.tree.map(lambda x: x[h, s], res.params)),
                strict=True,
            ):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(
                one.history["test_loss"], res.history["test_loss"][h, s], rtol=1e-5
            )
    # Stronger decay gives smaller weights (seed-averaged).
    norms = [
        float(np.mean(np.sum(np.square(res.params[0]["w"][h]), axis=(1, 2)))) for h in range(4)
    ]
    assert norms == sorted(norms, reverse=True)


def test_sweep_strategies_and_segments_agree(data):
    problem = _problem()
    kw = dict(
        seeds=2, hparams={"lr": np.array([0.05, 0.2])}, num_epochs=4, batch_size=32, progress=False
    )
    a = train.sweep(problem, data, **kw)
    b = train.sweep(problem, data, strategy="map", segments=4, **kw)
    np.testing.assert_allclose(a.history["test_loss"], b.history["test_loss"], rtol=1e-5)
    np.testing.assert_allclose(a.params[1]["w"], b.params[1]["w"], rtol=1e-5, atol=1e-6)


def test_fit_learns(data):
    res = train.fit(
        _problem(), data, key=jax.random.key(0), num_epochs=20, batch_size=16, eval_every=5
    )
    assert float(res.history["test_accuracy"][-1]) > 0.9
    assert float(res.history["train_loss"][-1]) < float(res.history["train_loss"][0])


def test_early_stopping_keeps_best_params(data):
    # Tiny noisy training set and a large model so the held-out loss turns up.
    x, y, xt, yt = data
    rng = np.random.default_rng(0)
    y_noisy = np.where(rng.random(y.shape) < 0.4, rng.integers(0, 3, y.shape), y).astype(np.int32)
    problem = train.mlp_classifier((3, 64, 3), optimizer=lambda hp: optax.adam(0.05))
    d = (x[:24], y_noisy[:24], xt, yt)
    full = train.fit(problem, d, key=jax.random.key(0), num_epochs=100, batch_size=8)
    res = train.fit(problem, d, key=jax.random.key(0), num_epochs=100, batch_size=8, patience=5)
    best = int(np.argmin(full.history["test_loss"]))
    assert int(res.best_epoch) == best + 1
    assert int(res.stop_epoch) == best + 1 + 5
    assert int(res.stop_epoch) < 100
    logits = problem.predict(res.best_params, xt, {})
    np.testing.assert_allclose(
        losses.cross_entropy(logits, yt), full.history["test_loss"][best], rtol=1e-5
    )


def test_nan_stops_with_the_step(data):
    # loss = log w with SGD(lr=2) from w=1: w becomes -1 after one step, so the loss at
    # step index 1 is NaN.
    problem = train.Problem(
        init=lambda key, hp: {"w": jnp.ones(())},
        loss=lambda p, x, y, *, key, hp: jnp.log(p["w"]) + 0.0 * x.sum(),
        predict=lambda p, x, hp: jnp.zeros((x.shape[0], 3)) + p["w"],
        optimizer=lambda hp: optax.sgd(hp.get("lr", 2.0)),
    )
    with pytest.raises(FloatingPointError, match="at step 1;"):
        train.fit(problem, data, key=jax.random.key(0), num_epochs=5, batch_size=32)
    with pytest.raises(FloatingPointError, match=r"at step 1 in sweep config 1 \(hparams"):
        train.sweep(
            problem,
            data,
            seeds=[3],
            hparams={"lr": np.array([0.01, 2.0])},
            num_epochs=5,
            batch_size=32,
            progress=False,
        )


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda d: (d[0][:10], d[1], d[2], d[3]), "examples"),
        (lambda d: (d[0], d[1] - 1, d[2], d[3]), "negative label"),
        (lambda d: (np.where(d[0] > 2, np.nan, d[0]), d[1], d[2], d[3]), "NaN"),
        (lambda d: (d[0], d[1], d[2][:, :2], d[3]), "feature shape"),
        (lambda d: (d[0], d[1][:, None], d[2], d[3]), "shape"),
    ],
)
def test_bad_data(data, change, match):
    with pytest.raises(ValueError, match=match):
        train.fit(_problem(), change(data), key=jax.random.key(0), num_epochs=1, batch_size=8)


def test_bad_hparams(data):
    with pytest.raises(ValueError, match="weight_decay"):
        train.fit(
            _problem(),
            data,
            key=jax.random.key(0),
            num_epochs=1,
            batch_size=8,
            hparams={"weight_decay": -1.0},
        )
    with pytest.raises(ValueError, match="dropout_rate"):
        train.sweep(
            _problem(),
            data,
            seeds=1,
            hparams={"dropout_rate": np.array([0.1, 1.0])},
            num_epochs=1,
            batch_size=8,
        )
    with pytest.raises(ValueError, match="same shape"):
        train.sweep(
            _problem(),
            data,
            seeds=1,
            hparams={"weight_decay": np.zeros(2), "l1": np.zeros(3)},
            num_epochs=1,
            batch_size=8,
        )
    with pytest.raises(ValueError, match="multiple"):
        train.fit(_problem(), data, key=jax.random.key(0), num_epochs=3, batch_size=8, eval_every=2)
    with pytest.raises(ValueError, match="activation"):
        train.mlp_classifier((3, 3), optimizer=optax.sgd, activation="swish!")


def test_grid():
    g = train.grid(a=[1, 2], b=[10, 20, 30])
    assert g["a"].tolist() == [1, 1, 1, 2, 2, 2]
    assert g["b"].tolist() == [10, 20, 30, 10, 20, 30]


def test_train_step_metrics(data):
    problem = _problem()
    state = train.init_state(problem, jax.random.key(0), {})
    step = train.make_train_step(problem, {})
    new, m = step(state, (data[0][:8], data[1][:8]), jax.random.key(1))
    assert int(new.step) == 1
    # SGD: the update is -lr * grad.
    np.testing.assert_allclose(m["update_norm"], 0.1 * m["grad_norm"], rtol=1e-5)
    np.testing.assert_allclose(m["param_norm"], optax.tree.norm(new.params), rtol=1e-6)
    assert models.count_params(new.params) == 3 * 8 + 8 + 8 * 3 + 3
