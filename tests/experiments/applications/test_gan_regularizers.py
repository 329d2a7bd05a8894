import numpy as np
import pytest

from jreg import data
from jreg.analysis import metrics
from jreg.experiments.applications import gan_regularizers as gr

pytestmark = pytest.mark.standard_promotion  # Adam


def test_mixture_samples_are_all_high_quality_and_cover_every_mode(key):
    for name, want in (("ring", 8), ("grid", 25)):
        centers, std = gr.mixture_centers(name), gr.MIXTURES[name]["std"]
        assert centers.shape == (want, 2)
        x = data.gaussian_mixture(key, 2500, centers, std)
        out = metrics.mode_coverage(x, centers, std)
        assert float(out["modes"]) == want
        assert float(out["high_quality"]) > 0.98  # P(‖ε‖ < 3σ) = 1 − e^{−4.5} ≈ 0.989 in 2-D
        assert float(out["kl"]) < 0.05


def test_gan_regularizers_quick():
    config = gr.get_config(quick=True) | {"mixtures": ("ring",), "seeds": 2, "num_steps": 200}
    num = gr.compute(config)
    r = num["mixtures"]["ring"]
    n_arms = len(config["r1_gammas"]) + len(config["gp_lams"]) + len(config["sn_max_norms"])
    assert len(r["arms"]) == n_arms and r["arms"][0] == "unregularized"
    for k in ("modes", "high_quality"):
        assert np.asarray(r[k]).shape == (n_arms, 2)
    assert np.all((r["modes"] >= 0) & (r["modes"] <= 8))
    assert np.all((r["high_quality"] >= 0) & (r["high_quality"] <= 1))
    assert np.asarray(r["samples"]).shape == (n_arms, 1000, 2)
    # Dirac-GAN (Mescheder et al. 2018), alternating GD from (1, 1): the unregularized GAN
    # circles at the start distance, WGAN-GP does not bring the generator to the data,
    # R1 converges to the equilibrium.
    d = num["dirac"]
    dist = np.asarray(d["distance"])
    np.testing.assert_allclose(dist[0], np.sqrt(2.0), rtol=0.1)
    assert abs(d["theta"][1][-1]) > 0.5
    assert dist[2][-1] < 1e-3
    assert len(num["notes"]) == 1 + 3
    fig = gr.figure(num, config)  # smoke check: draws from the numbers only
    assert len(fig.axes) == 2 * n_arms
