import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jreg.experiments.applications import continual_learning as cl
from jreg.experiments.applications.continual_learning import ewc
from jreg.nn import nets

pytestmark = pytest.mark.standard_promotion  # optax.adam


def test_exact_fisher_is_the_expectation_over_classes():
    model = nets.mlp((5, 4, 3), activation="tanh")
    params, _ = model.init(jax.random.key(0), {})
    x = jax.random.normal(jax.random.key(1), (6, 5))
    allowed = jnp.asarray(np.array([[1, 1, 0]] * 3 + [[1, 1, 1]] * 3, bool))
    got = ewc.exact_fisher(model, params, x, allowed)

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


def test_summarize_average_and_forgetting():
    r = np.array([[0.9, 0.1], [0.6, 0.8]])
    s = cl.summarize(r)
    np.testing.assert_allclose(s["average"], 0.7)
    np.testing.assert_allclose(s["forgetting"], 0.3)


def test_continual_learning_quick():
    config = cl.get_config(quick=True)
    num = cl.compute(config)
    cl.figure(dict(num), config).savefig(io.BytesIO(), format="png")
    labs = ("split task-IL", "split class-IL", "permuted domain-IL")
    for lab in labs:
        e = num[lab]
        assert e["matrix"].shape == (4, 2, 5, 5)
        # joint training (all tasks' data from the start) is the upper bound
        assert e["joint_average"].mean() > e["average"][0].mean()
    ti, ci = num["split task-IL"], num["split class-IL"]
    # Fine-tuning forgets: class-incremental accuracy collapses towards 1 task's worth
    # (~0.2), while the task-incremental evaluation of the same networks stays far higher.
    assert ci["average"][0].mean() < 0.4 < ti["average"][0].mean()
    assert ci["forgetting"][0].mean() > 0.3
    # EWC and online EWC (rows 2 and 3, λ=1e4) forget far less than fine-tuning.
    assert np.all(ci["forgetting"][2:].mean(-1) < ci["forgetting"][0].mean())
