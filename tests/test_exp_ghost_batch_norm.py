import jax
import jax.numpy as jnp
import numpy as np
import optax

from jreg import train
from jreg.experiments import ghost_batch_norm as gbn
from jreg.experiments.runner import run_experiment

WIDTHS = (5, 8, 8, 3)


def _toy(key, n=64):
    kx, ky = jax.random.split(key)
    x = jax.random.normal(kx, (n, WIDTHS[0]))
    y = jax.random.randint(ky, (n,), 0, WIDTHS[-1])
    return x, y, x[:16], y[:16]


def test_full_ghost_equals_plain_batch_norm(key):
    ds = _toy(key)
    opt = lambda hp: optax.sgd(0.1, momentum=0.9)
    out = []
    for g in (16, None):  # ghost size = batch size, and ordinary models.batch_norm
        problem = gbn.bn_mlp_problem(WIDTHS, ds[0], ghost_size=g, optimizer=opt)
        res = train.fit(problem, ds, key=key, num_epochs=3, batch_size=16)  # 12 steps
        out.append(res)
    ghost, plain = out
    assert int(ghost.history["step"][-1]) == 12
    for a, b in zip(jax.tree.leaves(ghost.params), jax.tree.leaves(plain.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    # ... and training moved the parameters.
    init = gbn.bn_mlp_init(jax.random.fold_in(key, 0), WIDTHS)
    assert optax.tree.norm(jax.tree.map(jnp.subtract, ghost.params, init)) > 1e-2


def test_ghost_statistics_are_per_ghost(key):
    params = gbn.bn_mlp_init(key, WIDTHS)
    x = jax.random.normal(jax.random.fold_in(key, 1), (16, WIDTHS[0])) * 3.0 + 1.0
    _, zs, _ = gbn.bn_mlp_apply(params, x, ghost_size=4)
    _, zs_full, _ = gbn.bn_mlp_apply(params, x, ghost_size=16)
    for z, z_full in zip(zs, zs_full, strict=True):
        ghosts = np.asarray(z).reshape(4, 4, -1)
        np.testing.assert_allclose(ghosts.mean(axis=1), 0.0, atol=1e-5)
        np.testing.assert_allclose(ghosts.var(axis=1), 1.0, atol=1e-3)
        # With one ghost only the whole-batch mean is 0, not the mean of each quarter.
        assert np.max(np.abs(np.asarray(z_full).reshape(4, 4, -1).mean(axis=1))) > 0.1


def test_predict_uses_training_set_population_statistics(key):
    x_tr, y_tr, x_te, _ = _toy(key)
    params = gbn.bn_mlp_init(key, WIDTHS)
    problem = gbn.bn_mlp_problem(WIDTHS, x_tr, ghost_size=8, optimizer=lambda hp: optax.sgd(0.1))
    # On the training set, eval mode equals one training-mode pass over the whole set ...
    full, _, _ = gbn.bn_mlp_apply(params, x_tr, ghost_size=x_tr.shape[0])
    np.testing.assert_allclose(problem.predict(params, x_tr, {}), full, rtol=1e-4, atol=1e-5)
    # ... and each test example is predicted independently of the others.
    one = problem.predict(params, x_te[:1], {})
    np.testing.assert_allclose(one, problem.predict(params, x_te, {})[:1], rtol=1e-5, atol=1e-6)


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
    assert (tmp_path / "ghost_batch_norm.png").stat().st_size > 1000
    num = rec["numbers"]
    acc = np.asarray(num["final_test_accuracy"])
    assert acc.shape == (2, 2)
    assert np.all(np.isfinite(acc)) and np.all(acc > 0.3)  # chance is 0.1
    for g in ("8", "128"):
        assert np.all(np.isfinite(np.asarray(num["curves"][g]["train_loss"])))
    assert num["best_ghost_size"] in (8, 128)
