"""Stochastic depth (drop-path) on a deep residual MLP trained on MNIST-1D.

Huang et al. 2016, "Deep Networks with Stochastic Depth": during training each residual
branch is dropped for a whole example with a probability that grows linearly with depth,
``p_l = l / L · p_L`` for block ``l = 1..L``; survivors are scaled by ``1 / (1 − p_l)`` so
evaluation uses the full network unchanged (:func:`jreg.nn.models.drop_path`). Here: the
residual MLP of :func:`jreg.nn.nets.residual_mlp` (16 blocks of width 64) on MNIST-1D
(Greydanus 2020; 4,000 train / 1,000 test), Adam, final rate ``p_L`` swept over
{0, 0.1, 0.2, 0.3}; every rate × seed in one vmapped sweep. Numbers per rate: test
accuracy and the train − test accuracy gap at the end of training.
"""

from __future__ import annotations

import numpy as np
import optax

from jreg import data, tasks
from jreg.core import streams
from jreg.experiments import kit
from jreg.experiments.kit import mean_std
from jreg.nn import nets

DESCRIPTION = (
    "MNIST-1D, residual MLP (16 blocks × 64, ReLU), Adam: drop-path with the linear depth "
    "ramp, final rate 0 / 0.1 / 0.2 / 0.3; test accuracy and train − test gap."
)


def get_config(quick: bool = False) -> dict:
    """Full size: 4,000 / 1,000 MNIST-1D, 5 seeds; quick: 600 / 500, 2 seeds, short."""
    full = {
        "data_seed": 0,  # mnist1d generator seed
        "seeds": 5,  # model seeds (init, batch order, drop masks)
        "n_train": 4000,
        "n_test": 1000,
        "width": 64,
        "depth": 16,
        "rates": (0.0, 0.1, 0.2, 0.3),  # final-block drop rate p_L
        "learning_rate": 1e-3,
        "batch_size": 100,
        "num_epochs": 60,
        "eval_every": 10,  # epochs
    }
    quick_sizes = {"seeds": 2, "n_train": 600, "n_test": 500, "width": 32, "depth": 8}
    return kit.sized(
        quick, full, quick_overrides={**quick_sizes, "num_epochs": 15, "eval_every": 5}
    )


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Train every rate × seed in one sweep; final train / test accuracy per rate."""
    x_tr, y_tr, x_te, y_te = data.mnist1d(
        config["n_train"], config["n_test"], seed=config["data_seed"]
    )
    model = nets.residual_mlp(x_tr.shape[1], 10, width=config["width"], depth=config["depth"])
    task = tasks.supervised(
        model,
        optimizer=optax.adam(config["learning_rate"]),
        hparams={"drop_path_rate": 0.0},
    )
    rates = np.asarray(config["rates"], np.float32)
    hist = run.sweep(
        task, tasks.split_data(x_tr, y_tr, x_te, y_te),
        stream=streams.epochs(config["batch_size"]), seeds=config["seeds"],
        epochs=config["num_epochs"], eval_epochs=config["eval_every"],
        hparams={"drop_path_rate": rates},
    ).history  # fmt: skip
    tr_acc, te_acc = hist["train_accuracy"][..., -1], hist["test_accuracy"][..., -1]  # (R, S)
    gap = tr_acc - te_acc
    labels = [f"p_L={r:g}" for r in rates]
    best = int(np.argmax(te_acc.mean(axis=1)))
    gain = te_acc[best] - te_acc[0]  # paired per seed: same init and batch order
    gap_change = gap.mean(axis=1) - gap[0].mean()
    numbers = {
        "rates": rates,
        "step": hist["step"][0, 0],
        "curves": {k: hist[k] for k in ("train_accuracy", "test_accuracy", "test_loss")},
        "train_accuracy": tr_acc,
        "test_accuracy": te_acc,
        "train_test_gap": gap,
        "best_rate": float(rates[best]),
        "best_minus_no_drop_test_accuracy": gain,
    }
    numbers["headline"] = {
        **{f"test acc, {lab}": mean_std(te_acc[i]) for i, lab in enumerate(labels)},
        **{f"train − test gap, {lab}": mean_std(gap[i]) for i, lab in enumerate(labels)},
        "best p_L (mean test acc)": f"{rates[best]:g}",
    }
    monotone = bool(np.all(np.diff(gap.mean(axis=1)) < 0))
    numbers["notes"] = [
        f"MNIST-1D (seed {config['data_seed']}): {config['n_train']} train / "
        f"{config['n_test']} test; residual MLP with {config['depth']} blocks of width "
        f"{config['width']}; block l drops its branch per example with rate l/L·p_L; "
        f"{hist['step'].shape[1]} seeds, {config['num_epochs']} epochs of batch "
        f"{config['batch_size']}, Adam {config['learning_rate']:g}.",
        "Drop-path changes the mean train − test accuracy gap by "
        + ", ".join(f"{d:+.4f} ({lab})" for d, lab in zip(gap_change[1:], labels[1:], strict=True))
        + f" relative to p_L=0; the gap {'shrinks' if monotone else 'does not shrink'} "
        "monotonically with the rate.",
        f"The best final rate by mean test accuracy is p_L={rates[best]:g}: "
        f"{mean_std(gain)} test accuracy over no drop-path (paired per seed; "
        f"{int(np.sum(gain > 0))}/{gain.size} seeds gain).",
    ]
    return numbers


def figure(numbers: dict, config: dict):
    """Test accuracy and train − test gap per rate (mean ± std over seeds); test curves."""
    rates = np.asarray(numbers["rates"])
    fig, axes = kit.panels(3, size=(14 / 3, 4))
    for ax, key, lab in (
        (axes[0], "test_accuracy", "final test accuracy"),
        (axes[1], "train_test_gap", "train − test accuracy"),
    ):
        kit.seeds_errorbar(ax, rates, numbers[key])
        ax.set(xlabel="final drop-path rate $p_L$", ylabel=lab, title=lab + " (mean ± std)")
    curves = np.asarray(numbers["curves"]["test_accuracy"])
    for i, r in enumerate(rates):
        kit.band(axes[2], np.asarray(numbers["step"]), curves[i], label=f"$p_L$={r:g}")
    axes[2].set(xlabel="step", ylabel="test accuracy", title="test accuracy during training")
    axes[2].legend()
    fig.tight_layout()
    return fig
