"""Three pitfalls of weight decay: bias decay and dead ReLUs, batch norm, Adam + L2 vs AdamW.

(a) Decaying biases (``mask=None``) vs decaying only weight matrices
    (:func:`jreg.regularizers.transforms.default_decay_mask`) in a ReLU MLP trained with SGDW:
    count the
    units that output 0 on every training example (:mod:`.dead_relu`).
(b) Batch norm makes the preceding layer scale invariant, ``f(x; cW) = f(x; W)``: an L2
    penalty on ``W`` cannot change the function class, only ``‖W‖``, and the effective
    learning rate ``η/‖W‖²`` grows as the penalty shrinks the norm (:mod:`.batch_norm`).
(c) Adam with an L2 term in the loss vs AdamW's decoupled decay at the same λ
    (Loshchilov & Hutter 2019): Adam rescales the L2 gradient per coordinate, AdamW does
    not (:mod:`.adam`).
(a') Issue 13: the regime where bias decay might kill ReLUs — learning rate, positive bias
    init, λ — in one sweep (:mod:`.bias_regime`).
(d) Issue 13: ReLU rescaling symmetry, and weight decay balancing the layer norms
    (:mod:`.rescaling`).
"""

from __future__ import annotations

import numpy as np

from jreg import data, tasks
from jreg.experiments import kit
from jreg.experiments.kit import mean_std

from . import adam, batch_norm, bias_regime, dead_relu, rescaling
from .batch_norm import scale_invariance
from .dead_relu import dead_units, near_dead_units, sgdw_bias_switch

__all__ = ["dead_units", "near_dead_units", "scale_invariance", "sgdw_bias_switch"]

DESCRIPTION = (
    "Weight-decay pitfalls: (a) bias decay vs dead ReLUs (two moons, SGDW), (b) batch "
    "norm scale invariance and effective lr (MNIST-1D), (c) Adam+L2 vs AdamW "
    "(MNIST-1D); (a') bias decay regime sweep (lr, bias init, λ); (d) ReLU rescaling."
)


def get_config(quick: bool = False) -> dict:
    """Sizes of the three parts; ``quick`` shrinks epochs and data."""
    full = {
        "seed": 0,
        "seeds": 5,
        # (a) dead ReLUs: two moons, 2-64-64-2 ReLU MLP, SGD with decoupled decay
        "dead_n": 512,
        "dead_noise": 0.1,
        "dead_widths": (2, 64, 64, 2),
        "dead_lr": 0.1,
        "dead_decays": (0.0, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
        "dead_epochs": 150,
        "dead_batch_size": 32,
        # (a') the regime sweep (same data, net and epochs as (a))
        "regime_lrs": (0.03, 0.1, 0.3),
        "regime_bias_inits": (0.0, 0.1, 1.0),
        "regime_decays": (0.0, 1e-2, 0.1, 0.3),
        # (d) ReLU rescaling: init with layer 1 x c0, layer 2 / c0; SGDW on all params
        "rescale_inits": (1.0, 4.0),
        "rescale_decays": (0.0, 3e-2),
        "rescale_scales": (1e-3, 0.1, 10.0, 1e3),
        # (b) batch norm: 40 -> W (no bias) -> BN -> ReLU -> 10, L2 on W only, plain SGD
        "n_train": 4000,
        "n_test": 1000,
        "bn_hidden": 64,
        "bn_lr": 0.2,
        "bn_l2": (0.0, 1e-2),
        "bn_epochs": 30,
        "bn_batch_size": 50,
        "bn_scales": (0.1, 10.0),
        # (c) Adam + L2 in the loss vs AdamW, MLP 40-128-10 (ReLU), weights-only decay
        "adam_widths": (40, 128, 10),
        "adam_lr": 1e-3,
        "adam_lams": (1e-3, 1e-2, 1e-1, 1.0),
        "adam_epochs": 40,
        "adam_batch_size": 50,
    }
    quick_sizes = {"dead_n": 200, "dead_epochs": 20, "n_train": 1000, "n_test": 500}
    quick_sizes |= {"bn_epochs": 6, "adam_epochs": 6}
    return kit.sized(quick, full, quick_overrides=quick_sizes)


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Run the five parts (five sweeps); numbers under ``dead``, ``batch_norm``, ``adam``, ..."""
    dead = dead_relu.compute(config, run)
    regime = bias_regime.compute(config, run)
    resc = rescaling.compute(config, run)
    ds = tasks.split_data(*data.mnist1d(config["n_train"], config["n_test"], seed=config["seed"]))
    bn = batch_norm.compute(config, ds, run)
    ad = adam.compute(config, ds, run)
    decays, s = dead["decays"], dead["decays"].size - 1
    lams, mid = ad["lams"], adam.mid_index(ad["lams"])
    bn_final = bn["w_norm"][:, :, -1]
    pm = lambda v: mean_std(v, ".4g", ".2g")
    headline = {
        **{
            f"(a) dead units, λ={decays[s]:g}, decay on {n}": pm(dead[n]["dead_total_final"][s])
            for n in dead_relu.SETTINGS
        },
        "(b) max |f(cW) − f(W)| (trained, c=0.1, 10)": float(
            max(bn["max_abs_logit_diff"]["trained"].values())
        ),
        "(b) final ‖W‖, no penalty": pm(bn_final[0]),
        "(b) final ‖W‖, L2": pm(bn_final[-1]),
        **{
            f"(c) {q}, {n}, λ={lams[mid]:g}": pm(ad[n][k][mid])
            for q, k in (("test acc", "test_accuracy"), ("final ‖W‖", "w_norm"))
            for n in ("Adam + L2 in loss", "AdamW")
        },
    }
    mean, se = bias_regime.more_dead(regime)
    headline["(a') cells where bias decay kills more units (> 2 SE)"] = (
        f"{int(np.sum((mean > 0) & (mean > 2 * se)))} of {mean.size}"
    )
    headline["(d) max |f_c − f| / max |f| under ReLU rescaling"] = max(resc["invariance"].values())
    for k, lam in enumerate(resc["decays"]):
        headline[f"(d) ‖θ₁‖/‖W₂‖ at the end, c0={resc['rescales'][-1]:g}, λ={lam:g}"] = pm(
            resc["ratio"][-1, k, :, -1, 0]
        )
    return {
        "dead": dead,
        "batch_norm": bn,
        "adam": ad,
        "bias_regime": regime,
        "rescaling": resc,
        "headline": headline,
        "notes": dead_relu.notes(dead)
        + bias_regime.notes(regime)
        + batch_norm.notes(bn)
        + adam.notes(ad)
        + rescaling.notes(resc),
    }


def figure(numbers: dict, config: dict):
    """One row of three panels per part; (a') and (d) share the last row."""
    fig, axes = kit.panels(12, ncols=3, size=(4.3, 3.3))
    dead_relu.draw(axes[0:3], numbers["dead"], config)
    batch_norm.draw(axes[3:6], numbers["batch_norm"], config)
    adam.draw(axes[6:9], numbers["adam"])
    bias_regime.draw(axes[9:11], numbers["bias_regime"])
    rescaling.draw(axes[11], numbers["rescaling"])
    n_seeds = np.asarray(numbers["batch_norm"]["w_norm"]).shape[1]
    fig.suptitle(f"Weight-decay pitfalls (mean ± std over {n_seeds} seeds)", fontsize=11)
    fig.tight_layout()
    return fig
