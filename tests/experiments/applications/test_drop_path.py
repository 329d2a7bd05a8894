import json

import numpy as np
import pytest

from jreg.experiments.applications import drop_path
from jreg.experiments.runner import to_json

pytestmark = pytest.mark.standard_promotion  # optax.adam


def test_drop_path_quick():
    config = drop_path.get_config(quick=True)
    num = drop_path.compute(config)
    gap, acc = num["train_test_gap"], num["test_accuracy"]
    assert gap.shape == acc.shape == (4, config["seeds"])
    assert np.all((acc > 0.1) & (acc <= 1.0))
    # Headline: stochastic depth shrinks the train − test gap; the largest rate the most.
    mean_gap = gap.mean(axis=1)
    assert mean_gap[-1] < mean_gap[0]
    assert np.all(gap[-1] < gap[0])  # paired per seed
    assert np.any(np.isclose(num["best_rate"], config["rates"]))
    json.dumps(to_json(num))
    import matplotlib.pyplot as plt

    fig = drop_path.figure(num, config)  # smoke: draws from the numbers alone
    assert len(fig.axes) == 3
    plt.close(fig)
