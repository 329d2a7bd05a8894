import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from jreg.experiments.classic import augmentation
from jreg.experiments.runner import run_experiment, to_json

pytestmark = pytest.mark.standard_promotion  # optax.adam

TINY = {"n_train": 100, "n_test": 200, "num_epochs": 8, "seeds": 2}


def test_augmentation_quick():
    config = augmentation.get_config(quick=True) | TINY
    n = augmentation.compute(config)
    curves = n["curves"]
    plain, shifted = curves["no augmentation"], curves["shift augmentation"]
    assert np.asarray(plain["train_accuracy"]).shape[0] == 2
    # The plain model interpolates its 100 digits; shifted inputs keep the clean training
    # loss well above the plain model's (augmentation is a regularizer).
    assert np.min(plain["train_accuracy"][:, -1]) == 1.0
    assert np.mean(shifted["train_loss"][:, -1]) > 3 * np.mean(plain["train_loss"][:, -1])
    assert np.all(n["plain_interpolation_step_per_seed"] > 0)
    assert set(n["headline"]) >= {"final test acc, plain", "final test acc, shifted"}
    # The controlled arm (plain model, larger Adam ε) trains and interpolates too; the
    # post-interpolation comparison is paired per seed over a non-empty window.
    eps_arm = curves["no augmentation, Adam ε=1e-6"]
    assert np.min(eps_arm["train_accuracy"][:, -1]) == 1.0
    post = n["post_interpolation"]
    assert np.all(post["window_evaluations"] > 0)
    assert post["stable_window_difference"].shape == (2,)
    assert len(post["after_interpolation_difference"]) == 2
    for d in post["after_interpolation_difference"].values():
        assert np.all(np.isfinite(d))
    assert all(isinstance(s, str) for s in n["notes"])
    json.dumps(to_json(n))
    fig = augmentation.figure(n, config)  # smoke: draws from the numbers alone
    assert len(fig.axes) == 3
    plt.close(fig)


def test_unknown_experiment():
    with pytest.raises(ValueError, match="available: augmentation"):
        run_experiment("augmentaton", quick=True)
