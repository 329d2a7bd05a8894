"""Model-wise double descent on MNIST-1D: 20 widths x seeds x {15%, 0%} label noise."""

from __future__ import annotations

import jax
import numpy as np
import optax

from jreg import data, plotting, widths
from jreg.experiments.runner import Outcome

DESCRIPTION = (
    "MNIST-1D, MLP 40-h-h-10 (ReLU), 20 widths 2..300: test error vs size, 15% vs 0% noise."
)


def get_config(quick: bool = False) -> dict:
    """Reference setup (issue 4): SGD 0.01 momentum 0.9, batch 100, 500 epochs, 3 seeds."""
    return {
        "seed": 0,
        # quick: 400 examples, B=50 and lr 0.05 so that widths >= ~18 interpolate the
        # noisy labels within 1,600 steps (the threshold moves with the data size).
        "seeds": 2 if quick else 3,
        "n_train": 400 if quick else 4000,
        "n_test": 1000,
        "label_noise": 0.15,
        "widths": (4, 128, 8) if quick else (2, 300, 20),  # (lo, hi, num), geometric
        "lr": 0.05 if quick else 0.01,
        "momentum": 0.9,
        "batch_size": 50 if quick else 100,
        "num_epochs": 200 if quick else 500,
        "eval_every": 50,
        "num_hidden": 2,
    }


def prepare(config: dict):
    """MNIST-1D with packed clean/noisy training labels and the flip mask."""
    x, y, xt, yt = data.mnist1d(config["n_train"], config["n_test"], seed=config["seed"])
    y_noisy, flipped = widths.flip_labels(
        jax.random.key(config["seed"] + 1), y, 10, config["label_noise"]
    )
    return (x, widths.pack_labels(y, y_noisy, 10), xt, yt), flipped


def summarize(test_err: np.ndarray, train_err: np.ndarray) -> dict:
    """Threshold, classical minimum and peak of a (P,) test-error curve."""
    fits = np.flatnonzero(train_err <= 0.0)
    thr = int(fits[0]) if fits.size else len(test_err) - 1
    small = int(np.argmin(test_err[: thr + 1]))
    peak = small + int(np.argmax(test_err[small:]))
    return {
        "threshold_index": thr if fits.size else None,
        "small_min_index": small,
        "peak_index": peak,
        "peak_above_small_min": float(test_err[peak] - test_err[small]),
        "peak_above_largest": float(test_err[peak] - test_err[-1]),
    }


def train_widths(config: dict, ds, ws, *, noise_levels, progress: bool) -> dict:
    """:func:`jreg.widths.width_sweep` with this experiment's optimizer and loop settings."""
    return widths.width_sweep(
        ws,
        ds,
        seeds=config["seeds"],
        noise_levels=noise_levels,
        optimizer=lambda hp: optax.sgd(config["lr"], momentum=config["momentum"]),
        num_epochs=config["num_epochs"],
        batch_size=config["batch_size"],
        eval_every=config["eval_every"],
        num_hidden=config["num_hidden"],
        progress=progress,
    )


def run(config: dict, *, progress: bool = True) -> Outcome:
    """Train every width, seed and noise level; plot error vs parameter count."""
    ds, flipped = prepare(config)
    ws = widths.geometric_widths(*config["widths"])
    res = train_widths(config, ds, ws, noise_levels=(1, 0), progress=progress)
    n_params = np.array([widths.hidden_params(w, 40, 10, config["num_hidden"]) for w in ws])
    test_err = res["test_error"][..., -1]  # (noise, P, S)
    train_err = res["train_error"][..., -1]
    labels = [
        "15% label noise"
        if config["label_noise"] == 0.15
        else f"{config['label_noise']:.0%} label noise",
        "clean labels",
    ]
    summary = {
        lab: summarize(test_err[i].mean(-1), train_err[i].mean(-1)) for i, lab in enumerate(labels)
    }
    noisy = summary[labels[0]]

    fig, axes = plotting.figure(1, 2, size=(5.2, 3.8))
    ax = axes[0][0]
    for i, (lab, color) in enumerate(zip(labels, ("C3", "C0"), strict=True)):
        plotting.band(ax, n_params, test_err[i].T, label=f"test, {lab}", color=color)
        plotting.band(ax, n_params, train_err[i].T, label=f"train, {lab}", color=color, ls="--")
    if noisy["threshold_index"] is not None:
        ax.axvline(
            n_params[noisy["threshold_index"]],
            color="grey",
            ls=":",
            label="interpolation threshold (noisy)",
        )
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("error")
    ax.legend(fontsize=7)
    ax.set_title(
        f"MNIST-1D, {config['n_train']} train, mean ± std over {config['seeds']} seeds", fontsize=9
    )
    ax = axes[0][1]
    for i, (lab, color) in enumerate(zip(labels, ("C3", "C0"), strict=True)):
        plotting.band(ax, ws, test_err[i].T, label=f"test, {lab}", color=color, marker=".")
    ax.set_xscale("log")
    ax.set_xlabel("hidden width h")
    ax.set_ylabel("test error")
    ax.legend(fontsize=7)
    ax.set_title("test error vs width", fontsize=9)
    fig.tight_layout()

    def at(i, lab):
        return (
            None
            if i is None
            else {
                "width": int(ws[i]),
                "params": int(n_params[i]),
                "test_error": float(test_err[labels.index(lab), i].mean()),
            }
        )

    numbers = {
        "widths": ws,
        "params": n_params,
        "buckets": res["buckets"],
        "test_error": {lab: test_err[i] for i, lab in enumerate(labels)},
        "train_error": {lab: train_err[i] for i, lab in enumerate(labels)},
        "test_error_mean": {lab: test_err[i].mean(-1) for i, lab in enumerate(labels)},
        "summary": summary,
        "threshold": {lab: at(summary[lab]["threshold_index"], lab) for lab in labels},
        "peak": {lab: at(summary[lab]["peak_index"], lab) for lab in labels},
        "small_width_min": {lab: at(summary[lab]["small_min_index"], lab) for lab in labels},
        "flipped_fraction": float(flipped.mean()),
    }
    thr = numbers["threshold"][labels[0]]
    headline = {
        "interpolation threshold width (noisy)": thr["width"] if thr else "none",
        "peak width (noisy)": numbers["peak"][labels[0]]["width"],
        "peak test error (noisy)": numbers["peak"][labels[0]]["test_error"],
        "small-width min test error (noisy)": numbers["small_width_min"][labels[0]]["test_error"],
        "largest-width test error (noisy)": float(test_err[0, -1].mean()),
        "largest-width test error (clean)": float(test_err[1, -1].mean()),
        "clean peak above its small-width min": summary[labels[1]]["peak_above_small_min"],
    }
    return Outcome(
        fig,
        numbers,
        headline,
        notes=[
            f"Widths {list(map(int, ws))} trained in {len(res['buckets'])} padded buckets "
            f"{res['buckets']} (one vmapped program each, noise level x width x seed).",
        ],
    )
