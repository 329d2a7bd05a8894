"""The core expresses every setting the experiments need, each checked against a closed form
or a reference: two players, float targets, task sequences, environments, model state,
flax models."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jreg import tasks
from jreg.core import streams, train
from jreg.nn import nets
from jreg.regularizers import activity, penalties

pytestmark = pytest.mark.standard_promotion


# ----------------------------------------------------------------------------- Dirac GAN


def _dirac_gan(r1: bool, simultaneous: bool = False) -> train.Task:
    """Mescheder et al. 2018: data δ₀, generator θ (a point mass), discriminator D(x) = ψx.

    L(θ, ψ) = f(ψθ) + f(0) with f(t) = -log(1 + e^{-t}) (the paper's zero-sum form of the
    original GAN): the discriminator ascends L − γ/2 R1, the generator descends L. Two optax
    states. The flow conserves θ² + ψ²: simultaneous steps spiral out, alternating ones
    circle, R1 (γ/2 ψ² here) damps ψ and the pair converges (the paper's Fig. 1 and Thm 4.1).
    """
    opt = optax.sgd(0.1)

    def init(key, hp):
        p = {"theta": jnp.asarray(1.0), "psi": jnp.asarray(1.0)}
        return {"p": p, "opt_d": opt.init(p["psi"]), "opt_g": opt.init(p["theta"])}

    def step(state, batch, key, hp):
        theta, psi = state["p"]["theta"], state["p"]["psi"]
        f = lambda t: -jax.nn.softplus(-t)

        def d_loss(psi):
            loss = -(f(psi * theta) + f(0.0))
            if r1:
                critic = lambda x: psi * x[..., 0]
                loss = loss + 0.5 * hp["gamma"] * activity.r1_penalty(critic, jnp.zeros((1, 1)))
            return loss

        g = jax.grad(d_loss)(psi)
        upd, opt_d = opt.update(g, state["opt_d"])
        psi_old, psi = psi, psi + upd
        g = jax.grad(lambda th: f((psi_old if simultaneous else psi) * th))(theta)
        upd, opt_g = opt.update(g, state["opt_g"])
        theta = theta + upd
        p = {"theta": theta, "psi": psi}
        return {"p": p, "opt_d": opt_d, "opt_g": opt_g}, {"dist": jnp.hypot(theta, psi)}

    evaluate = lambda state, data, hp: {"distance": jnp.hypot(*jax.tree.leaves(state["p"]))}
    return train.Task(init, step, evaluate, hparams={"gamma": 1.0}, name="dirac_gan")


@pytest.mark.parametrize("r1, simultaneous", [(False, False), (False, True), (True, False)])
def test_dirac_gan_converges_only_with_r1(r1, simultaneous):
    res = train.sweep(
        _dirac_gan(r1, simultaneous),
        {},
        stream=streams.generated(lambda key, step: {}),
        seeds=1,
        num_steps=2000,
        eval_every=500,
        progress=False,
    )
    dist = np.asarray(res.history["distance"][0, 0])
    if r1:
        assert dist[-1] < 1e-3  # converges (linearly) to the equilibrium (0, 0)
    elif simultaneous:
        assert dist[-1] > 1.1 * np.sqrt(2.0)  # spirals outward from the start (1, 1)
    else:  # alternating: circles at about the starting distance
        np.testing.assert_allclose(dist, np.sqrt(2.0), rtol=0.1)


# ----------------------------------------------------------------------------- ridge


def test_full_batch_ridge_equals_the_closed_form_for_every_lambda():
    """GD on (1/n)‖y − Xw‖² + (λ/n)‖w‖² converges to (XᵀX + λI)⁻¹Xᵀy for every swept λ."""
    kx, kw, ke = jax.random.split(jax.random.key(0), 3)
    n, d = 40, 5
    x = np.asarray(jax.random.normal(kx, (n, d)), np.float32)
    y = np.asarray(x @ jax.random.normal(kw, (d,)) + 0.3 * jax.random.normal(ke, (n,)), np.float32)
    lams = np.asarray([0.0, 1.0, 10.0, 100.0], np.float32)
    linear = nets.pure(lambda key: {"w": jnp.zeros(d)}, lambda p, x, *, key, train: x @ p["w"])
    task = tasks.supervised(
        linear,
        optimizer=optax.sgd(0.02),
        loss="mse",
        regularizers={"ridge": lambda p, b, a: penalties.l2(p)},
    )
    split = {"x": x, "y": y}
    res = train.sweep(
        task,
        {"train": split, "test": split},
        stream=streams.full_batch(),
        seeds=1,
        hparams={"ridge": lams / n},
        num_steps=3000,
        eval_every=3000,
        progress=False,
    )
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    for i, lam in enumerate(lams):
        want = np.linalg.solve(x64.T @ x64 + lam * np.eye(d), x64.T @ y64)
        np.testing.assert_allclose(res.state["params"]["w"][i, 0], want, atol=1e-4)


# ----------------------------------------------------------------------------- task sequence


def test_task_sequence_updates_the_anchor_between_tasks():
    """Quadratic tasks (w − c_k)²; at each switch the anchor becomes the current w, and the
    anchored objective (w − c_k)² + λ(w − a)² has the minimiser (c_k + λa)/(1 + λ)."""
    centers = np.asarray([[1.0], [5.0], [-2.0]], np.float32)  # one "example" per task
    opt = optax.sgd(0.1)

    def init(key, hp):
        return {
            "w": jnp.zeros(()),
            "anchor": jnp.zeros(()),
            "anchors": jnp.zeros(3),
            "opt": opt.init(jnp.zeros(())),
        }

    def step(state, batch, key, hp):
        switch = (batch["task_step"] == 0) & (batch["task"] > 0)
        anchor = jnp.where(switch, state["w"], state["anchor"])
        anchors = state["anchors"].at[batch["task"]].set(anchor)
        c = batch["c"][0]
        lam = jnp.where(batch["task"] > 0, hp["lam"], 0.0)
        loss = lambda w: (w - c) ** 2 + lam * (w - anchor) ** 2
        g = jax.grad(loss)(state["w"])
        upd, o = opt.update(g, state["opt"])
        return {"w": state["w"] + upd, "anchor": anchor, "anchors": anchors, "opt": o}, {}

    task = train.Task(init, step, lambda s, d, hp: {"w": s["w"]}, hparams={"lam": 1.0})
    res = train.fit(
        task,
        {"tasks": {"c": centers}},
        stream=streams.task_sequence(streams.full_batch(), steps_per_task=200),
        seed=0,
        num_steps=600,
        eval_every=200,
    )
    w = np.asarray(res.history["w"])
    np.testing.assert_allclose(w[0], 1.0, atol=1e-5)
    np.testing.assert_allclose(w[1], (5.0 + 1.0 * w[0]) / 2.0, atol=1e-5)
    np.testing.assert_allclose(w[2], (-2.0 + 1.0 * w[1]) / 2.0, atol=1e-5)
    np.testing.assert_allclose(res.state["anchors"], [0.0, w[0], w[1]], atol=1e-6)


# ----------------------------------------------------------------------------- environment


def test_q_learning_on_a_tabular_mdp_matches_value_iteration():
    """An environment-driven stream: (s, a) uniform, s' ~ P(s, a), r = R(s, a). Q-learning
    with a decaying step size converges to Q* from value iteration."""
    ns, na, gamma = 3, 2, 0.9
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(ns), size=(ns, na)).astype(np.float32)
    r = rng.normal(size=(ns, na)).astype(np.float32)
    q = np.zeros((ns, na))
    for _ in range(500):
        q = r + gamma * p @ q.max(axis=1)

    def transitions(key, step):
        ks, ka, kn = jax.random.split(key, 3)
        s = jax.random.randint(ks, (64,), 0, ns)
        a = jax.random.randint(ka, (64,), 0, na)
        s2 = jax.random.categorical(kn, jnp.log(jnp.asarray(p)[s, a]))
        return {"s": s, "a": a, "r": jnp.asarray(r)[s, a], "s2": s2}

    def step(state, b, key, hp):
        target = b["r"] + gamma * state["q"][b["s2"]].max(axis=-1)
        td = target - state["q"][b["s"], b["a"]]
        alpha = 1.0 / (1.0 + state["t"] / 50.0)
        counts = jnp.zeros((ns, na)).at[b["s"], b["a"]].add(1.0)
        delta = jnp.zeros((ns, na)).at[b["s"], b["a"]].add(td) / jnp.maximum(counts, 1.0)
        return {"q": state["q"] + alpha * delta, "t": state["t"] + 1}, {"td": jnp.mean(td**2)}

    task = train.Task(
        lambda key, hp: {"q": jnp.zeros((ns, na)), "t": jnp.zeros(())},
        step,
        lambda s, d, hp: {"q_error": jnp.abs(s["q"] - jnp.asarray(q, jnp.float32)).max()},
    )
    res = train.fit(
        task, {}, stream=streams.generated(transitions), seed=0, num_steps=4000, eval_every=1000
    )
    assert float(res.history["q_error"][-1]) < 0.05


# ----------------------------------------------------------------------------- model state


def test_batch_norm_running_statistics_live_in_the_state_and_are_used_at_evaluation():
    x = np.asarray(3.0 + 2.0 * jax.random.normal(jax.random.key(0), (64, 4)), np.float32)
    y = np.asarray((x[:, 0] > 3.0).astype(np.int32))
    model = nets.bn_mlp((4, 8, 2), momentum=0.5)
    task = tasks.supervised(model, optimizer=optax.sgd(0.0))  # frozen weights: stats only
    data = tasks.split_data(x, y, x, y)
    res = train.fit(task, data, stream=streams.full_batch(), seed=0, num_steps=20, eval_every=20)
    params, stats = res.state["params"], res.state["model_state"]["bn"][0]
    z = x @ params["hidden"][0]["w"]
    # 20 steps of momentum 0.5 from (0, 1) on the same batch: the batch's statistics.
    np.testing.assert_allclose(stats.mean, z.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(stats.var, z.var(0), rtol=1e-4, atol=1e-4)
    out, _, _ = model.apply(params, res.state["model_state"], x, key=None, train=False, hp={})
    ce = optax.softmax_cross_entropy_with_integer_labels(out, y).mean()
    np.testing.assert_allclose(res.history["test_loss"][-1], ce, rtol=1e-5)


# ----------------------------------------------------------------------------- flax


def _flax_data():
    x = np.asarray(jax.random.normal(jax.random.key(0), (32, 3)), np.float32)
    y = np.asarray((x.sum(1) > 0).astype(np.int32))
    return tasks.split_data(x, y, x, y)


def _pure_twin(kernel_init_from):
    """A pure two-layer net whose init copies a flax model's init (same keys)."""

    def init(key):
        return kernel_init_from(key)

    def apply(p, x, *, key, train):
        h = jnp.tanh(x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
        return h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"]

    return nets.pure(init, apply)


def test_flax_linen_and_nnx_models_train_over_vmapped_seeds_like_pure_functions():
    import flax.linen as nn
    from flax import nnx

    class Linen(nn.Module):
        @nn.compact
        def __call__(self, x, train):
            h = jnp.tanh(nn.Dense(8)(x))  # Dense_0
            return nn.Dense(2)(h)  # Dense_1

    class Nnx(nnx.Module):
        def __init__(self, rngs):
            self.l1, self.l2 = nnx.Linear(3, 8, rngs=rngs), nnx.Linear(8, 2, rngs=rngs)

        def __call__(self, x):
            return self.l2(jnp.tanh(self.l1(x)))

    data = _flax_data()
    kw = dict(stream=streams.epochs(8), seeds=3, num_steps=40, eval_every=20, progress=False)
    opt = optax.sgd(0.1)
    linen_model = nets.linen(Linen(), data["train"]["x"][:1])
    res_linen = train.sweep(tasks.supervised(linen_model, optimizer=opt), data, **kw)
    twin = _pure_twin(lambda key: linen_model.init(key, {})[0])
    res_pure = train.sweep(tasks.supervised(twin, optimizer=opt), data, **kw)
    chex.assert_trees_all_close(res_linen.history, res_pure.history, rtol=1e-5, atol=1e-6)
    # seeds differ from each other (vmapped keys really are per seed)
    assert not np.allclose(
        res_linen.history["test_loss"][0, 0], res_linen.history["test_loss"][0, 1]
    )

    nnx_model = nets.nnx(Nnx)
    res_nnx = train.sweep(tasks.supervised(nnx_model, optimizer=opt), data, **kw)

    def nnx_init(key):
        p = nnx_model.init(key, {})[0]
        return {
            "Dense_0": {"kernel": p["l1"]["kernel"][...], "bias": p["l1"]["bias"][...]},
            "Dense_1": {"kernel": p["l2"]["kernel"][...], "bias": p["l2"]["bias"][...]},
        }

    res_twin = train.sweep(tasks.supervised(_pure_twin(nnx_init), optimizer=opt), data, **kw)
    chex.assert_trees_all_close(res_nnx.history, res_twin.history, rtol=1e-5, atol=1e-6)
