import jax
import numpy as np
import pytest

from jreg import data, experiments
from jreg.experiments.applications import viral_escape


def test_dms_escape_generator():
    kw = dict(num_sites=12, num_substitutions=5, num_surface=4, num_hotspots=2)
    g = data.dms_escape(400, key=jax.random.key(0), **kw)
    assert g["x"].shape == (400, 60) and g["y"].shape == (400,) and g["effects"].shape == (60,)
    # One-hot: at most one substitution per site; Poisson(3) mutations on average.
    assert g["x"].reshape(400, 12, 5).sum(-1).max() == 1
    assert abs(g["x"].sum(1).mean() - 3.0) < 0.3
    # Effects only at hotspots, and hotspots are surface sites.
    site_has_effect = (g["effects"].reshape(12, 5) != 0).any(1)
    assert not (site_has_effect & ~g["hotspot"]).any() and site_has_effect.any()
    assert (
        g["hotspot"].sum() == 2 and g["surface"].sum() == 4 and (g["hotspot"] <= g["surface"]).all()
    )
    np.testing.assert_allclose(g["latent"], g["x"] @ g["effects"], rtol=1e-5, atol=1e-6)
    # Reproducible from the key; the library does not depend on n.
    again = data.dms_escape(50, key=jax.random.key(0), **kw)
    np.testing.assert_array_equal(again["effects"], g["effects"])
    np.testing.assert_array_equal(again["surface"], g["surface"])


@pytest.fixture(scope="module")
def quick():
    cfg = viral_escape.get_config(quick=True)
    return cfg, viral_escape.compute(cfg)


def test_viral_escape_quick_claim(quick):
    cfg, num = quick
    m = {name: k for k, name in enumerate(num["methods"])}
    corr, auroc, r2 = num["correlation"], num["auroc"], num["r2"]
    assert corr.shape == (len(cfg["train_fractions"]), cfg["seeds"], 5)
    # n ≪ d (n = d/10): the surface-site prior beats plain ridge in finding escape sites
    # and in estimating the effects.
    assert auroc[0, :, m["weighted ridge"]].mean() > auroc[0, :, m["ridge"]].mean()
    assert corr[0, :, m["weighted ridge"]].mean() > corr[0, :, m["ridge"]].mean() + 0.05
    # n = d: the sparse (Laplace) fits beat ridge on effects and held-out R², with few
    # non-zero coefficients, and every fit finds the escape sites.
    for k in ("lasso", "weighted lasso"):
        assert corr[-1, :, m[k]].mean() > corr[-1, :, m["ridge"]].mean() + 0.1
        assert r2[-1, :, m[k]].mean() > r2[-1, :, m["ridge"]].mean() + 0.1
    assert num["nonzero"][-1, :, m["lasso"]].max() < num["nonzero"][-1, :, m["ridge"]].min() / 3
    assert auroc[-1].min() > 0.95
    assert num["kkt"].max() <= cfg["tol"] * 1.01  # coordinate descent converged
    assert len(num["notes"]) == 6 and num["headline"]


def test_viral_escape_figure(quick):
    fig = viral_escape.figure(quick[1], quick[0])
    assert len(fig.axes) == 4 and all(ax.get_xlabel() for ax in fig.axes)


def test_viral_escape_registered():
    assert "viral_escape" in experiments.NAMES and "viral_escape" in experiments.APPLICATIONS
