import json

import matplotlib.pyplot as plt
import numpy as np

from jreg.experiments.classic import label_smoothing
from jreg.experiments.runner import to_json

TINY = {
    "n_train": 200,
    "n_test": 2000,
    "num_epochs": 80,
    "eval_every": 40,
    "seeds": 3,
    "epsilons": (0.0, 0.015, 0.05),
}


def test_label_smoothing_tiny():
    config = label_smoothing.get_config(quick=True) | TINY
    n = label_smoothing.compute(config)
    eps = n["epsilon"]
    assert eps[0] == 0.0
    ece = n["ece"]  # (H, S)
    assert ece.shape == (3, 3)
    # The unsmoothed model interpolates its training digits...
    assert np.all(n["train_accuracy_final"][0] == 1.0)
    # ...and is over-confident on the test set: mean confidence > accuracy for every seed.
    assert np.all(n["confidence_minus_accuracy"][0] > 0)
    # Label smoothing improves calibration: the ECE at eps=0 is not the smallest.
    assert np.mean(ece[0]) > np.min(np.mean(ece, axis=1))
    assert n["argmin_epsilon"] > 0
    # Smoothing lowers the confidence of the mistakes.
    frac = n["frac_wrong_conf_above_level"].mean(axis=1)
    assert frac[-1] < frac[0]
    # Reliability curves: 15 quantile bins per (eps, seed).
    assert n["reliability"]["bin_accuracy"].shape == (3, 3, 15)
    # The arg-min's bootstrap over seeds: an interval on the grid, frequencies summing to 1.
    boot = n["bootstrap"]
    lo, hi = boot["argmin_interval"]
    assert eps.min() <= lo <= hi <= eps.max()
    np.testing.assert_allclose(boot["argmin_freq"].sum(), 1.0)
    assert boot["compare"]["ece_difference"].shape == (3,)
    json.dumps(to_json(n))
    fig = label_smoothing.figure(n, config)  # smoke: draws from the numbers alone
    assert len(fig.axes) == 4
    plt.close(fig)
