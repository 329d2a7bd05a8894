import json

import numpy as np
import pytest

from jreg.experiments.runner import run_experiment

pytestmark = pytest.mark.standard_promotion


def test_augmentation_quick(tmp_path):
    rec = run_experiment(
        "augmentation",
        quick=True,
        out=str(tmp_path),
        progress=False,
        overrides={"n_train": 100, "n_test": 200, "num_epochs": 8, "seeds": 2},
    )
    for suffix in (".png", ".json"):
        assert (tmp_path / f"augmentation{suffix}").stat().st_size > 1000
    assert "augmentation" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "augmentation.json").read_text())["config"]["seeds"] == 2
    curves = rec["numbers"]["curves"]
    plain, shifted = curves["no augmentation"], curves["shift augmentation"]
    # The plain model interpolates its 100 digits; shifted inputs keep the clean training
    # loss well above the plain model's (augmentation is a regularizer).
    assert np.min(np.asarray(plain["train_accuracy"])[:, -1]) == 1.0
    assert np.mean(np.asarray(shifted["train_loss"])[:, -1]) > 3 * np.mean(
        np.asarray(plain["train_loss"])[:, -1]
    )
    assert all(s > 0 for s in rec["numbers"]["plain_interpolation_step_per_seed"])


def test_unknown_experiment():
    with pytest.raises(ValueError, match="available: augmentation"):
        run_experiment("augmentaton", quick=True)
