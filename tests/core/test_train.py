"""The training core: loop semantics, sweep == fit, hyperparameters, early stopping, NaN."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jreg import tasks
from jreg.core import streams, train
from jreg.nn import nets
from jreg.regularizers import losses
from jreg.tasks import builders

pytestmark = pytest.mark.standard_promotion


def _blobs(key, n=64, d=3, k=3):
    """Separable Gaussian blobs: a tiny classification problem."""
    kx, ky = jax.random.split(key)
    y = jax.random.randint(ky, (n,), 0, k)
    x = 3.0 * jnp.eye(k, d)[y] + jax.random.normal(kx, (n, d))
    return np.asarray(x, np.float32), np.asarray(y, np.int32)


@pytest.fixture(scope="module")
def data():
    x, y = _blobs(jax.random.key(0), n=96)
    xt, yt = _blobs(jax.random.key(1), n=48)
    return tasks.split_data(x, y, xt, yt)


def _task(**hparams):
    return tasks.supervised(
        nets.mlp((3, 8, 3)),
        optimizer=lambda hp: optax.sgd(hp["lr"]),
        regularizers={"weight_decay": tasks.HALF_L2},
        hparams={"lr": 0.1, "dropout_rate": 0.0, **hparams},
    )


def test_fit_equals_a_python_loop_of_steps(data):
    """The scanned loop is exactly: per-epoch permutation, fold_in keys, one step per batch."""
    task = _task(dropout_rate=0.2, weight_decay=0.01)
    res = train.fit(task, data, stream=streams.epochs(32), seed=3, num_steps=9, eval_every=3)
    key = jax.random.key(3)
    hp = dict(task.hparams)
    state = task.init(jax.random.fold_in(key, 0), hp)
    data_key, step_key = jax.random.split(jax.random.fold_in(key, 1))
    step = jax.jit(lambda s, b, k: task.step(s, b, k, hp))
    for t in range(9):
        epoch, i = divmod(t, 3)
        perm = streams.shuffle(jax.random.fold_in(data_key, epoch), 96)
        idx = perm[32 * i : 32 * (i + 1)]
        batch = jax.tree.map(lambda a: a[idx], data["train"])
        state, _ = step(state, batch, jax.random.fold_in(step_key, t))
    chex.assert_trees_all_close(res.state["params"], state["params"], rtol=1e-5, atol=1e-6)
    assert res.history["step"].tolist() == [3, 6, 9]
    ev = task.evaluate(state, jax.tree.map(jnp.asarray, data), hp)
    np.testing.assert_allclose(res.history["test_loss"][-1], ev["test_loss"], rtol=1e-5)


def _plain_loop(task, data, *, seed, hp, batch, num_steps, eval_every):
    """The unoptimised reference: one config, a Python loop over jitted steps."""
    key = jax.random.key(seed)
    hp = {**task.hparams, **hp}
    state = task.init(jax.random.fold_in(key, 0), hp)
    data_key, step_key = jax.random.split(jax.random.fold_in(key, 1))
    n = data["train"]["y"].shape[0]
    spe = n // batch
    step = jax.jit(lambda s, b, k: task.step(s, b, k, hp))
    history = []
    for t in range(num_steps):
        epoch, i = divmod(t, spe)
        perm = streams.shuffle(jax.random.fold_in(data_key, epoch), n)
        batch_t = jax.tree.map(lambda a: a[perm[batch * i : batch * (i + 1)]], data["train"])
        state, _ = step(state, batch_t, jax.random.fold_in(step_key, t))
        if (t + 1) % eval_every == 0:
            history.append(task.evaluate(state, jax.tree.map(jnp.asarray, data), hp)["test_loss"])
    return state, np.asarray(history)


def test_sweep_history_pinned_to_the_plain_loop(data):
    """The optimised path (vmap over 2 hparams x 2 seeds, sharded over the host devices,
    donated carry, scanned periods, fast shuffle) gives each config's plain-loop history."""
    task = _task(dropout_rate=0.1)
    res = train.sweep(
        task,
        data,
        stream=streams.epochs(32),
        seeds=[1, 7],
        hparams={"weight_decay": [0.0, 0.02]},
        num_steps=12,
        eval_every=3,
        progress=False,
    )
    for h, wd in enumerate([0.0, 0.02]):
        for s, seed in enumerate([1, 7]):
            state, hist = _plain_loop(
                task,
                data,
                seed=seed,
                hp={"weight_decay": wd},
                batch=32,
                num_steps=12,
                eval_every=3,
            )
            np.testing.assert_allclose(res.history["test_loss"][h, s], hist, rtol=2e-5)
            chex.assert_trees_all_close(
                jax.tree.map(lambda p: p[h, s], res.state["params"]),
                state["params"],
                rtol=2e-5,
                atol=1e-6,
            )


def test_stream_call_equals_prepare_take(data):
    s = streams.epochs(20)
    key = jax.random.key(0)
    a = s(data, key, 7)  # epoch 1 (4 steps per epoch), batch 3
    perm = streams.shuffle(jax.random.fold_in(key, 1), 96)
    np.testing.assert_array_equal(a["y"], data["train"]["y"][np.asarray(perm[60:80])])


@pytest.mark.parametrize("n", [1, 2, 3, 96, 4000, 4097, 70_000])
def test_shuffle_is_a_permutation(n):
    p = np.asarray(streams.shuffle(jax.random.key(n), n))
    assert p.dtype == np.int32
    np.testing.assert_array_equal(np.sort(p), np.arange(n))


def test_shuffle_is_uniform_over_permutations():
    """All 24 orders of 4 items equally likely: chi-square over 48,000 draws (df = 23)."""
    draws = jax.vmap(lambda k: streams.shuffle(k, 4))(jax.random.split(jax.random.key(0), 48_000))
    codes = np.asarray(draws) @ np.array([64, 16, 4, 1])
    counts = np.bincount(codes, minlength=256)[np.unique(codes)]
    assert counts.size == 24
    chi2 = np.sum((counts - 2000.0) ** 2 / 2000.0)
    assert chi2 < 49.7  # the 0.999 quantile of chi-square(23)
    # each item lands at each position with probability 1/4 (4000 draws per cell of 12000)
    pos = np.stack([(np.asarray(draws) == v).mean(0) for v in range(4)])
    np.testing.assert_allclose(pos, 0.25, atol=0.012)


def test_epochs_stream_is_cached_and_takes_a_permutation(data):
    assert streams.epochs(32) is streams.epochs(32)  # equal streams: compiled programs reused
    old = streams.epochs(32, permutation=jax.random.permutation)
    key = jax.random.key(4)
    perm = jax.random.permutation(jax.random.fold_in(key, 2), 96)
    np.testing.assert_array_equal(
        old(data, key, 7)["y"], data["train"]["y"][np.asarray(perm[32:64])]
    )


def test_repeated_sweep_does_not_recompile(data):
    task = _task()
    kw = dict(seeds=2, num_steps=6, eval_every=3, progress=False)
    train.sweep(task, data, stream=streams.epochs(32), **kw)
    before = train.compiled_programs.cache_info()
    train.sweep(task, data, stream=streams.epochs(32), **kw)  # a fresh call of the constructor
    after = train.compiled_programs.cache_info()
    assert after.hits == before.hits + 1 and after.misses == before.misses


def test_sweep_entries_equal_fit_and_one_config_sweep_is_bit_identical(data):
    task = _task()
    kw = dict(stream=streams.epochs(32), num_steps=12, eval_every=3, progress=False)
    res = train.sweep(task, data, seeds=[0, 5], hparams={"weight_decay": [0.0, 0.01]}, **kw)
    chex.assert_tree_shape_prefix(res.state, (2, 2))
    one = train.fit(task, data, seed=5, hparams={"weight_decay": 0.01}, **kw)
    chex.assert_trees_all_close(res[1, 1].history, one.history, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(res[1, 1].state, one.state, rtol=1e-5, atol=1e-6)
    single = train.sweep(task, data, seeds=[5], hparams={"weight_decay": [0.01]}, **kw)
    chex.assert_trees_all_equal(single[0, 0].history, one.history)
    chex.assert_trees_all_equal(single[0, 0].state, one.state)


def test_unknown_hyperparameter_lists_the_declared_names(data):
    with pytest.raises(ValueError, match=r"weight_decy.*declares.*weight_decay"):
        train.fit(
            _task(),
            data,
            stream=streams.epochs(32),
            seed=0,
            num_steps=3,
            eval_every=3,
            hparams={"weight_decy": 0.1},
        )


@pytest.mark.parametrize(
    "hparams, match",
    [
        ({"weight_decay": [0.1, 0.2], "lr": [0.1, 0.2, 0.3]}, "one common length"),
        ({"weight_decay": [-0.1]}, "weight_decay"),
        ({"lr": [np.nan]}, "NaN"),
    ],
)
def test_bad_hyperparameters(data, hparams, match):
    with pytest.raises(ValueError, match=match):
        train.sweep(
            _task(),
            data,
            stream=streams.epochs(32),
            seeds=1,
            num_steps=3,
            eval_every=3,
            hparams=hparams,
        )


@pytest.mark.parametrize("seeds", [[0, 2**32], [-1], 0, [0.5]])
def test_bad_seeds(data, seeds):
    with pytest.raises(ValueError, match="seeds"):
        train.sweep(
            _task(), data, stream=streams.epochs(32), seeds=seeds, num_steps=3, eval_every=3
        )


def test_labels_out_of_range_are_rejected_before_training(data):
    bad = jax.tree.map(np.array, data)
    bad["test"]["y"][0] = 3
    with pytest.raises(ValueError, match="test y has label 3 outside"):
        train.fit(_task(), bad, stream=streams.epochs(32), seed=0, num_steps=3, eval_every=3)


def test_nan_is_reported_with_step_config_and_seed(data):
    with pytest.raises(FloatingPointError, match=r"config \(h=1, s=0\): seed 7.*'lr': 1e\+30"):
        train.sweep(
            _task(weight_decay=0.01),  # huge weights overflow the L2 penalty
            data,
            stream=streams.epochs(32),
            seeds=[7],
            hparams={"lr": [0.1, 1e30]},
            num_steps=30,
            eval_every=3,
            progress=False,
        )


def test_early_stopping_freezes_the_state_and_keeps_the_best(data):
    # A learning rate that makes the test loss rise after a while.
    task = _task()
    res = train.fit(
        task,
        data,
        stream=streams.epochs(32),
        seed=0,
        hparams={"lr": 3.0},
        num_steps=300,
        eval_every=3,
        monitor="test_loss",
        patience=3,
    )
    losses_ = np.asarray(res.history["test_loss"])
    best = int(np.argmin(losses_))
    assert int(res.best_step) == (best + 1) * 3
    assert int(res.stop_step) == int(res.best_step) + 3 * 3
    ev = task.evaluate(res.best_state, jax.tree.map(jnp.asarray, data), dict(task.hparams))
    np.testing.assert_allclose(ev["test_loss"], losses_[best], rtol=1e-6)


def test_progress_segments_do_not_change_results(data):
    task = _task()
    kw = dict(stream=streams.epochs(32), seed=1, num_steps=24, eval_every=3)
    a = train.fit(task, data, segments=1, **kw)
    b = train.fit(task, data, segments=8, **kw)
    chex.assert_trees_all_equal(a.history, b.history)


def test_grid_is_a_cartesian_product():
    g = train.grid(lr=[0.1, 0.01], weight_decay=[0.0, 1e-3, 1e-2])
    assert g["lr"].tolist() == pytest.approx([0.1] * 3 + [0.01] * 3)
    assert g["weight_decay"].tolist() == pytest.approx([0.0, 1e-3, 1e-2] * 2)


def test_token_targets_with_a_mask():
    """(N, L) targets: the loss is the mean over masked-in tokens only."""
    logits = jax.random.normal(jax.random.key(0), (4, 5, 7))
    y = jax.random.randint(jax.random.key(1), (4, 5), 0, 7)
    mask = jax.random.bernoulli(jax.random.key(2), 0.5, (4, 5))
    fn = builders._loss_fn("token_cross_entropy")
    got = fn(logits, y, {"mask": mask}, {}, False)
    per = losses.per_example_cross_entropy(logits.reshape(-1, 7), y.reshape(-1))
    want = np.sum(np.where(np.asarray(mask).reshape(-1), per, 0)) / np.sum(mask)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_token_task_trains_on_masked_positions():
    """A per-token classifier learns y = x on the masked positions it is trained on."""
    n, length, k = 64, 6, 5
    x = np.asarray(jax.random.randint(jax.random.key(0), (n, length), 0, k), np.int32)
    mask = np.asarray(jax.random.bernoulli(jax.random.key(1), 0.5, (n, length)))
    emb = nets.pure(
        lambda key: {"e": 0.1 * jax.random.normal(key, (k, k))},
        lambda p, x, *, key, train: p["e"][x],
    )
    task = tasks.supervised(emb, optimizer=optax.adam(0.1), loss="token_cross_entropy")
    split = {"x": x, "y": x, "mask": mask}
    res = train.fit(
        task,
        {"train": split, "test": split},
        stream=streams.full_batch(),
        seed=0,
        num_steps=100,
        eval_every=50,
    )
    assert float(res.history["test_accuracy"][-1]) == 1.0
    assert float(res.history["test_loss"][-1]) < 0.05


def test_step_metrics_are_logged_per_step_and_averaged_per_period(data):
    """supervised(step_metrics=...): numbers of each step's forward pass, period means."""
    task = tasks.supervised(
        nets.mlp((3, 8, 3)),
        optimizer=optax.sgd(0.1),
        step_metrics=lambda out, y, batch, aux, hp: {"ce": losses.cross_entropy(out, y)},
    )
    run = lambda every: (
        train.fit(  # noqa: E731
            task, data, stream=streams.full_batch(), seed=0, num_steps=6, eval_every=every
        ).history
    )
    one, two = run(1), run(2)
    np.testing.assert_allclose(one["ce"], one["train_objective"], rtol=1e-6)
    np.testing.assert_allclose(two["ce"], one["ce"].reshape(3, 2).mean(1), rtol=1e-5)
