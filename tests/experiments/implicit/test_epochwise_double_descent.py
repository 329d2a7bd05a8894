"""epochwise_double_descent at --quick size: the numbers it is about."""

import numpy as np
import pytest

from jreg.experiments.implicit import epochwise_double_descent

pytestmark = pytest.mark.standard_promotion


def test_epochwise_quick():
    cfg = epochwise_double_descent.get_config(quick=True)
    num = epochwise_double_descent.compute(cfg)
    ws = [int(w) for w in num["widths"]]
    per = num["per_width"]
    train = num["train_error"]  # (P, S, T)
    assert train.shape[:2] == (3, 2) and train.shape[2] == len(num["epochs"]) == 40
    assert num["epochs"][0] == 5 and num["epochs"][-1] == cfg["num_epochs"]
    # Wider nets interpolate the noisy labels sooner; the narrowest never does.
    assert per[ws[0]]["interpolates_at_epoch"] is None
    assert per[ws[2]]["interpolates_at_epoch"] < per[ws[1]]["interpolates_at_epoch"]
    # Once interpolating, the training error stays at zero.
    i = list(num["epochs"]).index(per[ws[1]]["interpolates_at_epoch"])
    assert np.all(train[1, :, i:] == 0.0)
    # At the end, the widest net has the lowest test error.
    finals = [per[w]["final_error"] for w in ws]
    assert finals[2] < finals[1] < finals[0]
    for w in ws:
        assert per[w]["best_error"] <= per[w]["final_error"]
    # The long runs: both noise levels, every long width, summaries from the curves.
    long = num["long"]
    assert long["test_error"].shape == (2, 2, 1, 40) and long["epochs"][-1] == 400
    for i, (noise, summary) in enumerate(long["summary"].items()):
        found = [w for w, d in summary.items() if d["detected"]]
        key = f"{noise} noise, 400 epochs: second descent at widths"
        assert num["headline"][key] == (", ".join(map(str, found)) or "none")
        for j, d in summary.items():
            k = list(summary).index(j)
            again = epochwise_double_descent.second_descent(
                long["epochs"], long["test_error"][i, k], long["train_error"][i, k], smooth=5
            )
            assert d == again
            assert d["early_min_epoch"] <= d["peak_epoch"] <= d["late_min_epoch"]
            assert d["peak_error"] >= d["late_min_error"]
    # Training longer on noisier labels: the narrow net never fits them, the wider one does.
    assert np.all(long["train_error"][:, 0, :, -1] > 0)
    assert np.all(long["train_error"][:, 1, :, -1] == 0)


def test_second_descent_on_synthetic_curves():
    epochs = np.arange(10, 4010, 10)
    t = np.log(epochs)
    fit = (epochs >= 100)[None] * 0.0 + (epochs < 100)[None] * 0.1  # fits from epoch 100
    detect = lambda curve: epochwise_double_descent.second_descent(  # noqa: E731
        epochs, curve[None], fit, smooth=5
    )
    d = detect(0.5 + 0.05 * np.exp(-((t - 5.5) ** 2)) - 0.02 * (t < 3.5))
    assert d["detected"] and d["early_min_epoch"] < d["peak_epoch"] < d["late_min_epoch"]
    assert 200 <= d["peak_epoch"] <= 300 and d["fall_to_final"] > 0.04
    assert not d["below_early_min"] and d["fluctuation"] < 1e-3
    assert d["interpolates_at_epoch"] == 100 and d["final_train_error"] == 0.0
    assert not detect(0.5 + 0.01 * t)["detected"]  # rises and stays up
    rng = np.random.default_rng(0)  # pure evaluation noise: never a detection
    assert not any(detect(0.5 + 0.01 * rng.normal(size=epochs.size))["detected"] for _ in range(50))
    np.testing.assert_allclose(
        epochwise_double_descent.running_mean(np.arange(5.0), 3), [0.5, 1, 2, 3, 3.5]
    )
