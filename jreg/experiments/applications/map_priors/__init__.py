"""L2 and L1 penalties as Gaussian and Laplace priors: MAP = ridge, MAP = lasso.

Linear model ``y = Xw + ε``, ``ε ~ N(0, σ² I)``, no intercept. The negative log posterior
(up to constants) under

* a Gaussian prior ``w_j ~ N(0, τ²)``: ``‖y − Xw‖²/(2σ²) + ‖w‖²/(2τ²)``. Times ``2σ²`` it
  is scikit-learn's ``Ridge`` objective ``‖y − Xw‖² + λ‖w‖²`` with **λ = σ²/τ²**, and since
  the posterior is Gaussian its mode is its mean, ``E[w | y] = τ²Xᵀ(τ²XXᵀ + σ²I)⁻¹y``
  (conditioning the joint Gaussian of ``(w, y)``). The reference note's ``1/σ_prior² = 2λ``
  is the same statement for ``σ² = 1`` and a penalty ``λ‖w‖²`` added to ``‖y − Xw‖²/2``.
* a Laplace prior ``p(w_j) = e^{−|w_j|/b} / (2b)``: ``‖y − Xw‖²/(2σ²) + ‖w‖₁/b``. Times
  ``σ²/n`` it is scikit-learn's ``Lasso`` objective ``(1/2n)‖y − Xw‖² + α‖w‖₁`` with
  **α = σ²/(n·b)**. Its minimizer has exact zeros wherever ``|x_jᵀr|/σ² ≤ 1/b``.

The MAP estimates are found by training (:func:`jreg.core.train.sweep` over prior scales and
data sets): gradient descent on the Gaussian posterior, proximal gradient (ISTA,
soft-thresholding) on the Laplace posterior, and compared with :func:`jreg.analysis.linear.ridge`,
the conditional mean, and :func:`jreg.analysis.linear.lasso` — in float64, to float precision.
The paths (coefficients vs strength) and the penalties' gradients near zero (``2λw``
vanishes, ``λ·sign(w)`` does not) show why only L1 gives exact zeros.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jreg.analysis import metrics
from jreg.core import streams
from jreg.experiments import kit
from jreg.experiments.kit import mean_std
from jreg.regularizers import penalties
from jreg.util import checks

from .posterior import closed_forms, make_data, map_task, neg_log_posterior

DESCRIPTION = (
    "MAP under a Gaussian prior = ridge (λ = σ²/τ²) = posterior mean; under a Laplace "
    "prior = lasso (α = σ²/(n b)) with exact zeros; paths and penalty gradients."
)


def get_config(quick: bool = False) -> dict:
    """Small well-posed problems (n > d) so that both MAP problems converge to float64."""
    full = {
        "seeds": 8,  # one data set per seed
        "n": 50,
        "d": 10,
        "noise_std": 1.0,  # σ
        "true_scale": 1.0,  # w_true ~ Laplace(0, true_scale)
        "strengths": 12,  # prior scales trained to MAP (per prior)
        "strength_range": (1e-2, 1e3),  # λ = σ²/τ² for the Gaussian; n·α = σ²/b for Laplace
        "path_points": 120,  # closed-form path, for the figure
        "num_steps": 600,  # gradient / ISTA steps (step 1/L)
        "eval_every": 10,
        "gradient_lambda": 1.0,  # λ of the penalty-gradient panel
    }
    quick_overrides = dict(seeds=3, strengths=6, path_points=40, num_steps=300)
    return kit.sized(quick, full, quick_overrides=quick_overrides)


def _map_sweep(prior, data, scales, config, run):
    """MAP weights (S, K, d) and the negative log posterior history (S, K, T)."""
    s, k = data["train"]["x"].shape[0], scales.size
    res = run.sweep(
        map_task(prior, config["d"], config["noise_std"] ** 2), data,
        stream=streams.full_batch(),
        seeds=[0],  # deterministic: the start is w = 0 and the steps are full-batch
        num_steps=config["num_steps"], eval_every=config["eval_every"],
        hparams={"dataset": np.repeat(np.arange(s), k), "scale": np.tile(scales, s)},
    )  # fmt: skip
    w = np.asarray(res.state["w"][:, 0]).reshape(s, k, -1)
    hist = res.history["neg_log_posterior"][:, 0].reshape(s, k, -1)
    return w, hist, res.history["step"][0, 0]


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Train both MAP problems to convergence and compare with the closed forms (float64).

    Seed ``i`` draws data set ``i`` from ``jax.random.key(i)``. The prior scales are
    rounded to float32 (the sweep's hyperparameter dtype) and the matching λ and α are
    computed from the rounded values, so both sides solve the same problem exactly.
    """
    with jax.enable_x64(True):
        return _compute(config, run)


def _compute(config: dict, run: kit.Run) -> dict:
    n, d, s = config["n"], config["d"], config["seeds"]
    var = config["noise_std"] ** 2
    kw = {"noise_std": config["noise_std"], "true_scale": config["true_scale"]}
    sets = [make_data(checks.seed_key(i), n, d, **kw) for i in range(s)]
    x, y = (jnp.stack([t[i] for t in sets]) for i in (0, 1))  # (S, n, d), (S, n)
    lip = np.linalg.eigvalsh(np.einsum("sni,snj->sij", x, x))[:, -1] / var
    data = {"train": {"x": x, "y": y, "lipschitz": jnp.asarray(lip)}}
    f32 = lambda v: np.asarray(v, np.float32).astype(np.float64)
    strengths = np.geomspace(*config["strength_range"], config["strengths"])
    tau = f32(np.sqrt(var / strengths))  # Gaussian scale: λ = σ²/τ²
    b = f32(var / strengths)  # Laplace scale: σ²/b, i.e. α = σ²/(n b)
    lam, alpha = var / tau**2, var / (n * b)
    w_gd, hist_g, step = _map_sweep("gaussian", data, tau, config, run)
    w_ista, hist_l, _ = _map_sweep("laplace", data, b, config, run)
    solve = jax.jit(jax.vmap(closed_forms, in_axes=(0, 0, None, None, None, None)))
    ridge, post_mean, lasso, kkt = map(np.asarray, solve(x, y, lam, alpha, tau, var))
    path = np.geomspace(*config["strength_range"], config["path_points"])
    paths = solve(x, y, path, path / n, np.sqrt(var / path), var)
    ridge_path, _, lasso_path, _ = map(np.asarray, paths)
    zeros = jax.vmap(jax.vmap(metrics.count_zeros))

    def objective(prior, w, scale):  # U at the closed forms: (S, K)
        u = lambda w, x, y, t: neg_log_posterior(prior, w, x, y, t, var)
        u = jax.vmap(jax.vmap(u, (0, None, None, 0)), (0, 0, 0, None))
        return np.asarray(u(w, x, y, scale))

    u_ridge, u_lasso = objective("gaussian", ridge, tau), objective("laplace", lasso, b)
    # |U(w_t) − U(closed form)| / U(closed form), max over data sets and strengths: (T,)
    gap = lambda h, u: np.max(np.abs(h - u[..., None]) / np.abs(u[..., None]), axis=(0, 1))
    lam_g = config["gradient_lambda"]
    w_grid = jnp.linspace(-1.0, 1.0, 201)
    numbers = {
        "strengths": np.stack([lam, n * alpha]),  # (2 priors, K): λ and σ²/b = nα
        "tau": tau,
        "b": b,
        "alpha": alpha,
        "gap_gd_ridge": np.abs(w_gd - ridge).max(-1),  # (S, K)
        "gap_ridge_posterior_mean": np.abs(ridge - post_mean).max(-1),
        "gap_ista_lasso": np.abs(w_ista - lasso).max(-1),
        "zero_pattern_equal": np.all((w_ista == 0) == (lasso == 0), axis=-1),
        "zeros": np.stack([np.asarray(zeros(w_gd)), np.asarray(zeros(w_ista))]),  # (2, S, K)
        "lasso_zeros": np.asarray(zeros(lasso)),
        "lasso_kkt": kkt,
        "path_strengths": path,
        "ridge_path": ridge_path,  # (S, P, d)
        "lasso_path": lasso_path,
        "path_zeros": np.stack([np.asarray(zeros(ridge_path)), np.asarray(zeros(lasso_path))]),
        "map_weights": np.stack([w_gd, w_ista]),  # (2, S, K, d)
        "history_step": step,
        "objective_gap": np.stack([gap(hist_g, u_ridge), gap(hist_l, u_lasso)]),  # (2, T)
        "gradient_w": np.asarray(w_grid),
        "gradient_l2": np.asarray(jax.vmap(jax.grad(lambda w: lam_g * penalties.l2(w)))(w_grid)),
        "gradient_l1": np.asarray(jax.vmap(jax.grad(lambda w: lam_g * penalties.l1(w)))(w_grid)),
    }
    numbers["notes"], numbers["headline"] = _summarize(numbers, config)
    return numbers


def _summarize(num: dict, config: dict) -> tuple[list[str], dict]:
    """Notes and headline, computed from the numbers."""
    n, d = config["n"], config["d"]
    g1, g2, g3 = (num[f"gap_{k}"].max() for k in ("gd_ridge", "ridge_posterior_mean", "ista_lasso"))
    zeros = [int(z.sum()) for z in num["zeros"]]  # Gaussian MAP, Laplace MAP
    same = num["zero_pattern_equal"]
    precise = lambda g: "agree to float64 precision" if g < 1e-9 else "do NOT agree to 1e-9"
    zl = num["lasso_zeros"]
    notes = [
        f"Gaussian prior: the MAP found by {config['num_steps']} gradient-descent steps and "
        f"Ridge with λ = σ²/τ² {precise(g1)} (max |Δw| = {g1:.1e} over "
        f"{num['gap_gd_ridge'].size} (data set, τ) pairs), and Ridge and the conditional "
        f"mean τ²Xᵀ(τ²XXᵀ + σ²I)⁻¹y "
        f"{precise(g2)} (max |Δw| = {g2:.1e}); gradient descent leaves "
        f"{int(num['zeros'][0].max())} exact zeros at any strength.",
        f"Laplace prior: the MAP found by {config['num_steps']} proximal-gradient (ISTA) steps "
        f"and Lasso with α = σ²/(n b) {precise(g3)} (max |Δw| = {g3:.1e}); their exact zeros "
        f"coincide in {int(same.sum())} of {same.size} cases, with {int(zl.min())}–{int(zl.max())} "
        f"of {d} coefficients exactly zero across strengths.",
    ]
    path, pz = num["path_strengths"], num["path_zeros"]  # (2, S, P)
    first = path[np.argmax(pz[1] > 0, axis=1)]  # first strength with a lasso zero, per seed
    every = path[np.argmax(pz[1] == d, axis=1)]
    min_ridge = np.abs(num["ridge_path"][:, -1]).min()
    notes.append(
        f"Along the path (σ²/prior scale from {path[0]:g} to {path[-1]:g}, n = {n}): the lasso "
        f"zeroes its first coefficient at σ²/b = {mean_std(first, '.3g')} and all {d} at "
        f"{mean_std(every, '.3g')} (mean ± std over {first.size} data sets); ridge has "
        f"{int(pz[0].max())} exact zeros anywhere, its smallest |w_j| at λ = {path[-1]:g} being "
        f"{min_ridge:.1e}."
    )
    w, l2, l1 = num["gradient_w"], num["gradient_l2"], num["gradient_l1"]
    near = (np.abs(w) > 0) & (np.abs(w) <= 0.05)
    notes.append(
        f"Near zero (0 < |w| ≤ 0.05) the L2 penalty's gradient 2λw is at most "
        f"{np.abs(l2[near]).max():.3f} in size while the L1 penalty's λ·sign(w) stays "
        f"{np.abs(l1[near]).min():.3f} (λ = {config['gradient_lambda']}): only L1 pushes "
        f"small weights with a force that does not vanish."
    )
    headline = {
        "max |GD MAP − Ridge(σ²/τ²)|": f"{g1:.1e}",
        "max |Ridge − posterior mean|": f"{g2:.1e}",
        "max |ISTA MAP − Lasso(σ²/(n b))|": f"{g3:.1e}",
        "identical zero patterns (ISTA vs Lasso)": f"{int(same.sum())}/{same.size}",
        "exact zeros, Gaussian MAP / Laplace MAP": f"{zeros[0]} / {zeros[1]}",
    }
    return notes, headline


def figure(numbers: dict, config: dict):
    """Paths, exact zeros, agreement with the closed forms, convergence, penalty gradients."""
    fig, axes = kit.panels(6, ncols=3)
    num = {k: np.asarray(v) for k, v in numbers.items() if k not in ("notes", "headline")}
    path, strengths, maps = num["path_strengths"], num["strengths"], num["map_weights"]
    tiny = 1e-18  # exact agreement plotted at the floor
    for j, (key, title, xlabel) in enumerate(
        (("ridge_path", "Gaussian prior = ridge", "λ = σ²/τ²"),
         ("lasso_path", "Laplace prior = lasso", "σ²/b = n·α"))
    ):  # fmt: skip
        coef = num[key][0]  # data set 0: (P, d)
        for i in range(coef.shape[1]):
            axes[j].plot(path, coef[:, i], color=f"C{i % 10}", lw=1.0)
            axes[j].plot(strengths[j], maps[j, 0, :, i], "o", color=f"C{i % 10}", ms=3, mfc="none")
        axes[j].axhline(0, color="k", lw=0.5)
        axes[j].set(xscale="log", xlabel=xlabel, ylabel="coefficient w_j (data set 0)")
        axes[j].set_title(f"{title}: lines closed form, o trained MAP", fontsize=9)
    for j, name in enumerate(("Gaussian (ridge)", "Laplace (lasso)")):
        kit.band(axes[2], path, num["path_zeros"][j], label=name)
    axes[2].set(xscale="log", xlabel="σ²/τ² (Gaussian), σ²/b (Laplace)")
    axes[2].set(ylabel=f"exact zeros of {config['d']} coefficients")
    axes[2].set_title(f"mean ± std over {num['path_zeros'].shape[1]} data sets", fontsize=9)
    for key, name, j in (
        ("gap_gd_ridge", "GD MAP vs Ridge", 0),
        ("gap_ridge_posterior_mean", "Ridge vs posterior mean", 0),
        ("gap_ista_lasso", "ISTA MAP vs Lasso", 1),
    ):
        kit.band(axes[3], strengths[j], np.maximum(num[key], tiny), label=name)
    axes[3].set(xscale="log", yscale="log", xlabel="σ²/τ² or σ²/b", ylabel="max_j |Δw_j|")
    axes[3].set_title("agreement (float64), mean ± std over data sets", fontsize=9)
    for j, name in enumerate(("gradient descent (Gaussian)", "ISTA (Laplace)")):
        gap = np.maximum(num["objective_gap"][j, :-1], tiny)
        axes[4].plot(num["history_step"][:-1], gap, label=name)
    axes[4].set(yscale="log", xlabel="training step", ylabel="max |U(w_t) − U(closed form)| / U")
    axes[4].set_title("convergence of the MAP training", fontsize=9)
    lam, w = config["gradient_lambda"], num["gradient_w"]
    axes[5].plot(w, num["gradient_l2"], label="L2: d(λw²)/dw = 2λw")
    axes[5].plot(w, num["gradient_l1"], label="L1: d(λ|w|)/dw = λ·sign w")
    axes[5].axhline(0, color="k", lw=0.5)
    axes[5].axvline(0, color="k", lw=0.5)
    axes[5].set(xlabel="weight w", ylabel=f"penalty gradient (λ = {lam})")
    axes[5].set_title("near zero only L1's push stays finite", fontsize=9)
    for ax in axes[2:]:
        ax.legend(fontsize=8)
    n, d, sigma = config["n"], config["d"], config["noise_std"]
    fig.suptitle(f"MAP with Gaussian / Laplace priors (n = {n}, d = {d}, σ = {sigma})", fontsize=10)
    fig.tight_layout()
    return fig
