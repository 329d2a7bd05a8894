"""Data augmentation: random pixel shifts keep an MLP learning after it interpolates MNIST."""

from __future__ import annotations

import jax
import numpy as np
import optax

from jreg import data, nets, plotting, schedules, streams, tasks, train
from jreg.experiments.runner import mean_std

DESCRIPTION = "MNIST 1k, MLP 784-128-10: random ±1/±2-pixel shifts (p=0.5) vs none."

CURVES = ("train_loss", "train_accuracy", "test_accuracy", "train_objective")


def get_config(quick: bool = False) -> dict:
    """Reference setup (blog appendix): Adam, power law (0.01, 0.5, 5e4), 250 epochs, B=8."""
    return {
        "seed": 0,
        "seeds": 5,
        "n_train": 200 if quick else 1000,
        "n_test": 500 if quick else 4000,
        "widths": (784, 128, 10),
        "lr": (0.01, 0.5, 5e4),  # lr0 / (1 + t/tau)^a written (lr0, a, tau)
        "num_epochs": 12 if quick else 250,
        "batch_size": 8,
        "eval_every": 2 if quick else 5,
        "shifts": (-2, -1, 1, 2),
        "shift_p": (0.0, 0.5),  # plain model, augmented model
    }


def compute(config: dict, *, progress: bool = True) -> dict:
    """Train both models for every seed as one sweep and summarise the curves.

    Returns curves of shape (S, T) per arm, final / best test accuracy (S,) per arm and
    the plain model's first step at 100% training accuracy per seed (-1: never).
    """
    key = jax.random.key(config["seed"])
    ds = tasks.split_data(*data.mnist_digits(config["n_train"], config["n_test"], key=key))
    lr0, a, tau = config["lr"]

    def augment(k, x, hp):
        return data.random_shift(k, x, config["shifts"], p=hp["shift_p"])

    task = tasks.supervised(
        nets.mlp(config["widths"], activation="tanh"),
        optimizer=optax.adam(schedules.power_law(lr0, a, tau), b1=0.9, b2=0.999),
        hparams={"shift_p": 0.0},
        augment=augment,
    )
    spe = config["n_train"] // config["batch_size"]
    res = train.sweep(
        task,
        ds,
        stream=streams.epochs(config["batch_size"]),
        seeds=config["seeds"],
        hparams={"shift_p": np.asarray(config["shift_p"], np.float32)},
        num_steps=config["num_epochs"] * spe,
        eval_every=config["eval_every"] * spe,
        progress=progress,
    )
    h = jax.tree.map(np.asarray, res.history)
    steps = h["step"][0, 0]
    names = ["no augmentation", "shift augmentation"]
    final_acc = h["test_accuracy"][:, :, -1]
    best_acc = h["test_accuracy"].max(axis=-1)
    # First evaluated step at which the plain model fits every training example.
    fits = h["train_accuracy"][0] >= 1.0
    interp = np.where(fits.any(axis=-1), steps[np.argmax(fits, axis=-1)], -1)
    interp_mean = float(interp[interp >= 0].mean()) if np.any(interp >= 0) else None
    gain = float(final_acc[1].mean() - final_acc[0].mean())
    return {
        "step": steps,
        "curves": {name: {k: h[k][i] for k in CURVES} for i, name in enumerate(names)},
        "final_test_accuracy": {n: final_acc[i] for i, n in enumerate(names)},
        "best_test_accuracy": {n: best_acc[i] for i, n in enumerate(names)},
        "plain_interpolation_step_per_seed": interp,
        "plain_interpolation_step_mean": interp_mean,
        "headline": {
            "final test acc, plain": mean_std(final_acc[0]),
            "final test acc, shifted": mean_std(final_acc[1]),
            "best test acc, plain": f"{best_acc[0].mean():.4f}",
            "best test acc, shifted": f"{best_acc[1].mean():.4f}",
            "gain (final, shifted − plain)": gain,
            "plain reaches 100% train acc at step": interp_mean if interp_mean else "never",
        },
        "notes": [
            f"Shifts {'raise' if gain > 0 else 'do not raise'} the final test accuracy "
            f"(mean over {final_acc.shape[1]} seeds) by {gain:+.4f}.",
            (
                f"The plain model fits every training image by step {interp_mean:.0f} "
                "(mean over the seeds that do)."
                if interp_mean is not None
                else "The plain model never fits every training image."
            ),
        ],
    }


def figure(numbers: dict, config: dict):
    """Train loss, train accuracy and test accuracy over steps, mean ± std over seeds."""
    steps, curves = numbers["step"], numbers["curves"]
    interp_mean = numbers["plain_interpolation_step_mean"]
    fig, axes = plotting.figure(1, 3, size=(4.2, 3.3))
    panels = [
        ("train_loss", "train loss (clean data)"),
        ("train_accuracy", "train accuracy"),
        ("test_accuracy", "test accuracy"),
    ]
    for ax, (key_, label) in zip(axes[0], panels, strict=True):
        for name, c in curves.items():
            plotting.band(ax, steps, c[key_], label=name)
        if interp_mean is not None:
            ax.axvline(interp_mean, color="grey", ls="--", lw=0.8)
        ax.set_xlabel("step")
        ax.set_ylabel(label)
    axes[0][0].set_yscale("log")
    last = min(float(np.min(np.asarray(c["test_accuracy"])[:, -1])) for c in curves.values())
    axes[0][2].set_ylim(max(0.0, last - 0.1), None)
    axes[0][0].legend(fontsize=8)
    n_seeds = np.asarray(next(iter(curves.values()))["test_accuracy"]).shape[0]
    fig.suptitle(
        f"MNIST {config['n_train']} train, mean ± std over {n_seeds} seeds "
        "(dashed: plain model reaches 100% train accuracy)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
