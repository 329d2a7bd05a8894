import numpy as np

from jreg.experiments.runner import run_experiment


def test_max_margin_quick(tmp_path):
    # Easier data than the full run (wide gap, isotropic cloud) so 5,000 steps suffice.
    rec = run_experiment(
        "max_margin",
        quick=True,
        out=str(tmp_path),
        progress=False,
        overrides={
            "num_steps": 5_000,
            "num_checkpoints": 20,
            "n": 40,
            "gap": 0.5,
            "aniso": 1.0,
            "seeds": 3,
        },
    )
    assert (tmp_path / "max_margin.png").stat().st_size > 1000
    num = rec["numbers"]
    cos = np.asarray(num["cosine"])  # (S, T)
    ratio = np.asarray(num["margin_ratio"])
    assert cos.shape == ratio.shape == (3, len(num["step"]))
    # The GD direction ends aligned with the hard-margin SVM direction ...
    assert np.min(cos[:, -1]) > 0.99
    # ... its normalized margin approaches (and never exceeds) the SVM margin ...
    assert np.all(np.abs(ratio[:, -1] - 1.0) < 0.05)
    assert np.all(ratio <= 1.0 + 1e-4)
    # ... and the alignment improves over log-time: later thirds beat earlier ones.
    mean = cos.mean(axis=0)
    thirds = [part.mean() for part in np.array_split(mean, 3)]
    assert thirds[0] < thirds[1] < thirds[2]
    assert mean[-1] > mean[0]
