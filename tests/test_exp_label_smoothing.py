import json

import numpy as np

from jreg.experiments.runner import run_experiment

TINY = {
    "n_train": 200,
    "n_test": 2000,
    "num_epochs": 80,
    "eval_every": 40,
    "seeds": 3,
    "epsilons": (0.0, 0.015, 0.05),
}


def test_label_smoothing_tiny(tmp_path):
    rec = run_experiment(
        "label_smoothing", quick=True, out=str(tmp_path), progress=False, overrides=TINY
    )
    for suffix in (".png", ".json"):
        assert (tmp_path / f"label_smoothing{suffix}").stat().st_size > 1000
    assert json.loads((tmp_path / "label_smoothing.json").read_text())["config"]["seeds"] == 3
    n = rec["numbers"]
    eps = np.asarray(n["epsilon"])
    assert eps[0] == 0.0
    ece = np.asarray(n["ece"])  # (H, S)
    assert ece.shape == (3, 3)
    # The unsmoothed model interpolates its training digits...
    assert np.all(np.asarray(n["train_accuracy_final"])[0] == 1.0)
    # ...and is over-confident on the test set: mean confidence > accuracy for every seed.
    assert np.all(np.asarray(n["confidence_minus_accuracy"])[0] > 0)
    # Label smoothing improves calibration: the ECE at eps=0 is not the smallest.
    assert np.mean(ece[0]) > np.min(np.mean(ece, axis=1))
    assert n["argmin_epsilon"] > 0
    # Smoothing lowers the confidence of the mistakes.
    frac = np.asarray(n["frac_wrong_conf_above_level"]).mean(axis=1)
    assert frac[-1] < frac[0]
    # Reliability curves: 15 quantile bins per (eps, seed).
    assert np.asarray(n["reliability"]["bin_accuracy"]).shape == (3, 3, 15)
