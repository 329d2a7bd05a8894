import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jreg.experiments.applications import continual_learning as cl
from jreg.experiments.applications.continual_learning import ewc, report
from jreg.nn import nets
from jreg.regularizers import penalties

pytestmark = pytest.mark.standard_promotion  # optax.adam


def test_exact_fisher_is_the_expectation_over_classes():
    model = nets.mlp((5, 4, 3), activation="tanh")
    params, _ = model.init(jax.random.key(0), {})
    x = jax.random.normal(jax.random.key(1), (6, 5))
    allowed = jnp.asarray(np.array([[1, 1, 0]] * 3 + [[1, 1, 1]] * 3, bool))
    got = ewc.exact_fisher(params, x, allowed, activation="tanh")

    def log_p(p, xi, ai, c):
        logits = model.apply(p, {}, xi[None], key=None, train=False, hp={})[0][0]
        return jax.nn.log_softmax(jnp.where(ai, logits, -jnp.inf))[c]

    want = jax.tree.map(jnp.zeros_like, params)
    for n in range(6):
        for c in range(3):
            if allowed[n, c]:
                prob = jnp.exp(log_p(params, x[n], allowed[n], c))
                g = jax.grad(log_p)(params, x[n], allowed[n], c)
                want = jax.tree.map(lambda w, gi: w + prob * gi**2 / 6, want, g)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-7)


def test_targets_of_the_three_scenarios():
    y = jnp.asarray([0, 3, 9])
    label, allowed = ewc.targets(y, 0, num_classes=10, per_task=2)  # task-IL
    np.testing.assert_array_equal(label, y)
    np.testing.assert_array_equal(np.flatnonzero(allowed[1]), [2, 3])
    label, allowed = ewc.targets(y, 1, num_classes=10, per_task=2)  # domain-IL
    np.testing.assert_array_equal(label, [0, 1, 1])
    np.testing.assert_array_equal(np.flatnonzero(allowed[2]), [0, 1])
    label, allowed = ewc.targets(y, 2, num_classes=10, per_task=2)  # class-IL
    np.testing.assert_array_equal(label, y)
    assert bool(allowed.all())


def test_quadratic_form_equals_the_four_penalties():
    r = np.random.default_rng(0)
    tree = lambda: {"w": jnp.asarray(r.normal(size=(3, 2))), "b": jnp.asarray(r.normal(size=2))}
    pos = lambda: jax.tree.map(jnp.abs, tree())
    theta, anchor, f1, f2, a1, a2, online, omega = (
        tree(),
        tree(),
        pos(),
        pos(),
        tree(),
        tree(),
        pos(),
        pos(),
    )
    tm = jax.tree.map
    state = {
        "anchor": anchor,
        "online_fisher": online,
        "si_omega": omega,
        "ewc_a": tm(jnp.add, f1, f2),
        "ewc_b": tm(lambda f, a, g, b: f * a + g * b, f1, a1, f2, a2),
        "ewc_c": penalties.ewc(tm(jnp.zeros_like, a1), a1, f1)
        + penalties.ewc(tm(jnp.zeros_like, a2), a2, f2),
    }
    hp = {"l2": 0.3, "ewc": 2.0, "online_ewc": 5.0, "si": 7.0}
    q = ewc.quadratic(state, hp)
    leaves = zip(*(jax.tree.leaves(t) for t in (q["quad_w"], q["quad_v"], theta)), strict=True)
    got = sum(jnp.sum(w * p**2 - 2 * v * p) for w, v, p in leaves) + q["quad_c"]
    want = (
        hp["l2"] * penalties.anchored_l2(theta, anchor)
        + hp["ewc"] * (penalties.ewc(theta, a1, f1) + penalties.ewc(theta, a2, f2))
        + hp["online_ewc"] * penalties.ewc(theta, anchor, online)
        + hp["si"] * penalties.ewc(theta, anchor, omega)
    )
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_forgetting():
    r = np.array([[0.9, 0.1], [0.6, 0.8]])
    np.testing.assert_allclose(report._forgetting(r), 0.3)


def test_continual_learning_quick():
    config = cl.get_config(quick=True)
    num = cl.compute(config)
    cl.figure(dict(num), config).savefig(io.BytesIO(), format="png")
    ti, di, ci = (num[sc] for sc in ewc.SCENARIOS)
    # rows per scenario: fine-tuning + one strength of each of the 4 penalties
    assert ci["matrix"].shape == (5, 1, 5, 5)
    ft = {sc: num[sc]["matrix"][0].mean(0) for sc in ewc.SCENARIOS}  # (T, T), fine-tuning
    # Fine-tuning learns task 1, then forgets it completely in class-IL: the new tasks'
    # classes take over the shared 10-way head ...
    assert ft["class-IL"][0, 0] > 0.9 and ft["class-IL"][-1, 0] < 0.1
    # ... while with the task identity given (task-IL) the same training keeps it
    assert ft["task-IL"][-1, 0] > 0.8
    assert ti["ours"]["fine-tuning"].mean() > ci["ours"]["fine-tuning"].mean() + 0.4
    # joint training on all tasks at once is far above fine-tuning in class-IL
    assert ci["ours"]["joint"].mean() > ci["ours"]["fine-tuning"].mean() + 0.3
    # verdicts are computed from ours and Hsu et al.'s numbers
    for o in (ti, di, ci):
        for arm, v in o["verdict"].items():
            diff = o["ours"][arm].mean() - o["published"][arm]
            assert (v == "agrees") == (abs(diff) <= config["tolerance"])
