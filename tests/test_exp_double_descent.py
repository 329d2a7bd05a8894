"""double_descent / epochwise_double_descent at --quick size: the numbers they are about."""

import jax
import numpy as np
import pytest

from jreg.core import train
from jreg.experiments.implicit import double_descent, epochwise_double_descent
from jreg.nn import models

pytestmark = pytest.mark.standard_promotion


def test_summarize_finds_threshold_minimum_and_peak():
    test = np.array([0.7, 0.5, 0.45, 0.6, 0.55, 0.4])
    train = np.array([0.6, 0.3, 0.1, 0.0, 0.0, 0.0])
    s = double_descent.summarize(test, train)
    assert s["threshold_index"] == 3 and s["small_min_index"] == 2 and s["peak_index"] == 3
    assert s["peak_above_small_min"] == pytest.approx(0.15)
    assert s["peak_above_largest"] == pytest.approx(0.2)
    assert double_descent.summarize(test, train + 0.1)["threshold_index"] is None


def test_prepare_flips_exactly_the_fraction():
    cfg = double_descent.get_config(quick=True)
    ds, flipped = double_descent.prepare(cfg)
    y, y_noisy = ds["train"]["y"], ds["train"]["y_noisy"]
    assert flipped.sum() == round(0.15 * cfg["n_train"])
    assert np.all(y_noisy[flipped] != y[flipped]) and np.all(y_noisy[~flipped] == y[~flipped])
    assert "y_noisy" not in ds["test"]


def test_width_task_trains_on_noisy_and_tests_on_clean_labels():
    """``noisy`` selects the training labels; the test split is always scored clean."""
    cfg = double_descent.get_config(quick=True)
    ds, _ = double_descent.prepare(cfg)
    task = double_descent.width_family(cfg).make(16)
    for noisy in (0.0, 1.0):
        hp = {"width": 5.0, "noisy": noisy}
        state = task.init(jax.random.key(0), hp)
        ev = task.evaluate(state, ds, hp)
        small = [
            {"w": state["params"][0]["w"][:, :5], "b": state["params"][0]["b"][:5]},
            {"w": state["params"][1]["w"][:5, :5], "b": state["params"][1]["b"][:5]},
            {"w": state["params"][2]["w"][:5, :], "b": state["params"][2]["b"]},
        ]
        pred = lambda x: np.argmax(models.mlp_apply(small, x, activation="relu"), -1)  # noqa: E731
        y_train = ds["train"]["y_noisy" if noisy else "y"]
        assert float(ev["train_error"]) == pytest.approx(np.mean(pred(ds["train"]["x"]) != y_train))
        assert float(ev["test_error"]) == pytest.approx(
            np.mean(pred(ds["test"]["x"]) != ds["test"]["y"])
        )
    assert isinstance(task, train.Task)


def test_double_descent_quick():
    cfg = double_descent.get_config(quick=True)
    num = double_descent.compute(cfg)
    head = num["headline"]
    ws = np.asarray(num["widths"])
    assert ws.shape == (8,) and np.all(np.diff(ws) > 0)
    noisy, clean = "15% label noise", "clean labels"
    assert list(num["test_error"]) == [noisy, clean]
    tr_noisy = num["train_error"][noisy].mean(-1)  # (P,) mean over seeds
    tr_clean = num["train_error"][clean].mean(-1)
    te_noisy = num["test_error"][noisy].mean(-1)
    te_clean = num["test_error"][clean].mean(-1)
    # Capacity: the narrowest net cannot fit, the widest fits the noisy labels exactly
    # (train error is a mean of mistakes: exactly 0.0 when it interpolates).
    assert tr_noisy[0] > 0.4 and tr_noisy[-1] == 0.0
    # The interpolation threshold is the first width with zero noisy training error, and
    # clean labels are interpolated no later than noisy ones.
    thr = head["interpolation threshold width (noisy)"]
    assert thr == ws[np.flatnonzero(tr_noisy == 0.0)[0]]
    assert np.flatnonzero(tr_clean == 0.0)[0] <= np.flatnonzero(tr_noisy == 0.0)[0]
    # Label noise costs test error at every width past the threshold.
    past = ws >= thr
    assert np.all(te_noisy[past] > te_clean[past])
    assert head["largest-width test error (noisy)"] == pytest.approx(te_noisy[-1])
    assert sorted(sum(num["buckets"], [])) == list(ws)
    assert double_descent.figure(num, cfg).axes  # figure smoke check (draws from numbers)


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
