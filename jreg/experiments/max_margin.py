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

from jreg import plotting, svm
from jreg.experiments.runner import Outcome

DESCRIPTION = (
    "Full-batch GD on the logistic loss, separable 2-D data, no bias: w(t)/‖w(t)‖ "
    "converges to the hard-margin SVM direction (Soudry et al. 2018)."
)


def get_config(quick: bool = False) -> dict:
    """Separable 2-D data through the origin; GD with step ``lr_scale / β`` for 1e6 steps."""
    return {
        "seed": 0,
        "seeds": 5,
        "n": 100,  # points per data set (one data set and one init per seed)
        "gap": 0.25,  # no point closer than this to the generating line
        "aniso": 0.3,  # std of the point cloud across / along its long axis
        "tilt": 0.6,  # angle (rad) between the long axis and the generating normal
        "init_std": 0.5,  # w(0) ~ N(0, init_std² I)
        "lr_scale": 1.0,  # step = lr_scale / β, β = σ_max(X)² / (4N) the smoothness bound
        "num_steps": 20_000 if quick else 1_000_000,
        "num_checkpoints": 40 if quick else 60,  # log-spaced times at which w(t) is stored
        "snapshot_steps": (
            10,
            100,
            1_000,
            10_000,
            100_000,
            1_000_000,
        ),  # GD directions drawn on the data panel
    }


# ----------------------------------------------------------------------------- pieces


def make_data(key: jax.Array, n: int, *, gap: float, aniso: float, tilt: float):
    """Separable 2-D data through the origin with a gap around a random line.

    Points are drawn from a Gaussian cloud with stds ``(1, aniso)`` along a random axis;
    labels are the sign of the projection on a normal ``u`` at angle ``tilt`` from that
    axis, and points with ``|u·x| < gap`` are rejected. The hard-margin direction then
    differs from both ``u`` and the class-mean direction that GD follows at first.

    Args:
      key: PRNG key.
      n: number of points kept.
      gap: half-width of the empty band (>= 0).
      aniso: cross-axis std relative to the long axis.
      tilt: angle in radians between the long axis and ``u``.

    Returns:
      ``(x (n, 2) float32, y (n,) float32 in {-1, +1})``.
    """
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
    idx = keep[:n]
    return x[idx], np.sign(s[idx]).astype(np.float32)


def logistic_gd_path(
    x: jax.Array, y: jax.Array, w0: jax.Array, lr: jax.Array, checkpoints: jax.Array
) -> jax.Array:
    """Full-batch GD on the mean logistic loss, no bias; ``w`` at the given step counts.

    ``L(w) = mean_i log(1 + exp(-y_i w·x_i))``, ``w_{t+1} = w_t − lr ∇L(w_t)``. The steps
    between consecutive checkpoints run in a ``fori_loop`` inside a ``lax.scan`` over the
    checkpoints, so only the stored iterates are kept. Pure and ``vmap``-able over data,
    init and ``lr``.

    Args:
      x: inputs ``(N, D)``.
      y: labels ``(N,)`` in ``{-1, +1}`` (float).
      w0: initial weights ``(D,)``.
      lr: step size (scalar).
      checkpoints: strictly increasing non-negative int32 step counts ``(T,)``.

    Returns:
      ``w(t)`` at each checkpoint, shape ``(T, D)``.
    """
    z = x * y[:, None]
    n = z.shape[0]

    def step(_, w):
        g = -(jax.nn.sigmoid(-(z @ w)) @ z) / n
        return w - lr * g

    def advance(carry, target):
        w, t = carry
        w = jax.lax.fori_loop(t, target, step, w)
        return (w, target), w

    _, ws = jax.lax.scan(advance, (w0, jnp.zeros((), jnp.int32)), checkpoints)
    return ws


def _log_checkpoints(num_steps: int, num: int) -> np.ndarray:
    t = np.unique(np.round(np.logspace(0, np.log10(num_steps), num)).astype(np.int64))
    return t.astype(np.int32)


# ----------------------------------------------------------------------------- experiment


def run(config: dict, *, progress: bool = True) -> Outcome:
    """Solve the SVM per seed, run GD for every seed in one vmapped program, summarise."""
    del progress  # a single compiled call; nothing to report along the way
    seeds = config["seeds"]
    key = jax.random.key(config["seed"])
    k_data, k_init = jax.random.split(key)
    del key
    xs, ys, w_svm, margin_svm, support = [], [], [], [], []
    for s in range(seeds):
        x, y = make_data(
            jax.random.fold_in(k_data, s),
            config["n"],
            gap=config["gap"],
            aniso=config["aniso"],
            tilt=config["tilt"],
        )
        sol = svm.hard_margin_svm(x, y.astype(np.int32))
        xs.append(x)
        ys.append(y)
        w_svm.append(np.asarray(sol.w))
        margin_svm.append(float(sol.margin))
        support.append(np.asarray(sol.support))
    x, y = np.stack(xs), np.stack(ys)
    w_svm, margin_svm = np.stack(w_svm), np.asarray(margin_svm)
    # β = σ_max(X)² / (4N) bounds the Hessian of the mean logistic loss.
    beta = np.linalg.norm(x, ord=2, axis=(1, 2)) ** 2 / (4 * config["n"])
    lr = (config["lr_scale"] / beta).astype(np.float32)
    w0 = config["init_std"] * jax.random.normal(k_init, (seeds, x.shape[-1]))
    ckpt = _log_checkpoints(config["num_steps"], config["num_checkpoints"])
    path = jax.jit(jax.vmap(logistic_gd_path, in_axes=(0, 0, 0, 0, None)))
    ws = np.asarray(path(x, y, w0, lr, jnp.asarray(ckpt)))  # (S, T, D)

    unit_svm = w_svm / np.linalg.norm(w_svm, axis=-1, keepdims=True)
    norms = np.linalg.norm(ws, axis=-1)
    cos = np.einsum("std,sd->st", ws, unit_svm) / norms
    margin = np.stack([np.asarray(svm.normalized_margin(ws[s], x[s], y[s])) for s in range(seeds)])
    ratio = margin / margin_svm[:, None]
    angle_deg = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))

    fig, axes = plotting.figure(1, 4, size=(4.2, 4.0))
    ax = axes[0][0]
    plotting.band(ax, ckpt, cos, label="GD on logistic loss")
    ax.axhline(1.0, color="k", ls="--", lw=0.8, label="SVM direction")
    ax.set_xscale("log")
    ax.set_ylim(max(-1.0, float(cos.mean(0).min()) - 0.1), 1.02)
    ax.set_xlabel("GD step t")
    ax.set_ylabel("cos(w(t), w_SVM)")
    ax.set_title("(a) direction vs SVM", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")

    ax = axes[0][1]
    plotting.band(ax, ckpt, ratio, label="GD margin / SVM margin")
    ax.axhline(1.0, color="k", ls="--", lw=0.8, label="SVM margin")
    ax.set_xscale("log")
    ax.set_ylim(max(-1.0, float(ratio.mean(0).min()) - 0.1), 1.05)
    ax.set_xlabel("GD step t")
    ax.set_ylabel("min_i y_i w·x_i / ‖w‖  ÷  SVM margin")
    ax.set_title("(b) normalized margin vs SVM margin", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")

    ax = axes[0][2]
    plotting.band(ax, ckpt, angle_deg, label="angle(w(t), w_SVM)")
    late = ckpt >= 100
    # Reference slope c / log t (Soudry et al.: the angle decays like 1/log t), fitted at t=100.
    t0 = ckpt[late][0]
    c = angle_deg.mean(0)[late][0] * np.log(t0)
    ax.plot(
        ckpt[late], c / np.log(ckpt[late]), "k--", lw=0.8, label="∝ 1 / log t (matched at t = 100)"
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("GD step t")
    ax.set_ylabel("angle to SVM direction (degrees)")
    ax.set_title("(c) slow 1/log t convergence", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes[0][3]
    s0 = 0
    pos, neg = y[s0] > 0, y[s0] < 0
    ax.scatter(*x[s0][pos].T, s=9, c="tab:red", label="y = +1")
    ax.scatter(*x[s0][neg].T, s=9, c="tab:blue", label="y = −1")
    sv = support[s0]
    ax.scatter(
        *x[s0][sv].T, s=60, facecolors="none", edgecolors="k", lw=1.0, label="support vectors"
    )
    lim = 1.1 * np.abs(x[s0]).max()
    line = np.linspace(-lim, lim, 2)

    def draw(w, **kw):
        d = np.array([-w[1], w[0]]) / np.linalg.norm(w)  # boundary direction
        ax.plot(line * d[0], line * d[1], **kw)

    u = unit_svm[s0]
    draw(u, color="k", lw=1.8, label="SVM boundary")
    for sign in (-1, 1):
        off = sign * margin_svm[s0] * u
        d = np.array([-u[1], u[0]])
        ax.plot(off[0] + line * d[0], off[1] + line * d[1], "k:", lw=0.8)
    cmap = plotting.plt.get_cmap("viridis")
    snaps = [t for t in config["snapshot_steps"] if t <= config["num_steps"]]
    for i, t in enumerate(snaps):
        j = int(np.argmin(np.abs(ckpt - t)))
        draw(
            ws[s0, j],
            color=cmap(i / max(1, len(snaps))),
            lw=1.0,
            ls="--",
            label=f"GD boundary, t={ckpt[j]:,}",
        )
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_title(f"(d) seed {s0}: data, SVM (dotted: margin), GD", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    fig.suptitle(
        f"Gradient descent on the logistic loss finds the max-margin separator "
        f"(no bias, lr = {config['lr_scale']}/β, mean ± std over {seeds} data sets)",
        fontsize=10,
    )
    fig.tight_layout()

    fc, fr = cos[:, -1], ratio[:, -1]
    numbers = {
        "step": ckpt,
        "cosine": cos,
        "angle_deg": angle_deg,
        "normalized_margin": margin,
        "margin_ratio": ratio,
        "w_norm": norms,
        "svm_w": w_svm,
        "svm_margin": margin_svm,
        "num_support_vectors": np.asarray([int(m.sum()) for m in support]),
        "lr": lr,
        "final_cosine": fc,
        "final_margin": margin[:, -1],
        "final_margin_ratio": fr,
    }
    headline = {
        "steps": int(ckpt[-1]),
        "final cos(w, w_SVM)": f"{fc.mean():.5f} ± {fc.std():.5f}",
        "final angle to SVM (deg)": float(angle_deg[:, -1].mean()),
        "final margin / SVM margin": f"{fr.mean():.4f} ± {fr.std():.4f}",
        "min final cos over seeds": float(fc.min()),
        "SVM margin (mean)": float(margin_svm.mean()),
    }
    notes = [
        "Per seed: final cosine "
        + ", ".join(f"{v:.5f}" for v in fc)
        + "; final margin / SVM margin "
        + ", ".join(f"{v:.4f}" for v in fr)
        + ".",
        "The step size 1/β (β = σ_max(X)²/4N) is within Soudry et al.'s condition η < 2/β.",
    ]
    return Outcome(fig, numbers, headline, notes)
