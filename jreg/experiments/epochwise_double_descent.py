"""Epoch-wise double descent: test error vs epoch for widths around and above the threshold."""

from __future__ import annotations

import numpy as np

from jreg import plotting
from jreg.experiments import double_descent
from jreg.experiments.runner import Outcome

DESCRIPTION = "MNIST-1D with 15% noisy labels: test error vs epoch for a few MLP widths."


def get_config(quick: bool = False) -> dict:
    """Same data and optimizer as ``double_descent``; dense evaluation over epochs."""
    cfg = double_descent.get_config(quick)
    cfg.update(
        {
            "run_widths": (11, 29, 128) if quick else (36, 62, 104, 177, 300),
            "eval_every": 5,
        }
    )
    return cfg


def run(config: dict, *, progress: bool = True) -> Outcome:
    """Train the chosen widths on noisy labels, evaluating every few epochs."""
    ds, _ = double_descent.prepare(config)
    ws = np.asarray(config["run_widths"])
    res = double_descent.train_widths(config, ds, ws, noise_levels=(1,), progress=progress)
    epochs = res["epoch"][0, 0, 0]
    test_err, train_err = res["test_error"][0], res["train_error"][0]  # (P, S, T)
    fig, axes = plotting.figure(1, 2, size=(5.0, 3.6))
    cmap = plotting.plt.get_cmap("viridis")
    per_width = {}
    for i, w in enumerate(ws):
        color = cmap(i / max(1, len(ws) - 1))
        plotting.band(axes[0][0], epochs, test_err[i], label=f"h={w}", color=color)
        plotting.band(axes[0][1], epochs, train_err[i], label=f"h={w}", color=color)
        mean = test_err[i].mean(0)
        first_min = int(np.argmin(mean[: max(1, len(mean) // 3)]))
        peak = first_min + int(np.argmax(mean[first_min:]))
        fits = np.flatnonzero(train_err[i].mean(0) <= 0)
        per_width[int(w)] = {
            "early_min_epoch": int(epochs[first_min]),
            "early_min_error": float(mean[first_min]),
            "peak_epoch": int(epochs[peak]),
            "peak_error": float(mean[peak]),
            "final_error": float(mean[-1]),
            "best_error": float(mean.min()),
            "interpolates_at_epoch": int(epochs[fits[0]]) if fits.size else None,
        }
    for ax, lab in zip(axes[0], ("test error", "train error (noisy labels)"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(lab)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"MNIST-1D, {config['label_noise']:.0%} label noise, mean ± std over "
        f"{config['seeds']} seeds",
        fontsize=10,
    )
    fig.tight_layout()
    numbers = {
        "widths": ws,
        "epochs": epochs,
        "test_error": test_err,
        "train_error": train_err,
        "per_width": per_width,
    }
    headline = {}
    for w, d in per_width.items():
        headline[f"h={w}: early-min / peak / final test error"] = (
            f"{d['early_min_error']:.3f} (ep {d['early_min_epoch']}) / "
            f"{d['peak_error']:.3f} (ep {d['peak_epoch']}) / {d['final_error']:.3f}"
        )
    return Outcome(fig, numbers, headline)
