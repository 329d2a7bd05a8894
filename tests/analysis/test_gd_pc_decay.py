"""analysis.gd_pc_decay: the closed form (1 − ηλ_k)^t against gradient descent run by train.fit."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jreg import analysis, tasks
from jreg.core import streams, train
from jreg.nn import nets


def test_closed_form_values():
    out = analysis.gd_pc_decay(jnp.array([2.0, 0.5, 0.0]), 0.75, jnp.array([0, 1, 3]))
    expected = np.array([[1, 1, 1], [-0.5, 0.625, 1], [-0.125, 0.625**3, 1]])
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert analysis.gd_pc_decay(jnp.ones(4), 0.1, 5).shape == (4,)
    with pytest.raises(ValueError):
        analysis.gd_pc_decay(jnp.ones(4), -0.1, 5)


def test_gradient_descent_on_least_squares_decays_per_principal_component():
    k_x, k_w = jax.random.split(jax.random.key(0))
    n, d, k_out = 400, 6, 3
    scales = jnp.array([3.0, 2.0, 1.2, 0.7, 0.3, 0.1])
    x = jax.random.normal(k_x, (n, d)) * scales + 1.5  # not centred: the intercept decouples
    y = x @ jax.random.normal(k_w, (d, k_out)) + 0.1 * jax.random.normal(k_x, (n, k_out))
    evals, basis = analysis.pca_basis(x)
    xc = x - x.mean(0)
    # "mse" is (1/N) Σ_i ‖ŷ_i − y_i‖² (no ½): the per-step factor is 1 − 2ηλ_k.
    lr = 0.4 / float(evals[0])
    model = nets.pure(
        lambda key: {"w": jnp.zeros((d, k_out)), "b": jnp.zeros((k_out,))},
        lambda p, x, key, train: x @ p["w"] + p["b"],
    )

    def track(state, hp):  # gradient of the loss along each principal direction, (D,)
        p = state["params"]
        grad = xc.T @ (xc @ p["w"] + p["b"] - y) * (2.0 / n)
        return {"pc_grad": jnp.linalg.norm(basis.T @ grad, axis=1)}

    task = tasks.supervised(model, optimizer=optax.sgd(lr), loss="mse", track=track, splits=())
    res = train.fit(
        task,
        {"train": {"x": xc, "y": y}},
        stream=streams.full_batch(),
        seed=0,
        num_steps=30,
        eval_every=1,
    )
    g = np.asarray(res.history["pc_grad"])  # (T, D) after steps 1..T
    steps = np.asarray(res.history["step"])
    predicted = np.asarray(analysis.gd_pc_decay(evals, 2 * lr, steps - steps[0]))
    np.testing.assert_allclose(g / g[0], np.abs(predicted), rtol=2e-3, atol=1e-6)
    # Large-variance components are learned first: after 30 steps the gradient along the
    # top component has shrunk far more than along the smallest.
    assert g[-1, 0] / g[0, 0] < 1e-3 < 0.9 < g[-1, -1] / g[0, -1]
