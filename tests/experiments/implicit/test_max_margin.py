import numpy as np
import pytest

from jreg.core import streams, train
from jreg.experiments.implicit import max_margin

# Easier data than the full run (wide gap, isotropic cloud) so 5,000 steps suffice.
EASY = {"num_steps": 5_000, "num_checkpoints": 20, "n": 40, "gap": 0.5, "aniso": 1.0, "seeds": 3}


def test_max_margin_quick():
    cfg = max_margin.get_config(quick=True) | EASY
    num = max_margin.compute(cfg)
    cos, ratio = num["cosine"], num["margin_ratio"]  # (S, T)
    assert cos.shape == ratio.shape == (3, len(num["step"]))
    assert num["step"][0] == 1 and num["step"][-1] == 5_000
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
    # ‖w(t)‖ keeps growing (no minimiser on separable data).
    assert np.all(np.diff(num["w_norm"], axis=1) > 0)
    assert max_margin.figure(num, cfg).axes  # figure smoke check


def test_logistic_task_is_gradient_descent():
    """Two steps of the task equal w <- w − lr ∇L(w) written out by hand, per data set."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 8, 2)).astype(np.float32)
    y = np.sign(rng.normal(size=(2, 8))).astype(np.float32)
    w0 = rng.normal(size=(2, 2)).astype(np.float32)
    lr = np.array([0.5, 0.1], np.float32)
    data = {"train": {"x": x, "y": y}, "svm_w": np.ones((2, 2), np.float32)}
    res = train.sweep(
        max_margin.logistic_task(w0),
        data,
        stream=streams.full_batch(),
        seeds=[0],
        hparams={"dataset": np.arange(2), "learning_rate": lr},
        num_steps=2,
        eval_every=1,
        progress=False,
    )
    for d in range(2):
        w = w0[d].astype(np.float64)
        for _ in range(2):
            z = x[d] * y[d][:, None]
            w = w + lr[d] * ((1 / (1 + np.exp(z @ w))) @ z) / len(z)
        np.testing.assert_allclose(res.state["w"][d, 0], w, rtol=1e-5)
        margin = np.min(z @ w) / np.linalg.norm(w)
        assert float(res.history["normalized_margin"][d, 0, -1]) == pytest.approx(margin, rel=1e-5)
