"""Part (c): Adam with L2 in the loss vs AdamW's decoupled decay at the same λ.

Loshchilov & Hutter (2019): Adam rescales the L2 gradient ``λW`` per coordinate, AdamW
subtracts ``lr·λ·W`` unnormalised; the two coincide for SGD. Weight matrices only in both.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jreg import tasks
from jreg.experiments import kit
from jreg.nn import nets
from jreg.regularizers import penalties, transforms

from . import _common

ARMS = ("Adam (λ=0)", "Adam + L2 in loss", "AdamW")


def compute(config: dict, ds: dict, run: kit.Run) -> dict:
    """One sweep over (λ=0, L2 λ's, AdamW λ's) x seeds on MNIST-1D.

    Returns ``lams`` (K,) and per arm final test / train accuracy and weight norm (K, S)
    and the weight-norm curve (K, S, T).
    """
    mask = transforms.default_decay_mask
    lr = config["adam_lr"]
    task = tasks.supervised(
        nets.mlp(config["adam_widths"], activation="relu", init="he"),
        # AdamW: w <- w - lr * (adam_step + wd * w) on the weight matrices (optax convention).
        optimizer=lambda hp: transforms.adamw(lr, hp["wd"], mask=mask),
        # L2 in the loss: gradient l2 * θ on the weight matrices, rescaled by Adam.
        regularizers={"l2": lambda params, batch, aux: 0.5 * penalties.l2(params, mask)},
        hparams={"wd": 0.0},
        track=lambda state, hp: {"w_norm": jnp.sqrt(penalties.l2(state["params"], mask))},
    )
    lams = np.asarray(config["adam_lams"], np.float32)
    zero, none = np.zeros(1, np.float32), np.zeros_like(lams)
    hparams = {"l2": np.concatenate([zero, lams, none]), "wd": np.concatenate([zero, none, lams])}
    res, step = _common.sweep(run, task, ds, config, "adam", hparams)
    sizes = dict(zip(ARMS, (1, lams.size, lams.size), strict=True))
    keys = ("test_accuracy", "train_accuracy", "w_norm")
    return {
        "lams": lams,
        "step": step,
        **{
            name: {**_common.final(h, *keys), "w_norm_curve": h["w_norm"]}
            for name, h in _common.arms(res.history, sizes).items()
        },
    }


def mid_index(lams) -> int:
    """Index of the λ closest to 0.1 (log scale), the one shown in detail."""
    return int(np.argmin(np.abs(np.log(np.asarray(lams)) - np.log(1e-1))))


def notes(adam: dict) -> list[str]:
    """Sentences computed from :func:`compute`'s numbers."""
    fmt = lambda v, f: ", ".join(f"{x:{f}}" for x in v)
    l2, aw = adam["Adam + L2 in loss"], adam["AdamW"]
    return [
        f"(c) Final test accuracy per λ {fmt(adam['lams'], 'g')}: Adam+L2 "
        f"{fmt(l2['test_accuracy'].mean(1), '.3f')}; AdamW "
        f"{fmt(aw['test_accuracy'].mean(1), '.3f')}; Adam λ=0 "
        f"{adam['Adam (λ=0)']['test_accuracy'].mean():.3f}. Final weight norms: "
        f"Adam+L2 {fmt(l2['w_norm'].mean(1), '.3g')}; AdamW {fmt(aw['w_norm'].mean(1), '.3g')}.",
        "(c) Matching: the same λ is used as the L2 coefficient (loss + ½λ‖W‖², gradient λW "
        "fed through Adam's normalisation) and as AdamW's weight_decay (update − lr·λ·W, not "
        "normalised); the two coincide for SGD. Weight matrices only in both, biases free.",
    ]


def draw(axes, adam: dict) -> None:
    """Test accuracy and final weight norm vs λ, and the weight norm over training."""
    lams = np.asarray(adam["lams"])
    colors = {"Adam + L2 in loss": "tab:orange", "AdamW": "tab:green"}
    for name, col in colors.items():
        for ax, key_ in ((axes[0], "test_accuracy"), (axes[1], "w_norm")):
            kit.seeds_errorbar(ax, lams, adam[name][key_], label=name, dots=False, color=col)
    base = adam["Adam (λ=0)"]
    for ax, key_ in ((axes[0], "test_accuracy"), (axes[1], "w_norm")):
        m, s = np.mean(base[key_]), np.std(base[key_])
        ax.axhline(m, color="grey", ls="--", lw=0.8, label="Adam, λ = 0")
        ax.axhspan(m - s, m + s, color="grey", alpha=0.15, lw=0)
        ax.set_xscale("log")
        ax.set_xlabel("λ (L2: loss + ½λ‖W‖²;  AdamW: weight_decay = λ)")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("test accuracy")
    axes[0].set_title("(c) MNIST-1D test accuracy at the same λ", fontsize=10)
    axes[1].set_ylabel("‖weights‖ at the end")
    axes[1].set_yscale("log")
    axes[1].set_title("(c) final weight norm (matrices only)", fontsize=10)
    mid = mid_index(lams)
    curves = [(f"{n}, λ={lams[mid]:g}", c, adam[n]["w_norm_curve"][mid]) for n, c in colors.items()]
    for label, col, curve in [*curves, ("Adam, λ = 0", "grey", base["w_norm_curve"][0])]:
        kit.band(axes[2], adam["step"], np.asarray(curve), color=col, label=label)
    axes[2].set_xlabel("step")
    axes[2].set_ylabel("‖weights‖")
    axes[2].set_title("(c) weight norm during training", fontsize=10)
    axes[2].legend(fontsize=8)
