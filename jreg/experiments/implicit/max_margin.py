"""Implicit bias of gradient descent: logistic regression converges to the max-margin direction.

On linearly separable data the logistic loss has no minimiser: plain gradient descent drives
``‖w(t)‖ -> ∞`` (like ``log t``) while the direction ``w(t)/‖w(t)‖`` converges to the
hard-margin SVM solution, at the slow rate ``O(1/log t)`` (Soudry et al. 2018). No explicit
regularizer is involved: the optimizer itself picks the max-margin separator among the
infinitely many that fit the data.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jreg.analysis import svm
from jreg.core import streams, train
from jreg.experiments import kit, plotting
from jreg.experiments.kit import mean_std
from jreg.util import checks

DESCRIPTION = (
    "Full-batch GD on the logistic loss, separable 2-D data, no bias: w(t)/‖w(t)‖ "
    "converges to the hard-margin SVM direction (Soudry et al. 2018)."
)


def get_config(quick: bool = False) -> dict:
    """Separable 2-D data through the origin; GD with step ``lr_scale / β`` for 1e6 steps."""
    full = {
        "seed": 0,
        "seeds": 5,
        "n": 100,  # points per data set (one data set and one init per seed)
        "gap": 0.25,  # no point closer than this to the generating line
        "aniso": 0.3,  # std of the point cloud across / along its long axis
        "tilt": 0.6,  # angle (rad) between the long axis and the generating normal
        "init_std": 0.5,  # w(0) ~ N(0, init_std² I)
        "lr_scale": 1.0,  # step = lr_scale / β, β = σ_max(X)² / (4N) the smoothness bound
        "num_steps": 1_000_000,
        "eval_every": 10,  # steps between evaluations of w(t)
        "num_checkpoints": 60,  # log-spaced evaluations that are kept
        "snapshot_steps": (10, 100, 1_000, 10_000, 100_000, 1_000_000),  # drawn GD directions
    }
    small = {"num_steps": 20_000, "eval_every": 1, "num_checkpoints": 40}
    return kit.sized(quick, full, quick_overrides=small)


def make_data(key: jax.Array, n: int, *, gap: float, aniso: float, tilt: float):
    """Separable 2-D data through the origin with a gap around a random line.

    Points are drawn from a Gaussian cloud with stds ``(1, aniso)`` along a random axis;
    labels are the sign of the projection on a normal ``u`` at angle ``tilt`` from that
    axis, and points with ``|u·x| < gap`` are rejected. The hard-margin direction then
    differs from both ``u`` and the class-mean direction that GD follows at first.
    ``gap`` (>= 0) is the half-width of the empty band, ``aniso`` the cross-axis std relative
    to the long axis, ``tilt`` in radians. Returns ``n`` points: ``x`` (n, 2) float32 and
    ``y`` (n,) float32 in {-1, +1}."""
    k_x, k_th = jax.random.split(key)
    th = jax.random.uniform(k_th, (), minval=0.0, maxval=2 * np.pi)
    m = 20 * n  # enough candidates for any gap used here
    raw = jax.random.normal(k_x, (m, 2)) * jnp.array([1.0, aniso])
    rot = jnp.array([[jnp.cos(th), -jnp.sin(th)], [jnp.sin(th), jnp.cos(th)]])
    x = np.asarray(raw @ rot.T, np.float32)
    u = np.asarray([np.cos(th + tilt), np.sin(th + tilt)], np.float32)
    s = x @ u
    keep = np.flatnonzero(np.abs(s) >= gap)
    if keep.size < n:
        raise ValueError(f"only {keep.size} of {m} candidates clear gap={gap}; lower the gap.")
    return x[keep[:n]], np.sign(s[keep[:n]]).astype(np.float32)


def logistic_task(w0: np.ndarray) -> train.Task:
    """Full-batch GD on the mean logistic loss of a linear model without bias.

    ``L(w) = mean_i log(1 + exp(-y_i w·x_i))`` on data set ``d = hp["dataset"]`` of a
    stack of S data sets, with update ``w <- w − hp["learning_rate"] ∇L(w)`` (train it
    with :func:`jreg.core.streams.full_batch`). Data set ``d`` starts at ``w0[d]`` (S, D).
    Data: ``{"train": {"x": (S, N, D), "y": (S, N) in {-1, +1} (float)}, "svm_w": (S, D)}``
    (the hard-margin SVM solution of each data set, for the evaluation). State ``{"w": (D,)}``;
    step metric ``train_objective``; evaluations ``train_loss``, ``cosine`` (to the SVM
    direction), ``normalized_margin`` (``min_i y_i w·x_i / ‖w‖``), ``w_norm`` and ``w_angle``
    (polar angle of ``(w_0, w_1)``, radians).
    """
    w0 = jnp.asarray(w0, jnp.float32)
    loss = lambda w, x, y: jnp.mean(jax.nn.softplus(-y * (x @ w)))
    pick = lambda split, hp: (split["x"][hp["dataset"]], split["y"][hp["dataset"]])

    def init(key, hp):
        del key  # the initialisation is drawn per data set in compute
        return {"w": w0[hp["dataset"]]}

    def step(state, batch, key, hp):
        del key
        value, grad = jax.value_and_grad(loss)(state["w"], *pick(batch, hp))
        return {"w": state["w"] - hp["learning_rate"] * grad}, {"train_objective": value}

    def evaluate(state, data, hp):
        w, u = state["w"], data["svm_w"][hp["dataset"]]
        x, y = pick(data["train"], hp)
        norm = jnp.linalg.norm(w)
        return {
            "train_loss": loss(w, x, y),
            "cosine": w @ u / (norm * jnp.linalg.norm(u)),
            "normalized_margin": svm.normalized_margin(w, x, y),
            "w_norm": norm,
            "w_angle": jnp.arctan2(w[1], w[0]),
        }

    hparams = {"dataset": 0, "learning_rate": 1.0}
    bounds = {"learning_rate": train.NONNEGATIVE}
    return train.Task(init, step, evaluate, hparams, name="logistic_gd", bounds=bounds)


def log_checkpoints(num_steps: int, num: int, every: int = 1) -> np.ndarray:
    """About ``num`` distinct log-spaced multiples of ``every`` in ``[every, num_steps]``."""
    t = np.logspace(np.log10(every), np.log10(num_steps), num)
    return np.unique(np.round(t / every).astype(np.int64) * every)


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Solve the SVM per data set, run GD on all of them as one sweep, compare.

    Returns, at log-spaced steps ``step`` (T,), per data set (S, T): cosine and angle to the
    SVM direction, normalized margin and its ratio to the SVM margin, ``‖w(t)‖`` and the
    polar angle of ``w(t)``; the SVM solutions; and seed 0's data for the figure."""
    seeds = config["seeds"]
    k_data, k_init = jax.random.split(checks.seed_key(config["seed"]))
    shape = {k: config[k] for k in ("gap", "aniso", "tilt")}
    sets = [make_data(jax.random.fold_in(k_data, s), config["n"], **shape) for s in range(seeds)]
    x, y = np.stack([a for a, _ in sets]), np.stack([b for _, b in sets])
    sols = [svm.hard_margin_svm(a, b.astype(np.int32)) for a, b in sets]
    w_svm = np.stack([np.asarray(sol.w) for sol in sols])
    margin_svm = np.asarray([float(sol.margin) for sol in sols])
    support = [np.asarray(sol.support) for sol in sols]
    beta = np.linalg.norm(x, ord=2, axis=(1, 2)) ** 2 / (4 * config["n"])  # bounds the Hessian
    lr = (config["lr_scale"] / beta).astype(np.float32)
    w0 = config["init_std"] * jax.random.normal(k_init, (seeds, x.shape[-1]))
    every = config["eval_every"]
    res = run.sweep(
        logistic_task(np.asarray(w0)),
        {"train": {"x": x, "y": y}, "svm_w": w_svm},
        stream=streams.full_batch(),
        seeds=[config["seed"]],  # the randomness is in the data sets and w0 (hp "dataset")
        hparams={"dataset": np.arange(seeds), "learning_rate": lr},
        num_steps=config["num_steps"],
        eval_every=every,
    )
    ckpt = log_checkpoints(config["num_steps"], config["num_checkpoints"], every)
    h = {k: v[:, 0, ckpt // every - 1] for k, v in res.history.items()}  # (S, T)
    cos, margin = h["cosine"], h["normalized_margin"]
    ratio = margin / margin_svm[:, None]
    angle_deg = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    fc, fr = cos[:, -1], ratio[:, -1]
    curves = dict(step=ckpt, cosine=cos, angle_deg=angle_deg, normalized_margin=margin)
    n_sv = np.asarray([int(m.sum()) for m in support])
    return {
        **curves,
        "margin_ratio": ratio,
        **{k: h[k] for k in ("w_norm", "w_angle", "train_loss")},
        **dict(svm_w=w_svm, svm_margin=margin_svm, num_support_vectors=n_sv, lr=lr),
        **dict(final_cosine=fc, final_margin=margin[:, -1], final_margin_ratio=fr),
        "seed0": {"x": x[0], "y": y[0], "support": support[0]},
        "headline": {
            "steps": int(ckpt[-1]),
            "final cos(w, w_SVM)": mean_std(fc, ".5f"),
            "final angle to SVM (deg)": float(angle_deg[:, -1].mean()),
            "final margin / SVM margin": mean_std(fr),
            "min final cos over seeds": float(fc.min()),
            "SVM margin (mean)": float(margin_svm.mean()),
        },
        "notes": [
            f"Per seed: final cosine {', '.join(f'{v:.5f}' for v in fc)}; "
            f"final margin / SVM margin {', '.join(f'{v:.4f}' for v in fr)}.",
            f"The angle to the SVM direction falls from {angle_deg[:, 0].mean():.2f}° at step "
            f"{ckpt[0]} to {angle_deg[:, -1].mean():.2f}° at step {ckpt[-1]} (mean over seeds); "
            f"the largest normalized margin / SVM margin seen is {ratio.max():.5f}.",
            f"Step sizes lr·β = {config['lr_scale']} "
            f"{'are' if config['lr_scale'] < 2 else 'are not'} within Soudry et al.'s "
            "condition η < 2/β (β = σ_max(X)²/4N).",
        ],
    }


def _steps_axes(ax, ylabel: str, title: str, **legend) -> None:
    """Log GD-step axis, labels, title and legend of the panels over training."""
    ax.set_xscale("log")
    ax.set_xlabel("GD step t")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, **legend)


def figure(numbers: dict, config: dict):
    """Cosine, margin ratio and angle vs step; seed 0's data with SVM and GD boundaries."""
    ckpt = np.asarray(numbers["step"])
    cos, ratio = np.asarray(numbers["cosine"]), np.asarray(numbers["margin_ratio"])
    angle_deg = np.asarray(numbers["angle_deg"])
    fig, axes = kit.panels(4, size=(4.2, 4.0))
    for ax, y, top, label, ref, ylabel, title in (
        (axes[0], cos, 1.02, "GD on logistic loss", "SVM direction", "cos(w(t), w_SVM)",
         "(a) direction vs SVM"),
        (axes[1], ratio, 1.05, "GD margin / SVM margin", "SVM margin",
         "min_i y_i w·x_i / ‖w‖  ÷  SVM margin", "(b) normalized margin vs SVM margin"),
    ):  # fmt: skip
        kit.band(ax, ckpt, y, label=label)
        ax.axhline(1.0, color="k", ls="--", lw=0.8, label=ref)
        ax.set_ylim(max(-1.0, float(y.mean(0).min()) - 0.1), top)
        _steps_axes(ax, ylabel, title, loc="lower right")
    ax = axes[2]
    kit.band(ax, ckpt, angle_deg, label="angle(w(t), w_SVM)")
    late = ckpt >= 100
    if late.any():  # reference c / log t (Soudry et al.), matched at the first t >= 100
        t0 = ckpt[late][0]
        c = angle_deg.mean(0)[late][0] * np.log(t0)
        label = f"∝ 1 / log t (at t = {t0})"
        ax.plot(ckpt[late], c / np.log(ckpt[late]), "k--", lw=0.8, label=label)
    ax.set_yscale("log")
    _steps_axes(ax, "angle to SVM direction (degrees)", "(c) slow 1/log t convergence")
    ax = axes[3]
    x, y = np.asarray(numbers["seed0"]["x"]), np.asarray(numbers["seed0"]["y"])
    ax.scatter(*x[y > 0].T, s=9, c="tab:red", label="y = +1")
    ax.scatter(*x[y < 0].T, s=9, c="tab:blue", label="y = −1")
    sv = np.asarray(numbers["seed0"]["support"], bool)
    ax.scatter(*x[sv].T, s=60, facecolors="none", edgecolors="k", lw=1.0, label="support vectors")
    lim = 1.1 * np.abs(x).max()
    line = np.linspace(-lim, lim, 2)
    # the boundary of the direction at polar angle theta
    draw = lambda theta, **kw: ax.plot(-line * np.sin(theta), line * np.cos(theta), **kw)
    w = np.asarray(numbers["svm_w"][0])
    u = w / np.linalg.norm(w)
    draw(np.arctan2(u[1], u[0]), color="k", lw=1.8, label="SVM boundary")
    m0 = float(np.asarray(numbers["svm_margin"])[0])
    for off in (-m0 * u, m0 * u):
        ax.plot(off[0] - line * u[1], off[1] + line * u[0], "k:", lw=0.8)
    cmap = plotting.cmap("viridis")
    snaps = [t for t in config["snapshot_steps"] if ckpt[0] <= t <= ckpt[-1]]
    for i, t in enumerate(snaps):
        j = int(np.argmin(np.abs(ckpt - t)))
        theta, label = float(np.asarray(numbers["w_angle"])[0, j]), f"GD boundary, t={ckpt[j]:,}"
        draw(theta, color=cmap(i / max(1, len(snaps))), lw=1.0, ls="--", label=label)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal")
    ax.set_title("(d) seed 0: data, SVM (dotted: margin), GD", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    fig.suptitle(
        f"Gradient descent on the logistic loss finds the max-margin separator "
        f"(no bias, lr = {config['lr_scale']}/β, mean ± std over {cos.shape[0]} data sets)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
