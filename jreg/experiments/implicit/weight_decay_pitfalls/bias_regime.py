"""Part (a'), issue 13: where, if anywhere, does decaying biases kill more ReLU units?

Mechanism looked for: a unit whose pre-activation ``w·x + b`` is positive on part of the
data only because of a positive bias; decaying ``b`` towards 0 could switch it off for
every input. Uniform decoupled decay of ``w`` and ``b`` scales ``w·x + b`` by
``(1 − ηλ)`` and keeps its sign, so such deaths need the loss gradient; a positive bias
initialisation (a common guard against dead ReLUs) gives the bias something to lose. One
vmapped sweep over (bias decay on/off) x learning rate x bias init x λ x seeds, with the
dead units counted over training.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jreg import tasks
from jreg.analysis import rescaling
from jreg.core import train
from jreg.experiments import kit
from jreg.nn import models, nets

from . import _common
from .dead_relu import dead_units, sgdw_bias_switch


def model(widths) -> nets.Model:
    """He-initialised ReLU MLP; hidden biases start at ``hp["bias_init"]`` (default 0).

    With ``hp["rescale"] = c`` (default 1) the first layer's ``w, b`` are multiplied by c
    and the second layer's ``w`` by 1/c: the same function (ReLU is 1-homogeneous), with
    unbalanced layer norms.
    """

    def init(key, hp):
        params = models.mlp_init(key, widths, init="he")
        for layer in params[:-1]:
            layer["b"] = layer["b"] + hp.get("bias_init", 0.0)
        return rescaling.rescale_layer(params, 0, hp.get("rescale", 1.0))

    def apply(params, x, *, key, train, hp):
        del key, train, hp
        return models.mlp_apply(params, x, activation="relu")

    return nets.pure(init, apply, uses_hp=True)


def compute(config: dict, run: kit.Run) -> dict:
    """The sweep; dead units summed over layers, shape (2, R, B, K, S, T) (decay arm first)."""
    ds = _common.moons(config)
    x = jnp.asarray(ds["train"]["x"])
    task = tasks.supervised(
        model(config["dead_widths"]),
        optimizer=lambda hp: sgdw_bias_switch(hp["lr"], hp["decay"], hp["bias_decay"]),
        hparams={"decay": 0.0, "bias_decay": 0.0, "lr": 0.1, "bias_init": 0.0},
        track=lambda state, hp: {"dead": dead_units(state["params"], x).sum()},
    )
    axes = {
        "bias_decay": [0.0, 1.0],
        "lr": config["regime_lrs"],
        "bias_init": config["regime_bias_inits"],
        "decay": config["regime_decays"],
    }
    res, step = _common.sweep(run, task, ds, config, "dead", train.grid(**axes))
    h, shape = res.history, tuple(len(v) for v in axes.values())
    return {
        **{k: np.asarray(v, np.float32) for k, v in axes.items() if k != "bias_decay"},
        "step": step,
        "dead": _common.on_grid(h["dead"], shape),  # (2, R, B, K, S, T)
        "test_accuracy": _common.on_grid(h["test_accuracy"][:, :, -1], shape),
    }


def more_dead(regime: dict) -> tuple[np.ndarray, np.ndarray]:
    """Paired (same seed) final dead-unit difference, biases decayed − not: mean and SE (R,B,K)."""
    d = regime["dead"][1, ..., -1] - regime["dead"][0, ..., -1]
    return d.mean(-1), d.std(-1, ddof=1) / np.sqrt(d.shape[-1])


def notes(regime: dict) -> list[str]:
    """Sentences computed from the numbers: the cells where bias decay kills more units."""
    mean, se = more_dead(regime)
    lrs, inits, decays = regime["lr"], regime["bias_init"], regime["decay"]
    idx = lambda cond: [tuple(int(i) for i in c) for c in zip(*np.nonzero(cond), strict=True)]
    cell = lambda i: f"lr {lrs[i[0]]:g}, b0 {inits[i[1]]:g}, λ {decays[i[2]]:g}: {mean[i]:+.1f}"
    more, fewer = idx((mean > 0) & (mean > 2 * se)), idx((mean < 0) & (mean < -2 * se))
    final = regime["dead"][..., -1].mean(-1)  # (2, R, B, K)
    peak = regime["dead"].max(-1).mean(-1)
    grid = (
        f"lr ∈ {{{', '.join(f'{v:g}' for v in lrs)}}}, bias init b0 ∈ "
        f"{{{', '.join(f'{v:g}' for v in inits)}}}, λ ∈ {{{', '.join(f'{v:g}' for v in decays)}}}"
    )
    return [
        f"(a') Regime sweep ({grid}; {regime['dead'].shape[-2]} seeds, paired): decaying "
        "biases too gives MORE dead units at the end (mean paired difference > 2 standard "
        f"errors) in {len(more)} of {mean.size} cells"
        + (": " + "; ".join(cell(i) for i in more) if more else "")
        + f", FEWER in {len(fewer)}"
        + (": " + "; ".join(cell(i) for i in fewer) if fewer else "")
        + ".",
        f"(a') Largest final dead count: {final[0].max():.1f} (weights only) vs "
        f"{final[1].max():.1f} (weights + biases); largest count at any evaluation "
        f"{peak[0].max():.1f} vs {peak[1].max():.1f}. With b0 = {inits[-1]:g} the final dead "
        f"units average {final[0, :, -1].mean():.2f} (weights only) vs "
        f"{final[1, :, -1].mean():.2f} (weights + biases) over the lr x λ cells.",
    ]


def draw(axes, regime: dict) -> None:
    """Paired difference in final dead units per (λ, lr), one line per bias init; curves."""
    mean, se = more_dead(regime)
    xpos = np.arange(regime["decay"].size)
    for b, b0 in enumerate(regime["bias_init"]):
        for r, lr in enumerate(regime["lr"]):
            axes[0].errorbar(
                xpos + 0.05 * (3 * b + r), mean[r, b], yerr=2 * se[r, b], marker="o",
                capsize=2, label=f"b0={b0:g}, lr={lr:g}", color=f"C{3 * b + r}",
            )  # fmt: skip
    axes[0].axhline(0, color="k", lw=0.8)
    axes[0].set_xticks(xpos, [f"{v:g}" for v in regime["decay"]], fontsize=8)
    axes[0].set_xlabel("λ")
    axes[0].set_ylabel("dead units: biases decayed − not (±2 SE)")
    axes[0].set_title("(a') does bias decay kill more units?", fontsize=10)
    axes[0].legend(fontsize=6, ncol=2)
    r, b, k = np.unravel_index(np.argmax(np.abs(mean)), mean.shape)
    for arm, name in enumerate(("weights only", "weights + biases")):
        kit.band(axes[1], regime["step"], regime["dead"][arm, r, b, k], label=name)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("dead units")
    axes[1].set_title(
        f"(a') largest gap: lr {regime['lr'][r]:g}, b0 {regime['bias_init'][b]:g}, "
        f"λ {regime['decay'][k]:g}",
        fontsize=9,
    )
    axes[1].legend(fontsize=8)
