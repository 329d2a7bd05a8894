import json

import matplotlib.pyplot as plt
import numpy as np

from jreg.experiments.classic import early_stopping
from jreg.experiments.runner import to_json

TINY = {"n_test": 300, "seeds": 3, "num_epochs": 120}


def test_early_stopping_tiny():
    config = early_stopping.get_config(quick=True) | TINY
    n = early_stopping.compute(config)
    # The report says which dataset was used (Fashion-MNIST where prepared, else MNIST).
    assert n["dataset"] in ("fashion_mnist", "mnist_digits")
    assert n["dataset"].split("_")[0] in n["notes"][0].lower()
    steps, test_loss = n["step"], n["test_loss"]  # (T,), (S, T)
    total = n["total_steps"]
    assert steps[-1] == total
    # The test loss reaches its minimum before the end of training and then rises.
    assert np.all(n["min_test_loss_step"] < total)
    assert np.mean(test_loss[:, -1]) > np.mean(n["min_test_loss"])
    # Energy of the first-layer change moves from the top principal components to the rest.
    e10 = n["energy_at_marked"]["E<=10"].mean(axis=0)  # (num marked times,)
    assert len(n["marked_steps"]) >= 6
    assert e10[0] > e10[-1]
    np.testing.assert_allclose(n["cumulative_energy_at_marked"][..., -1], 1.0, rtol=1e-5)
    # Early stopping on the validation split fires before the last step.
    es = n["early_stopping"]
    assert np.all(es["stop_step"] < total)
    assert np.all(es["best_step"] < es["stop_step"])
    # Least squares by GD: the measured per-component factor is the closed form 1 − ηλ_k.
    lin = n["linear_gd_rates"]
    np.testing.assert_allclose(lin["measured"], lin["predicted"], rtol=1e-3)
    assert np.all(np.diff(lin["measured"]) > 0)  # smaller λ_k, slower decay
    json.dumps(to_json(n))
    fig = early_stopping.figure(n, config)  # smoke: draws from the numbers alone
    assert len(fig.axes) == 4
    plt.close(fig)
