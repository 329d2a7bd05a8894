"""The analytic counterpart of early stopping's spectral bias (issue 13, item 6).

Least squares of one-hot labels on centred images, trained by full-batch gradient descent,
shrinks its gradient along principal component k by exactly ``1 − ηλ_k`` per step
(:func:`jreg.analysis.gd_pc_decay`). :func:`rates` measures the per-component factors on
such a run; :func:`headline`, :func:`note` and :func:`draw` report them beside the closed form.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jreg import analysis, tasks
from jreg.core import streams
from jreg.experiments import kit
from jreg.nn import nets


def rates(x: np.ndarray, y: np.ndarray, config: dict, run: kit.Run) -> dict:
    """Per-component decay of full-batch GD on least squares (one-hot targets), measured.

    ``ŷ = x_c W + b`` on the centred images (``"mse"``) tracks ``G_k = ‖v_kᵀ ∇_W L‖``; rank
    k's factor is ``(G_k(t)/G_k(t_0))^{1/(t − t_0)}`` while ``G_k`` > 1e-3 of its first value
    (float32 floor), for ranks with ``λ_k > 1e-4 λ_1``. Returns ``rank``, ``eigenvalue``,
    ``predicted``, ``measured`` and ``eta`` (½-convention ``(1/2N)‖XW − Y‖²``).
    """
    evals, basis = analysis.pca_basis(x)
    xc = jnp.asarray(x) - jnp.asarray(x).mean(0)
    targets = jax.nn.one_hot(y, int(y.max()) + 1)
    n, d, k_out = xc.shape[0], xc.shape[1], targets.shape[1]
    eta = config["linear_eta_lambda_max"] / float(evals[0])  # ½-convention step size
    zeros = {"w": jnp.zeros((d, k_out)), "b": jnp.zeros((k_out,))}
    model = nets.pure(lambda key: zeros, lambda p, x_, key, train: x_ @ p["w"] + p["b"])

    def track(state, hp):
        p = state["params"]
        grad = xc.T @ (xc @ p["w"] + p["b"] - targets) * (2.0 / n)
        return {"pc_grad": jnp.linalg.norm(basis.T @ grad, axis=1)}

    # "mse" has no ½: the SGD step is η/2 for a per-step factor 1 − ηλ_k.
    task = tasks.supervised(model, optimizer=optax.sgd(eta / 2), loss="mse", track=track, splits=())
    res = run.sweep(
        task, {"train": {"x": xc, "y": targets}}, stream=streams.full_batch(), seeds=[0],
        num_steps=config["linear_steps"], eval_every=1,
    )[0, 0]  # fmt: skip
    g = np.asarray(res.history["pc_grad"], np.float64)  # (T, D) after steps 1..T
    steps = res.history["step"]
    ev = np.asarray(evals)  # ranks past the data's rank (λ_k ≈ 0) have no signal to decay
    ranks = np.asarray([r for r in config["rate_ranks"] if r <= d and ev[r - 1] > 1e-4 * ev[0]])
    ratio = g[:, ranks - 1] / g[0, ranks - 1]  # (T, R)
    last = np.maximum([np.flatnonzero(col > 1e-3)[-1] for col in ratio.T], 1)  # (R,)
    measured = ratio[last, np.arange(len(ranks))] ** (1.0 / (steps[last] - steps[0]))
    lam = ev[ranks - 1]
    predicted = np.asarray(analysis.gd_pc_decay(lam, eta, 1))
    return dict(rank=ranks, eigenvalue=lam, predicted=predicted, measured=measured, eta=eta)


def headline(lin: dict) -> dict:
    """Measured and closed-form factor per rank, for the report table."""
    gd = "GD least squares, PC {}: factor/step measured (closed form)"
    rates_ = zip(lin["rank"], lin["measured"], lin["predicted"], strict=True)
    return {gd.format(r): f"{m:.5f} ({p:.5f})" for r, m, p in rates_}


def note(lin: dict) -> str:
    """The sentence on how close the measured factors are to the closed form."""
    rel = np.abs(lin["measured"] - lin["predicted"]) / np.abs(lin["predicted"])
    order = (
        "so the top components are fitted first"
        if np.all(np.diff(lin["measured"]) > 0)
        else "not increasing with k, so the top components are not fitted first"
    )
    return (
        f"Least squares on the same centred images by full-batch GD (η = "
        f"{lin['eta']:.4g}, ½-convention): the gradient along PC k shrinks per step by a "
        f"measured factor within {rel.max():.2e} (relative) of the closed form 1 − ηλ_k for "
        f"ranks {', '.join(map(str, lin['rank']))}: from {lin['measured'][0]:.4f} (k = 1) to "
        f"{lin['measured'][-1]:.5f} (k = {lin['rank'][-1]}), {order}."
    )


def draw(ax, lin: dict) -> None:
    """1 − factor against λ_k: the closed form ηλ_k (line) and the measured rates (dots)."""
    lam, pred, meas = (np.asarray(lin[key]) for key in ("eigenvalue", "predicted", "measured"))
    ax.plot(lam, 1 - pred, "k-", lw=1.0, label="closed form ηλ_k")
    ax.plot(lam, 1 - meas, "o", color="C1", ms=5, label="measured")
    for r, lk, m in zip(lin["rank"], lam, meas, strict=True):
        ax.annotate(f"k={r}", (lk, 1 - m), fontsize=6, xytext=(3, -8), textcoords="offset points")
    ax.set(xscale="log", yscale="log", xlabel="eigenvalue λ_k of the input covariance")
    ax.set_ylabel("1 − (per-step factor of the gradient along v_k)")
    ax.set_title("least squares by GD: per-component decay", fontsize=9)
    ax.legend(fontsize=7)
