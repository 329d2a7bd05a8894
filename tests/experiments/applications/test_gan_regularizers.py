import jax
import numpy as np
import pytest

from jreg import data
from jreg.analysis import metrics
from jreg.experiments import kit
from jreg.experiments.applications import gan_regularizers as gr
from jreg.experiments.applications.gan_regularizers import compare

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


def test_uniform_cloud_scores_its_area_fraction():
    # The chance floor: a uniform cloud on [−5, 5]² is high quality exactly on the 25
    # discs of radius 3σ, area fraction 25 π 0.15² / 100 ≈ 1.77 %; 2,500 samples × 4 draws
    # put the mean within ~0.3 % of it (3 binomial standard errors).
    config = gr.get_config(quick=True) | {"seeds": 4}
    for name in ("grid", "ring"):
        centers, std = gr.mixture_centers(name), gr.MIXTURES[name]["std"]
        c = compare.chance(config, centers, std)
        p, n = c["uniform_formula"], 4 * config["eval_samples"]
        assert abs(c["high_quality"][0].mean() - p) < 3 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(gr.get_config()["eval_samples"], 2500)
    assert c["modes"].shape == c["high_quality"].shape == (2, 4)


def test_gan_regularizers_quick():
    config = gr.get_config(quick=True) | {"mixtures": ("ring",), "families": ("r1",)}
    num = gr.compute(config)
    r = num["mixtures"]["ring"]
    assert r["arms"] == ["unregularized", "R1 γ=1"]
    for k in ("modes", "high_quality", "dropped"):
        assert np.asarray(r[k]).shape == (2, 2)
    assert np.all((r["modes"] >= 0) & (r["modes"] <= 8))
    assert np.asarray(r["samples"]).shape == (2, 1000, 2)
    v = num["verdicts"]["ring"]
    assert set(v["unregularized vs VEEGAN GAN (modes)"].split()) <= {"agrees", "better", "worse"}
    # Dirac-GAN (Mescheder et al. 2018), alternating GD from (1, 1): the unregularized GAN
    # circles at the start distance, WGAN-GP does not bring the generator to the data,
    # R1 converges to the equilibrium.
    d = num["dirac"]
    dist = np.asarray(d["distance"])
    np.testing.assert_allclose(dist[0], np.sqrt(2.0), rtol=0.1)
    assert abs(d["theta"][1][-1]) > 0.5
    assert dist[2][-1] < 1e-3
    fig = gr.figure(num, config)  # smoke check: draws from the numbers only
    assert len(fig.axes) == 2 * 4  # (1 mixture + comparisons) × (2 arms + 2 chance clouds)


def test_spectral_norm_bounds_every_d_layer_and_the_slope(key):
    # Every D weight matrix is projected onto σ_max ≤ c, so D's slope in the data's
    # coordinates is at most c^3 / max|center| (3 layers, ReLU 1-Lipschitz, input / 4):
    # with c = 1 on the grid D varies by < 0.25 per unit, too flat to pick out σ = 0.05 modes.
    config = gr.get_config(quick=True) | {"seeds": 1, "num_steps": 20, "eval_every": 20}
    task, stream = gr.make_task(config, "sn", "grid")
    z = jax.random.normal(key, (64, 2))
    res = kit.QUIET.sweep(
        task, {"z": z, "centers": gr.mixture_centers("grid")}, stream=stream, seeds=1,
        num_steps=20, eval_every=20, hparams={"max_norm": np.asarray([1.0, 8.0], np.float32)},
    )  # fmt: skip
    x = jax.random.uniform(key, (2000, 2), minval=-5.0, maxval=5.0)
    for a, c in enumerate((1.0, 8.0)):
        d = jax.tree.map(lambda w, a=a: w[a, 0], res.state["d"])
        sig = [np.linalg.norm(np.asarray(p["w"]), 2) for p in d]
        assert len(sig) == 3 and max(sig) <= c * 1.01
        disc = lambda u, d=d: gr.models.mlp_apply(d, u / 4.0, activation="relu")[..., 0]
        slope = np.linalg.norm(np.asarray(jax.vmap(jax.grad(disc))(x)), axis=1).max()
        assert slope <= np.prod(sig) / 4.0 * 1.01
        assert c > 1 or slope <= 0.25 * 1.01
