"""double_descent / epochwise_double_descent at --quick size: the numbers they are about."""

import numpy as np
import pytest

from jreg.experiments import double_descent
from jreg.experiments.runner import run_experiment

pytestmark = pytest.mark.standard_promotion


def test_summarize_finds_threshold_minimum_and_peak():
    test = np.array([0.7, 0.5, 0.45, 0.6, 0.55, 0.4])
    train = np.array([0.6, 0.3, 0.1, 0.0, 0.0, 0.0])
    s = double_descent.summarize(test, train)
    assert s["threshold_index"] == 3 and s["small_min_index"] == 2 and s["peak_index"] == 3
    assert s["peak_above_small_min"] == pytest.approx(0.15)
    assert s["peak_above_largest"] == pytest.approx(0.2)
    assert double_descent.summarize(test, train + 0.1)["threshold_index"] is None


def test_double_descent_quick(tmp_path):
    rec = run_experiment("double_descent", quick=True, out=str(tmp_path), progress=False)
    assert (tmp_path / "double_descent.png").stat().st_size > 1000
    num, head = rec["numbers"], rec["headline"]
    ws = np.asarray(num["widths"])
    assert ws.shape == (8,) and np.all(np.diff(ws) > 0)
    noisy, clean = "15% label noise", "clean labels"
    tr_noisy = np.asarray(num["train_error"][noisy]).mean(-1)  # (P,) mean over seeds
    tr_clean = np.asarray(num["train_error"][clean]).mean(-1)
    te_noisy = np.asarray(num["test_error"][noisy]).mean(-1)
    te_clean = np.asarray(num["test_error"][clean]).mean(-1)
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


def test_epochwise_quick(tmp_path):
    rec = run_experiment("epochwise_double_descent", quick=True, out=str(tmp_path), progress=False)
    num = rec["numbers"]
    ws = [int(w) for w in num["widths"]]
    per = {int(k): v for k, v in num["per_width"].items()}
    train = np.asarray(num["train_error"])  # (P, S, T)
    assert train.shape[:2] == (3, 2) and train.shape[2] == len(num["epochs"]) == 40
    # Wider nets interpolate the noisy labels sooner; the narrowest never does.
    assert per[ws[0]]["interpolates_at_epoch"] is None
    assert per[ws[2]]["interpolates_at_epoch"] < per[ws[1]]["interpolates_at_epoch"]
    # Once interpolating, the training error stays at zero.
    i = list(num["epochs"]).index(per[ws[1]]["interpolates_at_epoch"])
    assert np.all(train[1, :, i:] == 0.0)
    # At the end, the widest net has the lowest test error (the second descent).
    finals = [per[w]["final_error"] for w in ws]
    assert finals[2] < finals[1] < finals[0]
    for w in ws:
        assert per[w]["best_error"] <= per[w]["final_error"]
