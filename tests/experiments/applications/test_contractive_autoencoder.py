import json

import numpy as np
import pytest

from jreg.experiments.applications import contractive_autoencoder as cae
from jreg.experiments.runner import to_json

pytestmark = pytest.mark.standard_promotion  # optax.adam


def test_closed_form_jacobian_matches_autodiff():
    """Rifai et al.'s closed form of ‖J‖²_F for a sigmoid encoder is the autodiff one."""
    import jax

    from jreg.regularizers import activity

    params, _ = cae._autoencoder(784, 16).init(jax.random.key(0), {})
    x = jax.random.uniform(jax.random.key(1), (5, 784))
    auto = activity.jacobian_penalty(lambda v: cae._encode(params, v), x)
    np.testing.assert_allclose(cae.jacobian_sq_norm(params, x), auto, rtol=1e-4)


def test_contractive_autoencoder_quick():
    config = cae.get_config(quick=True)
    num = cae.compute(config)
    n_l, n_s = len(config["lambdas"]), len(config["noises"])
    jac, ratio = num["jacobian_sq_norm"], num["contraction_ratio"]
    assert jac.shape == ratio.shape == num["probe_accuracy"].shape == (n_l, n_s, 1)
    # The contractive penalty contracts the encoder: the largest λ has a smaller input
    # Jacobian and a smaller contraction ratio than λ = 0, at every noise level.
    assert np.all(jac[-1] < jac[0])
    assert np.all(ratio[-1] < ratio[0])
    # The autoencoder learned something: better than predicting the mean image (~52).
    assert np.all(num["reconstruction"] < 45.0)
    assert np.all(num["probe_accuracy"] > 0.3)  # 10 classes, 100 labels
    # The survey's claim (best λ grows with σ) is reported, not assumed: the note must
    # agree with the numbers.
    best = num["best_lambda_by_probe"]
    grows = bool(np.all(np.diff(best) >= 0) and best[-1] > best[0])
    note = next(n for n in num["notes"] if n.startswith("Best λ by probe"))
    assert ("does not hold" not in note) == grows
    # The convergence check is computed from the curves: the stated change over the last
    # tenth of training is the training curve's.
    curve = num["train_curve"]  # (L, N, S, T)
    t = int(np.argmin(np.abs(num["epoch"] - 0.9 * config["num_epochs"])))
    rel = (curve[..., t] - curve[..., -1]) / curve[..., -1]
    np.testing.assert_allclose(num["relative_change_last_tenth"], rel, rtol=1e-6)
    assert np.all(curve[..., -1] < curve[..., 0])  # training lowered the error
    json.dumps(to_json(num))
    import matplotlib.pyplot as plt

    fig = cae.figure(num, config)  # smoke: draws from the numbers alone
    assert len(fig.axes) == 6
    plt.close(fig)
