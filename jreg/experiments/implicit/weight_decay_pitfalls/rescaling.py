"""Part (d), issue 13: ReLU rescaling symmetry, and weight decay balancing the layers.

``relu(c·z) = c·relu(z)`` for ``c > 0``: multiplying a ReLU layer's ``w, b`` by ``c`` and the
next layer's ``w`` by ``1/c`` leaves the network's function unchanged, a flat direction of
the loss. Along it the L2 norm ``c²‖θ_l‖² + ‖W_{l+1}‖²/c²`` is smallest at balanced norms,
so weight decay breaks the tie. For SGD with decoupled decay on every parameter the
imbalance ``Δ_l = ‖θ_l‖² − ‖W_{l+1}‖²`` (``θ_l = (w_l, b_l)``) obeys ``Δ_{t+1} = (1 − ηλ)²
Δ_t + η²(‖g_{θ_l}‖² − ‖g_{W_{l+1}}‖²)`` (the loss-gradient cross terms cancel by the
symmetry): conserved up to O(η²) without decay (Du, Hu & Lee 2018), and shrinking like
``(1 − ηλ)^{2t}`` with it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jreg import tasks
from jreg.analysis import rescaling
from jreg.core import train
from jreg.experiments import kit
from jreg.nn import models
from jreg.util import checks

from . import _common
from .bias_regime import model
from .dead_relu import sgdw_bias_switch


def invariance(params, x: jax.Array, scales) -> dict:
    """Max |f_c(x) − f(x)| / max |f(x)| over the logits on ``x`` (N, D), per layer and c."""
    f = lambda p: models.mlp_apply(p, x, activation="relu")
    base = f(params)
    rel = lambda p: float(jnp.max(jnp.abs(f(p) - base)) / jnp.max(jnp.abs(base)))
    return {
        f"layer {i}, c={c:g}": rel(rescaling.rescale_layer(params, i, c))
        for i in range(len(params) - 1)
        for c in scales
    }


def _sq_norms(params) -> tuple[jax.Array, jax.Array]:
    """Per hidden layer: ``‖θ_l‖² = ‖w_l‖² + ‖b_l‖²`` and ``‖w_{l+1}‖²``, shape (L,) each.

    Layer totals: :func:`jreg.analysis.rescaling.unit_imbalance` summed over a layer's
    units gives the same Δ_l in another order of summation (so other float rounding).
    """
    sq = lambda a: jnp.sum(jnp.square(a))
    inner = [sq(p["w"]) + sq(p["b"]) for p in params[:-1]]
    return jnp.stack(inner), jnp.stack([sq(p["w"]) for p in params[1:]])


def _imbalance(params) -> jax.Array:
    """``Δ_l = ‖θ_l‖² − ‖w_{l+1}‖²`` per hidden layer, shape (L,)."""
    inner, outer = _sq_norms(params)
    return inner - outer


def _ratio(params) -> jax.Array:
    """``‖θ_l‖ / ‖w_{l+1}‖`` per hidden layer, shape (L,)."""
    inner, outer = _sq_norms(params)
    return jnp.sqrt(inner / outer)


def compute(config: dict, run: kit.Run) -> dict:
    """Invariance check at init, and one sweep over (init rescale c0) x (λ) x seeds.

    Returns the invariance errors, ``rescales`` (C,), ``decays`` (K,), and per config the
    layer norm ratios and imbalances over training, shape (C, K, S, T, L), with the
    prediction ``(1 − ηλ)^{2t} Δ_0``.
    """
    ds = _common.moons(config)
    widths, lr = config["dead_widths"], config["dead_lr"]
    params0 = models.mlp_init(checks.seed_key(config["seed"]), widths, init="he")
    task = tasks.supervised(
        model(widths),
        optimizer=lambda hp: sgdw_bias_switch(lr, hp["decay"], 1.0),
        hparams={"decay": 0.0, "rescale": 1.0},
        track=lambda state, hp: {
            "ratio": _ratio(state["params"]),
            "imbalance": _imbalance(state["params"]),
        },
    )
    rescales = np.asarray(config["rescale_inits"], np.float32)
    decays = np.asarray(config["rescale_decays"], np.float32)
    grid = train.grid(rescale=rescales, decay=decays)
    res, step = _common.sweep(run, task, ds, config, "dead", grid)
    h, shape = res.history, (rescales.size, decays.size)
    # Δ at step 0: the sweep's init key for seed s is fold_in(key(s), 0).
    init = lambda s, c: model(widths).init(
        jax.random.fold_in(checks.seed_key(s), 0), {"rescale": c}
    )
    delta0 = np.asarray(
        [[_imbalance(init(s, c)[0]) for s in range(config["seeds"])] for c in rescales]
    )  # (C, S, L)
    factor = (1.0 - lr * decays)[None, :, None, None, None] ** (2.0 * step)[:, None]
    return {
        "invariance": invariance(params0, jnp.asarray(ds["train"]["x"]), config["rescale_scales"]),
        "rescales": rescales,
        "decays": decays,
        "step": step,
        "ratio": _common.on_grid(h["ratio"], shape),  # (C, K, S, T, L)
        "imbalance": _common.on_grid(h["imbalance"], shape),
        "imbalance_init": delta0,  # (C, S, L)
        "imbalance_predicted": delta0[:, None, :, None, :] * factor,  # (C, K, S, T, L)
        "test_accuracy": _common.on_grid(h["test_accuracy"][:, :, -1], shape),
    }


def notes(resc: dict) -> list[str]:
    """Sentences computed from :func:`compute`'s numbers."""
    inv = max(resc["invariance"].values())
    ratio = resc["ratio"]  # (C, K, S, T, L)
    delta, pred = resc["imbalance"][..., -1, :], resc["imbalance_predicted"][..., -1, :]
    d0 = resc["imbalance_init"][:, None]  # (C, 1, S, L)
    out = [
        "(d) Scaling a hidden ReLU layer's w, b by c and the next layer's w by 1/c (c ∈ "
        + ", ".join(f"{c:g}" for c in sorted({float(k.split("=")[1]) for k in resc["invariance"]}))
        + f") changes the logits by at most {inv:.1e} of their largest value (float32 "
        f"epsilon {np.finfo(np.float32).eps:.1e}).",
    ]
    for i, c in enumerate(resc["rescales"]):
        for k, lam in enumerate(resc["decays"]):
            r0, r1 = ratio[i, k, :, 0, 0].mean(), ratio[i, k, :, -1, 0].mean()
            kept = (delta[i, k] / d0[i, 0]).mean(0)  # (L,)
            want = (pred[i, k] / d0[i, 0]).mean(0)
            out.append(
                f"(d) init rescale c0 = {c:g}, λ = {lam:g}: ‖θ₁‖/‖W₂‖ {r0:.3g} (first "
                f"evaluation) → {r1:.3g} (end); imbalance Δ_T/Δ_0 per layer "
                + ", ".join(f"{v:.3g}" for v in kept)
                + " vs predicted (1 − ηλ)^{2T} "
                + ", ".join(f"{v:.3g}" for v in want)
                + "."
            )
    return out


def draw(ax, resc: dict) -> None:
    """Norm ratio ‖θ₁‖/‖W₂‖ over training, per init rescale and λ."""
    for i, c in enumerate(resc["rescales"]):
        for k, lam in enumerate(resc["decays"]):
            curve, ls = np.asarray(resc["ratio"])[i, k, :, :, 0], "-" if lam > 0 else "--"
            kit.band(ax, resc["step"], curve, label=f"c0={c:g}, λ={lam:g}", ls=ls)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("‖(w₁, b₁)‖ / ‖w₂‖")
    inv = max(resc["invariance"].values())
    ax.set_title(f"(d) ReLU rescaling: layer balance (|Δf|/|f| ≤ {inv:.0e})", fontsize=9)
    ax.legend(fontsize=7)
