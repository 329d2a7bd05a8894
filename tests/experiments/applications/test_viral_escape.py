import numpy as np
import pytest

from jreg import experiments
from jreg.experiments.applications import viral_escape


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
    assert len(num["notes"]) == 9 and num["headline"]


def test_viral_escape_prior_quality(quick):
    cfg, num = quick
    qs = list(cfg["prior_qualities"])
    assert qs[0] == 0.0 and qs[-1] == 1.0
    # The oracle prior is the true labelling and favours every hotspot (by construction:
    # hotspots are drawn among surface sites); the random one is not and does not.
    assert np.all(num["prior_agreement"][:, -1] == 1) and np.all(
        num["prior_hotspot_recall"][:, -1] == 1
    )
    assert num["prior_hotspot_recall"][:, 0].mean() < 0.8
    # The prior's AUROC gain comes from its information: at n = d/10 the weighted fits with
    # the oracle prior rank escape sites better than with random labels.
    auc = num["prior_auroc"][0]  # (S, Q, 2)
    assert np.all(auc[:, -1].mean(0) > auc[:, 0].mean(0))


def test_viral_escape_figure(quick):
    fig = viral_escape.figure(quick[1], quick[0])
    assert len(fig.axes) == 5 and all(ax.get_xlabel() for ax in fig.axes)


def test_viral_escape_registered():
    assert "viral_escape" in experiments.NAMES and "viral_escape" in experiments.APPLICATIONS
