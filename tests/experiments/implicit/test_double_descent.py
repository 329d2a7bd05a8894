"""double_descent at --quick size: the numbers it is about."""

import jax
import numpy as np
import pytest

from jreg.core import train
from jreg.experiments.implicit import double_descent
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
