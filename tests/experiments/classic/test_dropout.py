import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from jreg.experiments.classic import dropout
from jreg.experiments.runner import to_json

pytestmark = pytest.mark.standard_promotion  # optax.adam

TINY = {
    "num_epochs": 150,
    "eval_every": 50,
    "seeds": 2,
    "n_test": 400,
    "mc_samples": 30,
    "grid_resolution": 30,
}


def test_dropout_quick():
    config = dropout.get_config(quick=True) | TINY
    num = dropout.compute(config)
    agree = num["agreement_with_deterministic"]
    avg, single = agree["mc_average"], agree["single_pass"]
    assert single.shape == (2, 30)
    # Averaging many dropout-on passes recovers the dropout-off classifier; a single pass
    # (one thinned network) disagrees with it more.
    assert np.all(avg > 0.9)
    assert np.all(single.mean(axis=1) < avg)
    gap = num["grid_mean_abs_p_diff_from_deterministic"]
    assert np.all(gap["single_pass"].mean(axis=1) > gap["mc_average"])
    # Dropout makes the training objective (dropout on) higher than without.
    obj = num["final_train_objective"]
    assert np.mean(obj["dropout"]) > np.mean(obj["no dropout"])
    # The blog's shared-mask dropout is a third net: trained, paired with jreg's per seed.
    assert np.mean(obj["dropout, shared mask"]) > np.mean(obj["no dropout"])
    diff = num["shared_minus_per_example"]["test_accuracy"]
    assert diff.shape == (2,) and np.all(np.isfinite(diff))
    for values in num["test_accuracy"].values():
        assert np.all((values > 0.5) & (values <= 1.0))
    json.dumps(to_json(num))
    fig = dropout.figure(num, config)  # smoke: draws from the numbers alone
    assert len(fig.axes) >= 8
    plt.close(fig)
