import json

import jax
import numpy as np
import pytest

from jreg.experiments.applications import drop_path
from jreg.experiments.runner import to_json

pytestmark = pytest.mark.standard_promotion  # optax.adam


def test_residual_cnn_drops_whole_branches_in_training_only():
    model = drop_path.residual_cnn(40, 10, channels=4, depth=3)
    params, state = model.init(jax.random.key(0), {})
    x = jax.random.normal(jax.random.key(1), (6, 40))
    run = lambda train, rate, k=2: model.apply(
        params, state, x, key=jax.random.key(k), train=train, hp={"drop_path_rate": rate}
    )[0]
    assert run(False, 0.9).shape == (6, 10)
    np.testing.assert_allclose(run(False, 0.9), run(True, 0.0), rtol=1e-5, atol=1e-5)
    assert not np.allclose(run(True, 0.9), run(True, 0.0))  # training draws drop branches
    assert not np.allclose(run(True, 0.9, 2), run(True, 0.9, 3))


def test_drop_path_quick():
    config = drop_path.get_config(quick=True)
    num = drop_path.compute(config)
    tr, te, gap = num["train_accuracy"], num["test_accuracy"], num["train_test_gap"]
    assert tr.shape == te.shape == (2, config["seeds"])
    assert np.all(te > 2 * num["chance_accuracy"])
    # The baseline overfits: it fits the training set and tests clearly below it.
    assert np.all(tr[0] > 0.97) and np.all(gap[0] > 0.05)
    # Drop-path acts in training: the fit at p_L = 0.5 is below that without it, per seed.
    assert np.all(tr[-1] < tr[0])
    rel = num["ours"]["relative_error_reduction_pct"]
    np.testing.assert_allclose(rel, 100 * (1 - (1 - te[-1]) / (1 - te[0])), rtol=1e-5)
    assert num["verdict_relative_error_reduction"] in ("agrees", "better", "worse")
    json.dumps(to_json(num))
    import matplotlib.pyplot as plt

    fig = drop_path.figure(num, config)  # smoke: draws from the numbers alone
    assert len(fig.axes) == 3
    plt.close(fig)
