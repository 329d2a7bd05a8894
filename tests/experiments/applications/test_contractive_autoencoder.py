import json

import numpy as np
import pytest

from jreg.experiments.applications import contractive_autoencoder as cae
from jreg.experiments.runner import to_json

pytestmark = pytest.mark.standard_promotion  # optax.adam


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
    json.dumps(to_json(num))
    import matplotlib.pyplot as plt

    fig = cae.figure(num, config)  # smoke: draws from the numbers alone
    assert len(fig.axes) == 5
    plt.close(fig)
