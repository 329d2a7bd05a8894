import numpy as np
import pytest

from jreg.experiments.runner import run_experiment

pytestmark = pytest.mark.standard_promotion  # optax.adam

TINY = {
    "num_epochs": 150,
    "eval_every": 50,
    "seeds": 2,
    "n_test": 400,
    "mc_samples": 30,
    "grid_resolution": 30,
}


def test_dropout_quick(tmp_path):
    rec = run_experiment("dropout", quick=True, out=str(tmp_path), progress=False, overrides=TINY)
    for suffix in (".png", ".json"):
        assert (tmp_path / f"dropout{suffix}").stat().st_size > 1000
    assert "dropout" in (tmp_path / "report.md").read_text()
    num = rec["numbers"]
    agree = num["agreement_with_deterministic"]
    avg, single = np.asarray(agree["mc_average"]), np.asarray(agree["single_pass"])
    assert single.shape == (2, 30)
    # Averaging many dropout-on passes recovers the dropout-off classifier; a single pass
    # (one thinned network) disagrees with it more.
    assert np.all(avg > 0.9)
    assert np.all(single.mean(axis=1) < avg)
    gap = num["grid_mean_abs_p_diff_from_deterministic"]
    assert np.all(np.asarray(gap["single_pass"]).mean(axis=1) > np.asarray(gap["mc_average"]))
    # Dropout makes the training objective (dropout on) higher than without.
    obj = num["final_train_objective"]
    assert np.mean(obj["dropout"]) > np.mean(obj["no dropout"])
    for values in num["test_accuracy"].values():
        assert np.all((np.asarray(values) > 0.5) & (np.asarray(values) <= 1.0))
