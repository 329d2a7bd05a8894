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

from jreg.analysis import linear, metrics
from jreg.core import streams, train
from jreg.experiments import kit, plotting
from jreg.experiments.kit import mean_std
from jreg.regularizers import penalties
from jreg.util import checks

DESCRIPTION = (
    "MAP under a Gaussian prior = ridge (λ = σ²/τ²) = posterior mean; under a Laplace "
    "prior = lasso (α = σ²/(n b)) with exact zeros; paths and penalty gradients."
)

PRIORS = ("gaussian", "laplace")


def get_config(quick: bool = False) -> dict:
    """Small well-posed problems (n > d) so that both MAP problems converge to float64."""
    return {
        "seeds": 3 if quick else 8,  # one data set per seed
        "n": 50,
        "d": 10,
        "noise_std": 1.0,  # σ
        "true_scale": 1.0,  # w_true ~ Laplace(0, true_scale)
        "strengths": 6 if quick else 12,  # prior scales trained to MAP (per prior)
        "strength_range": (1e-2, 1e3),  # λ = σ²/τ² for the Gaussian; n·α = σ²/b for Laplace
        "path_points": 40 if quick else 120,  # closed-form path, for the figure
        "num_steps": 300 if quick else 600,  # gradient / ISTA steps (step 1/L)
        "eval_every": 10,
        "gradient_lambda": 1.0,  # λ of the penalty-gradient panel
    }


# ----------------------------------------------------------------------------- pieces


def make_data(key: jax.Array, n: int, d: int, *, noise_std: float, true_scale: float):
    """Gaussian design ``x`` (n, d), sparse-ish ``w_true`` ~ Laplace, ``y = x w + σ ε`` (n,)."""
    k_x, k_w, k_e = jax.random.split(key, 3)
    x = jax.random.normal(k_x, (n, d))
    w = true_scale * jax.random.laplace(k_w, (d,))
    return x, x @ w + noise_std * jax.random.normal(k_e, (n,)), w


def neg_log_posterior(prior: str, w, x, y, scale, noise_var):
    """``U(w) = ‖y − xw‖²/(2σ²) + ‖w‖²/(2τ²)`` (Gaussian, ``scale = τ``) or ``+ ‖w‖₁/b``
    (Laplace, ``scale = b``), the negative log posterior up to a constant; scalar.

    Args:
      prior: ``"gaussian"`` or ``"laplace"``.
      w: (d,) weights; x: (n, d); y: (n,); scale: τ or b; noise_var: σ².
    """
    fit = 0.5 * jnp.sum((y - x @ w) ** 2) / noise_var
    if prior == "gaussian":
        return fit + 0.5 * penalties.l2(w) / scale**2
    return fit + penalties.l1(w) / scale


def map_task(prior: str, num_features: int, noise_var: float) -> train.Task:
    """MAP estimation of a linear model's weights under a Gaussian or Laplace prior.

    Data (train it with :func:`jreg.core.streams.full_batch`): ``{"train": {"x": (S, n, d),
    "y": (S, n), "lipschitz": (S,)}}``, a stack of S data sets; ``lipschitz`` is
    ``λ_max(xᵀx)/σ²``, the smoothness of the likelihood term. Hyperparameters:
    ``dataset`` (int index into the stack) and ``scale`` (τ for the Gaussian prior, b for
    the Laplace prior).

    * ``"gaussian"``: gradient descent on ``U(w) = ‖y − xw‖²/(2σ²) + ‖w‖²/(2τ²)``
      (:func:`jreg.regularizers.penalties.l2`) with step ``1/(L + 1/τ²)``.
    * ``"laplace"``: proximal gradient (ISTA; Beck & Teboulle 2009) on ``U(w) =
      ‖y − xw‖²/(2σ²) + ‖w‖₁/b`` (:func:`jreg.regularizers.penalties.l1`): a gradient step of size
      ``1/L`` on the likelihood, then soft-thresholding by ``1/(L·b)`` — exact zeros.

    Args:
      prior: ``"gaussian"`` or ``"laplace"``.
      num_features: d.
      noise_var: σ² of the likelihood.

    Returns:
      A :class:`jreg.core.train.Task` with state ``{"w": (d,)}`` (zeros at the start), step
      metric ``train_objective`` (U after the step) and evaluation ``neg_log_posterior`` (U of
      the state).
    """
    if prior not in PRIORS:
        raise ValueError(f"Unknown prior {prior!r}; available: {', '.join(PRIORS)}.")

    def pick(batch, hp):
        i = jnp.asarray(hp["dataset"], jnp.int32)
        return batch["x"][i], batch["y"][i], batch["lipschitz"][i]

    def init(key, hp):
        del key, hp
        return {"w": jnp.zeros(num_features, jnp.result_type(float))}  # float64 under x64

    def step(state, batch, key, hp):
        del key
        x, y, lip = pick(batch, hp)
        scale = jnp.asarray(hp["scale"], x.dtype)
        w = state["w"]
        grad_fit = -(x.T @ (y - x @ w)) / noise_var
        if prior == "gaussian":
            w = w - (grad_fit + w / scale**2) / (lip + 1 / scale**2)
        else:
            w = linear.soft_threshold(w - grad_fit / lip, 1 / (lip * scale))
        return {"w": w}, {"train_objective": neg_log_posterior(prior, w, x, y, scale, noise_var)}

    def evaluate(state, data, hp):
        x, y, _ = pick(data["train"], hp)
        scale = jnp.asarray(hp["scale"], x.dtype)
        return {"neg_log_posterior": neg_log_posterior(prior, state["w"], x, y, scale, noise_var)}

    return train.Task(init, step, evaluate, {"dataset": 0, "scale": 1.0}, name=f"map_{prior}")


def _solutions(x, y, lam, alpha, tau, noise_var):
    """Closed forms for one data set: ridge (λ), conditional mean (τ), lasso (α), each (K, d)."""

    def posterior_mean(t):  # E[w | y] = τ²xᵀ(τ²xxᵀ + σ²I)⁻¹y
        cov_y = t**2 * x @ x.T + noise_var * jnp.eye(x.shape[0], dtype=x.dtype)
        return t**2 * x.T @ jnp.linalg.solve(cov_y, y)

    ridge = jax.vmap(lambda a: linear.ridge(x, y, a, fit_intercept=False).coef)(lam)
    lasso = jax.vmap(lambda a: linear.lasso(x, y, a, fit_intercept=False))(alpha)
    return ridge, jax.vmap(posterior_mean)(tau), lasso.coef, lasso.kkt


def _map_sweep(prior, data, scales, config, progress):
    """MAP weights (S, K, d) and the negative log posterior history (S, K, T)."""
    s, k = data["train"]["x"].shape[0], scales.size
    hp = {"dataset": np.repeat(np.arange(s), k), "scale": np.tile(scales, s)}
    steps = config["num_steps"]
    res = train.sweep(
        map_task(prior, config["d"], config["noise_std"] ** 2),
        data,
        stream=streams.full_batch(),
        seeds=[0],  # deterministic: the start is w = 0 and the steps are full-batch
        num_steps=steps,
        eval_every=config["eval_every"],
        hparams=hp,
        progress=progress,
    )
    w = np.asarray(res.state["w"][:, 0]).reshape(s, k, -1)
    hist = np.asarray(res.history["neg_log_posterior"][:, 0]).reshape(s, k, -1)
    return w, hist, np.asarray(res.history["step"][0, 0])


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Train both MAP problems to convergence and compare with the closed forms (float64).

    Seed ``i`` draws data set ``i`` from ``jax.random.key(i)``. The prior scales are
    rounded to float32 (the sweep's hyperparameter dtype) and the matching λ and α are
    computed from the rounded values, so both sides solve the same problem exactly.
    """
    progress = run.progress
    with jax.enable_x64(True):
        return _compute(config, progress)


def _compute(config: dict, progress: bool) -> dict:
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
    w_gd, hist_g, step = _map_sweep("gaussian", data, tau, config, progress)
    w_ista, hist_l, _ = _map_sweep("laplace", data, b, config, progress)
    solve = jax.jit(jax.vmap(_solutions, in_axes=(0, 0, None, None, None, None)))
    ridge, post_mean, lasso, kkt = (np.asarray(v) for v in solve(x, y, lam, alpha, tau, var))
    path = np.geomspace(*config["strength_range"], config["path_points"])
    ridge_path, _, lasso_path, _ = (
        np.asarray(v) for v in solve(x, y, path, path / n, np.sqrt(var / path), var)
    )
    zeros = jax.vmap(jax.vmap(metrics.count_zeros))

    def objective(prior, w, scale):  # U at the closed forms: (S, K)
        u = lambda w, x, y, t: neg_log_posterior(prior, w, x, y, t, var)
        return np.asarray(
            jax.vmap(jax.vmap(u, (0, None, None, 0)), (0, 0, 0, None))(w, x, y, scale)
        )

    u_ridge, u_lasso = objective("gaussian", ridge, tau), objective("laplace", lasso, b)
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
        # |U(w_t) − U(closed form)| / U(closed form), max over data sets and strengths: (2, T)
        "objective_gap": np.stack(
            [
                np.max(np.abs(h - u[..., None]) / np.abs(u[..., None]), axis=(0, 1))
                for h, u in ((hist_g, u_ridge), (hist_l, u_lasso))
            ]
        ),
        "gradient_w": np.asarray(w_grid),
        "gradient_l2": np.asarray(jax.vmap(jax.grad(lambda w: lam_g * penalties.l2(w)))(w_grid)),
        "gradient_l1": np.asarray(jax.vmap(jax.grad(lambda w: lam_g * penalties.l1(w)))(w_grid)),
    }
    numbers["notes"], numbers["headline"] = _summarize(numbers, config)
    return numbers


def _summarize(num: dict, config: dict) -> tuple[list[str], dict]:
    """Notes and headline, computed from the numbers."""
    n, d = config["n"], config["d"]
    g1, g2, g3 = (
        num[k].max() for k in ("gap_gd_ridge", "gap_ridge_posterior_mean", "gap_ista_lasso")
    )
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
        "exact zeros, Gaussian MAP / Laplace MAP": (
            f"{int(num['zeros'][0].sum())} / {int(num['zeros'][1].sum())}"
        ),
    }
    return notes, headline


def figure(numbers: dict, config: dict):
    """Paths, exact zeros, agreement with the closed forms, convergence, penalty gradients."""
    fig, axes = plotting.figure(2, 3, size=(4.2, 3.3))
    path = np.asarray(numbers["path_strengths"])
    strengths = np.asarray(numbers["strengths"])
    maps = np.asarray(numbers["map_weights"])  # (2, S, K, d)
    for j, (key, title, xlabel) in enumerate(
        (
            ("ridge_path", "Gaussian prior = ridge", "λ = σ²/τ²"),
            ("lasso_path", "Laplace prior = lasso", "σ²/b = n·α"),
        )
    ):
        ax = axes[0][j]
        coef = np.asarray(numbers[key])[0]  # data set 0: (P, d)
        for i in range(coef.shape[1]):
            ax.plot(path, coef[:, i], color=f"C{i % 10}", lw=1.0)
            ax.plot(strengths[j], maps[j, 0, :, i], "o", color=f"C{i % 10}", ms=3, mfc="none")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("coefficient w_j (data set 0)")
        ax.set_title(f"{title}: lines closed form, o trained MAP", fontsize=9)
        ax.axhline(0, color="k", lw=0.5)
    ax = axes[0][2]
    pz = np.asarray(numbers["path_zeros"])
    for j, name in enumerate(("Gaussian (ridge)", "Laplace (lasso)")):
        plotting.band(ax, path, pz[j], label=name)
    ax.set_xscale("log")
    ax.set_xlabel("σ²/τ² (Gaussian), σ²/b (Laplace)")
    ax.set_ylabel(f"exact zeros of {config['d']} coefficients")
    ax.set_title(f"mean ± std over {pz.shape[1]} data sets", fontsize=9)
    ax.legend(fontsize=8)
    ax = axes[1][0]
    tiny = 1e-18  # exact agreement plotted at the floor
    for key, name, j in (
        ("gap_gd_ridge", "GD MAP vs Ridge", 0),
        ("gap_ridge_posterior_mean", "Ridge vs posterior mean", 0),
        ("gap_ista_lasso", "ISTA MAP vs Lasso", 1),
    ):
        plotting.band(ax, strengths[j], np.maximum(np.asarray(numbers[key]), tiny), label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("σ²/τ² or σ²/b")
    ax.set_ylabel("max_j |Δw_j|")
    ax.set_title("agreement (float64), mean ± std over data sets", fontsize=9)
    ax.legend(fontsize=8)
    ax = axes[1][1]
    gap = np.asarray(numbers["objective_gap"])
    for j, name in enumerate(("gradient descent (Gaussian)", "ISTA (Laplace)")):
        ax.plot(numbers["history_step"][:-1], np.maximum(gap[j, :-1], tiny), label=name)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("max |U(w_t) − U(closed form)| / U")
    ax.set_title("convergence of the MAP training", fontsize=9)
    ax.legend(fontsize=8)
    ax = axes[1][2]
    lam = config["gradient_lambda"]
    ax.plot(numbers["gradient_w"], numbers["gradient_l2"], label="L2: d(λw²)/dw = 2λw")
    ax.plot(numbers["gradient_w"], numbers["gradient_l1"], label="L1: d(λ|w|)/dw = λ·sign w")
    ax.axhline(0, color="k", lw=0.5)
    ax.axvline(0, color="k", lw=0.5)
    ax.set_xlabel("weight w")
    ax.set_ylabel(f"penalty gradient (λ = {lam})")
    ax.set_title("near zero only L1's push stays finite", fontsize=9)
    ax.legend(fontsize=8)
    fig.suptitle(
        f"MAP with Gaussian / Laplace priors (n = {config['n']}, d = {config['d']}, "
        f"σ = {config['noise_std']})",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
