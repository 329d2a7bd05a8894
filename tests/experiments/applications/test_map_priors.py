import jax
import numpy as np
import pytest

from jreg import experiments
from jreg.analysis import linear
from jreg.experiments.applications import map_priors


@pytest.fixture(scope="module")
def numbers():
    cfg = map_priors.get_config(quick=True)
    return cfg, map_priors.compute(cfg)


def test_gaussian_map_is_ridge_and_posterior_mean(numbers):
    cfg, num = numbers
    shape = (cfg["seeds"], cfg["strengths"])
    assert num["gap_gd_ridge"].shape == shape
    # Trained MAP = Ridge(λ = σ²/τ²) = E[w | y], to float64 precision.
    assert num["gap_gd_ridge"].max() < 1e-10
    assert num["gap_ridge_posterior_mean"].max() < 1e-10
    np.testing.assert_allclose(num["strengths"][0], cfg["noise_std"] ** 2 / num["tau"] ** 2)
    assert num["zeros"][0].sum() == 0  # a Gaussian prior never gives exact zeros


def test_laplace_map_is_lasso_with_exact_zeros(numbers):
    cfg, num = numbers
    assert num["gap_ista_lasso"].max() < 1e-9
    assert num["zero_pattern_equal"].all()
    # α = σ²/(n b) (sklearn's 1/(2n) convention).
    np.testing.assert_allclose(num["alpha"], cfg["noise_std"] ** 2 / (cfg["n"] * num["b"]))
    zeros = num["zeros"][1]  # (S, K), increasing with the strength σ²/b
    assert zeros.sum() > 0 and zeros[:, 0].max() == 0 and zeros[:, -1].min() == cfg["d"]
    assert np.all(np.diff(num["path_zeros"][0], axis=-1) == 0)  # ridge path: never a zero
    assert num["objective_gap"][:, -1].max() < 1e-12  # trained to the closed-form optimum
    assert len(num["notes"]) == 4 and num["headline"]


def test_penalty_gradients_near_zero(numbers):
    cfg, num = numbers
    w, lam = num["gradient_w"], cfg["gradient_lambda"]
    np.testing.assert_allclose(num["gradient_l2"], 2 * lam * w, atol=1e-12)
    np.testing.assert_allclose(num["gradient_l1"], lam * np.sign(w), atol=1e-12)


def test_mapping_on_one_problem_against_map_task():
    """One data set, one b: the prox-gradient task's fixed point is lasso(σ²/(n b))."""
    with jax.enable_x64(True):
        x, y, _ = map_priors.make_data(jax.random.key(3), 30, 5, noise_std=0.5, true_scale=1.0)
        var, b = 0.25, 0.5
        fit = linear.lasso(x, y, var / (30 * b), fit_intercept=False)
        u = lambda w: map_priors.neg_log_posterior("laplace", w, x, y, b, var)
        # The lasso minimizes U: no coordinate perturbation lowers it.
        for j in range(5):
            for eps in (1e-4, -1e-4):
                assert u(fit.coef.at[j].add(eps)) >= u(fit.coef) - 1e-12


def test_map_priors_figure(numbers):
    fig = map_priors.figure(numbers[1], numbers[0])
    assert len(fig.axes) == 6 and all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)


def test_map_priors_registered():
    assert "map_priors" in experiments.NAMES and "map_priors" in experiments.APPLICATIONS
