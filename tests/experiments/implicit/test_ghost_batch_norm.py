import jax
import jax.numpy as jnp
import numpy as np
import optax

from jreg import tasks
from jreg.core import streams, train
from jreg.experiments.implicit import ghost_batch_norm as gbn
from jreg.experiments.runner import run_experiment
from jreg.nn import nets

WIDTHS = (5, 8, 8, 3)


def _toy(key, n=64):
    kx, ky = jax.random.split(key)
    x = jax.random.normal(kx, (n, WIDTHS[0]))
    y = jax.random.randint(ky, (n,), 0, WIDTHS[-1])
    return tasks.split_data(x, y, x[:16], y[:16])


def test_full_ghost_equals_plain_batch_norm(key):
    ds = _toy(key)
    out = []
    for g in (16, None):  # ghost size = batch size, and ordinary batch norm
        task = tasks.supervised(
            nets.bn_mlp(WIDTHS, ghost_size=g), optimizer=optax.sgd(0.1, momentum=0.9)
        )
        res = train.fit(task, ds, stream=streams.epochs(16), seed=0, num_steps=12, eval_every=4)
        out.append(res)
    ghost, plain = out
    assert int(ghost.history["step"][-1]) == 12
    for a, b in zip(jax.tree.leaves(ghost.state), jax.tree.leaves(plain.state), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    # ... training moved the parameters and the running statistics.
    params0, stats0 = nets.bn_mlp(WIDTHS).init(jax.random.fold_in(jax.random.key(0), 0), {})
    moved = jax.tree.map(jnp.subtract, ghost.state["params"], params0)
    assert optax.tree.norm(moved) > 1e-2
    assert np.max(np.abs(ghost.state["model_state"]["bn"][0].mean - stats0["bn"][0].mean)) > 1e-2


def test_ghost_statistics_are_per_ghost(key):
    model = nets.bn_mlp(WIDTHS, ghost_size=4, momentum=0.0)
    params, state = model.init(key, {})
    x = jax.random.normal(jax.random.fold_in(key, 1), (16, WIDTHS[0])) * 3.0 + 1.0
    out, new, _ = model.apply(params, state, x, key=None, train=True, hp={})
    # Each ghost is normalised alone: changing the last ghost leaves the first three alone.
    x2 = x.at[12:].set(jax.random.normal(jax.random.fold_in(key, 2), (4, WIDTHS[0])))
    out2, _, _ = model.apply(params, state, x2, key=None, train=True, hp={})
    np.testing.assert_allclose(out2[:12], out[:12], rtol=1e-5, atol=1e-6)
    assert np.max(np.abs(out2[12:] - out[12:])) > 1e-3
    # With momentum 0 the state is the mean over ghosts of the ghost statistics.
    a = np.asarray(x @ params["hidden"][0]["w"]).reshape(4, 4, -1)
    np.testing.assert_allclose(new["bn"][0].mean, a.mean(axis=(0, 1)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(new["bn"][0].var, a.var(axis=1).mean(axis=0), rtol=1e-4)
    # With one ghost the outputs of the first quarter depend on the rest of the batch.
    full = nets.bn_mlp(WIDTHS)
    f1, _, _ = full.apply(params, state, x, key=None, train=True, hp={})
    f2, _, _ = full.apply(params, state, x2, key=None, train=True, hp={})
    assert np.max(np.abs(f2[:12] - f1[:12])) > 1e-3


def test_population_state_and_running_statistics_at_evaluation(key):
    ds = _toy(key)
    x_tr, x_te = ds["train"]["x"], ds["test"]["x"]
    model = nets.bn_mlp(WIDTHS, ghost_size=8)
    params, state = model.init(key, {})
    pop = gbn.population_state(WIDTHS, params, state, x_tr)
    # On the training set, eval mode with population statistics equals one training-mode
    # pass over the whole set ...
    full, _, _ = nets.bn_mlp(WIDTHS).apply(params, state, x_tr, key=None, train=True, hp={})
    ev, _, _ = model.apply(params, pop, x_tr, key=None, train=False, hp={})
    np.testing.assert_allclose(ev, full, rtol=1e-4, atol=1e-5)
    # ... and each test example is predicted independently of the others.
    one, _, _ = model.apply(params, pop, x_te[:1], key=None, train=False, hp={})
    all_, _, _ = model.apply(params, pop, x_te, key=None, train=False, hp={})
    np.testing.assert_allclose(one, all_[:1], rtol=1e-5, atol=1e-6)
    # The task evaluates with both rules.
    config = gbn.get_config(quick=True) | {"widths": WIDTHS}
    task = gbn.make_task(config, 8)
    ev = task.evaluate(task.init(key, task.hparams), ds, task.hparams)
    assert {"test_accuracy", "pop_test_accuracy", "pop_train_loss"} <= set(ev)


def test_ghost_batch_norm_experiment_quick(tmp_path):
    rec = run_experiment(
        "ghost_batch_norm",
        quick=True,
        out=str(tmp_path),
        progress=False,
        overrides={
            "n_train": 1000,
            "n_test": 500,
            "batch_size": 128,
            "ghost_sizes": (8, 128),
            "num_epochs": 10,
            "eval_every": 5,
            "seeds": 2,
        },
    )
    assert (tmp_path / "ghost_batch_norm-quick.png").stat().st_size > 1000
    num = rec["numbers"]
    for name in ("final_test_accuracy_running", "final_test_accuracy_population"):
        acc = np.asarray(num[name])
        assert acc.shape == (2, 2)
        assert np.all(np.isfinite(acc)) and np.all(acc > 0.3)  # chance is 0.1
    # Running averages and population statistics give close test accuracies here.
    gap = np.asarray(num["final_test_accuracy_running"]) - num["final_test_accuracy_population"]
    assert np.all(np.abs(gap.mean(axis=1)) < 0.03)
    for g in ("8", "128"):
        assert np.all(np.isfinite(np.asarray(num["curves"]["running"][g]["train_loss"])))
    assert num["best_ghost_size"] in (8, 128)
