import numpy as np

from jreg.experiments.runner import run_experiment

TINY = {"n_test": 300, "seeds": 3, "num_epochs": 120}


def test_early_stopping_tiny(tmp_path):
    rec = run_experiment(
        "early_stopping", quick=True, out=str(tmp_path), progress=False, overrides=TINY
    )
    for suffix in (".png", ".json"):
        assert (tmp_path / f"early_stopping{suffix}").stat().st_size > 1000
    n = rec["numbers"]
    # The report says which dataset was used (Fashion-MNIST where prepared, else MNIST).
    assert n["dataset"] in ("fashion_mnist", "mnist_digits")
    assert n["dataset"].split("_")[0] in rec["notes"][0].lower()
    steps = np.asarray(n["step"])
    test_loss = np.asarray(n["test_loss"])  # (S, T)
    total = n["total_steps"]
    assert steps[-1] == total
    # The test loss reaches its minimum before the end of training and then rises.
    assert np.all(np.asarray(n["min_test_loss_step"]) < total)
    assert np.mean(test_loss[:, -1]) > np.mean(n["min_test_loss"])
    # Energy of the first-layer change moves from the top principal components to the rest.
    e10 = np.asarray(n["energy_at_marked"]["E<=10"]).mean(axis=0)  # (num marked times,)
    assert len(n["marked_steps"]) >= 6
    assert e10[0] > e10[-1]
    cum = np.asarray(n["cumulative_energy_at_marked"])
    np.testing.assert_allclose(cum[..., -1], 1.0, rtol=1e-5)
    # Early stopping on the validation split fires before the last step.
    es = n["early_stopping"]
    assert np.all(np.asarray(es["stop_step"]) < total)
    assert np.all(np.asarray(es["best_step"]) < np.asarray(es["stop_step"]))
