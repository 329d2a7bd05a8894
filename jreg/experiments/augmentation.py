"""Data augmentation: random pixel shifts keep an MLP learning after it interpolates MNIST."""

from __future__ import annotations

import jax
import numpy as np
import optax

from jreg import data, plotting, schedules, train
from jreg.experiments.runner import Outcome

DESCRIPTION = "MNIST 1k, MLP 784-128-10: random ±1/±2-pixel shifts (p=0.5) vs none."


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


def run(config: dict, *, progress: bool = True) -> Outcome:
    """Train both models for every seed as one sweep and summarise the curves."""
    key = jax.random.key(config["seed"])
    ds = data.mnist_digits(config["n_train"], config["n_test"], key=key)
    lr0, a, tau = config["lr"]

    def augment(k, x, hp):
        return data.random_shift(k, x, config["shifts"], p=hp["shift_p"])

    problem = train.mlp_classifier(
        config["widths"],
        optimizer=lambda hp: optax.adam(schedules.power_law(lr0, a, tau), b1=0.9, b2=0.999),
        activation="tanh",
        augment=augment,
    )
    res = train.sweep(
        problem,
        ds,
        seeds=config["seeds"],
        hparams={"shift_p": np.asarray(config["shift_p"], np.float32)},
        num_epochs=config["num_epochs"],
        batch_size=config["batch_size"],
        eval_every=config["eval_every"],
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

    fig, axes = plotting.figure(1, 3, size=(4.2, 3.3))
    panels = [
        ("train_loss", "train loss (clean data)"),
        ("train_accuracy", "train accuracy"),
        ("test_accuracy", "test accuracy"),
    ]
    for ax, (key_, label) in zip(axes[0], panels, strict=True):
        for i, name in enumerate(names):
            plotting.band(ax, steps, h[key_][i], label=name)
        if interp_mean is not None:
            ax.axvline(interp_mean, color="grey", ls="--", lw=0.8)
        ax.set_xlabel("step")
        ax.set_ylabel(label)
    axes[0][0].set_yscale("log")
    axes[0][2].set_ylim(max(0.0, float(h["test_accuracy"][:, :, -1].min()) - 0.1), None)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(
        f"MNIST {config['n_train']} train, mean ± std over {config['seeds']} seeds "
        "(dashed: plain model reaches 100% train accuracy)",
        fontsize=10,
    )
    fig.tight_layout()

    numbers = {
        "step": steps,
        "curves": {
            name: {
                k: h[k][i]
                for k in ("train_loss", "train_accuracy", "test_accuracy", "train_objective")
            }
            for i, name in enumerate(names)
        },
        "final_test_accuracy": {n: final_acc[i] for i, n in enumerate(names)},
        "best_test_accuracy": {n: best_acc[i] for i, n in enumerate(names)},
        "plain_interpolation_step_per_seed": interp,
    }
    headline = {
        "final test acc, plain": f"{final_acc[0].mean():.4f} ± {final_acc[0].std():.4f}",
        "final test acc, shifted": f"{final_acc[1].mean():.4f} ± {final_acc[1].std():.4f}",
        "best test acc, plain": f"{best_acc[0].mean():.4f}",
        "best test acc, shifted": f"{best_acc[1].mean():.4f}",
        "gain (final, shifted − plain)": float(final_acc[1].mean() - final_acc[0].mean()),
        "plain reaches 100% train acc at step": interp_mean if interp_mean else "never",
    }
    return Outcome(fig, numbers, headline)
