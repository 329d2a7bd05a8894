"""Part (c): Adam with L2 in the loss vs AdamW's decoupled decay at the same λ.

Loshchilov & Hutter (2019): Adam rescales the L2 gradient ``λW`` per coordinate, AdamW
subtracts ``lr·λ·W`` unnormalised; the two coincide for SGD. Weight matrices only in both.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jreg import tasks
from jreg.core import streams, train
from jreg.nn import nets
from jreg.regularizers import penalties, transforms

ARMS = ("Adam (λ=0)", "Adam + L2 in loss", "AdamW")


def run(config: dict, ds: dict, progress: bool, eval_every: int) -> dict:
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
    zero, k = np.zeros(1, np.float32), lams.size
    spe = config["n_train"] // config["adam_batch_size"]
    res = train.sweep(
        task,
        ds,
        stream=streams.epochs(config["adam_batch_size"]),
        seeds=config["seeds"],
        hparams={
            "l2": np.concatenate([zero, lams, np.zeros_like(lams)]),
            "wd": np.concatenate([zero, np.zeros_like(lams), lams]),
        },
        num_steps=config["adam_epochs"] * spe,
        eval_every=eval_every * spe,
        progress=progress,
    )
    h = jax.tree.map(np.asarray, res.history)
    pick = dict(zip(ARMS, (slice(0, 1), slice(1, 1 + k), slice(1 + k, 1 + 2 * k)), strict=True))
    return {
        "lams": lams,
        "step": h["step"][0, 0],
        **{
            name: {
                "test_accuracy": h["test_accuracy"][s, :, -1],
                "train_accuracy": h["train_accuracy"][s, :, -1],
                "w_norm": h["w_norm"][s, :, -1],
                "w_norm_curve": h["w_norm"][s],
            }
            for name, s in pick.items()
        },
    }


def mid_index(lams) -> int:
    """Index of the λ closest to 0.1 (log scale), the one shown in detail."""
    return int(np.argmin(np.abs(np.log(np.asarray(lams)) - np.log(1e-1))))


def notes(adam: dict) -> list[str]:
    """Sentences computed from :func:`run`'s numbers."""
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
    from jreg.experiments import plotting

    lams = np.asarray(adam["lams"])
    colors = {"Adam + L2 in loss": "tab:orange", "AdamW": "tab:green"}
    for name, col in colors.items():
        for ax, key_ in ((axes[0], "test_accuracy"), (axes[1], "w_norm")):
            v = np.asarray(adam[name][key_])
            ax.errorbar(
                lams, v.mean(1), yerr=v.std(1), marker="o", capsize=3, color=col, label=name
            )
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
    for name, col in colors.items():
        plotting.band(
            axes[2], adam["step"], np.asarray(adam[name]["w_norm_curve"][mid]), color=col,
            label=f"{name}, λ={lams[mid]:g}",
        )  # fmt: skip
    plotting.band(
        axes[2], adam["step"], np.asarray(base["w_norm_curve"][0]), color="grey",
        label="Adam, λ = 0",
    )  # fmt: skip
    axes[2].set_xlabel("step")
    axes[2].set_ylabel("‖weights‖")
    axes[2].set_title("(c) weight norm during training", fontsize=10)
    axes[2].legend(fontsize=8)
