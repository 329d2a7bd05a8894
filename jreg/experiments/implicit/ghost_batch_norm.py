"""Ghost batch norm: normalising small chunks of a large batch regularizes (Hoffer et al. 2017).

An MLP with batch norm after every hidden linear layer (:func:`jreg.nn.nets.bn_mlp`) is
trained with one LARGE batch size B. In training mode each batch is split into ``B / g``
ghost batches of ``g`` examples and every ghost is normalised with its own mean and
variance (:func:`jreg.nn.models.ghost_batch_norm`); ``g = B`` is ordinary batch norm. Small
ghosts make the normalisation statistics noisy, which injects data-dependent noise into the
activations, like the small-batch training that large batches lose ("Train longer,
generalize better", Hoffer, Hubara & Soudry, NeurIPS 2017).

Evaluation statistics. The network's running averages of the ghost statistics (momentum
0.9) are model state and normalise the evaluated inputs (the usual inference rule). Every
evaluation also reports, with a ``pop_`` prefix, the same metrics under the *population*
statistics of the current network over the whole training set (Ioffe & Szegedy 2015,
Alg. 2, computed exactly: one training-mode pass of the full training set with momentum 0),
an inference rule that is identical for every ghost size. ``config["eval_stats"]`` picks
which of the two the headline and figure use.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import optax

from jreg import data, tasks
from jreg.core import streams, train
from jreg.experiments import kit
from jreg.experiments.kit import mean_std
from jreg.nn import nets

DESCRIPTION = (
    "MNIST-1D 4k, MLP 40-128-128-10 with batch norm, batch 512: ghost batch "
    "size 8 … 512 (= ordinary batch norm)."
)

CURVES = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "train_objective")


def get_config(quick: bool = False) -> dict:
    """MNIST-1D (4000 train), SGD with momentum 0.9 (lr 0.1), batch 512, ghost sizes 8 … 512."""
    full = {
        "seed": 0,
        "seeds": 5,
        "n_train": 4000,
        "n_test": 1000,
        "widths": (40, 128, 128, 10),
        "activation": "relu",
        "batch_size": 512,
        "ghost_sizes": (8, 16, 32, 64, 128, 256, 512),
        "lr": 0.1,
        "momentum": 0.9,
        "bn_momentum": 0.9,
        "num_epochs": 120,
        "eval_every": 10,
        "eval_stats": "running",  # or "population"
    }
    small = {"ghost_sizes": (8, 32, 512), "num_epochs": 20, "eval_every": 5}
    return kit.sized(quick, full, quick_overrides=small)


def population_state(widths, params, model_state, x_train, *, activation: str = "relu"):
    """Batch-norm state holding each layer's mean / variance over all of ``x_train`` (N, D).

    One training-mode pass of :func:`jreg.nn.nets.bn_mlp` with a single ghost of N examples
    and momentum 0: layer ``l`` sees its inputs normalised with the population statistics
    of layers ``< l``, exactly as at inference.
    """
    full = nets.bn_mlp(widths, activation=activation, momentum=0.0)
    _, state, _ = full.apply(params, model_state, x_train, key=None, train=True, hp={})
    return jax.lax.stop_gradient(state)


def make_task(config: dict, ghost_size: int | None) -> train.Task:
    """The batch-norm MLP task for one (static) ghost size; evaluates both inference rules.

    Evaluation gives the :func:`jreg.tasks.supervised` metrics with the running statistics
    (``test_accuracy``, ...) and with training-set population statistics (``pop_test_accuracy``,
    ...).
    """
    widths, act = config["widths"], config["activation"]
    model = nets.bn_mlp(
        widths, ghost_size=ghost_size, activation=act, momentum=config["bn_momentum"]
    )
    task = tasks.supervised(
        model,
        optimizer=optax.sgd(config["lr"], momentum=config["momentum"]),
        name=f"gbn{ghost_size}",
    )

    def evaluate(state, data, hp):
        pop = population_state(
            widths, state["params"], state["model_state"], data["train"]["x"], activation=act
        )
        pop_ev = task.evaluate({**state, "model_state": pop}, data, hp)
        return {**task.evaluate(state, data, hp), **{f"pop_{k}": v for k, v in pop_ev.items()}}

    return dataclasses.replace(task, evaluate=evaluate)


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """One vmapped sweep over seeds per ghost size (static: a reshape); final accuracies.

    Returns curves (G, S, T) per ghost size and rule, final / best test accuracy (G, S).
    """
    ds = tasks.split_data(*data.mnist1d(config["n_train"], config["n_test"], seed=config["seed"]))
    b = config["batch_size"]
    ghosts = [int(g) for g in config["ghost_sizes"]]
    for g in ghosts:
        if b % g:
            raise ValueError(f"ghost size {g} must divide the batch size {b}.")
    if config["eval_stats"] not in ("running", "population"):
        raise ValueError(
            f"eval_stats must be 'running' or 'population', got {config['eval_stats']!r}."
        )
    hist = []
    for g in ghosts:
        res = run.sweep(
            make_task(config, g),
            ds,
            stream=streams.epochs(b),
            seeds=config["seeds"],
            epochs=config["num_epochs"],
            eval_epochs=config["eval_every"],
        )
        hist.append({k: v[0] for k, v in res.history.items()})  # drop H = 1
    steps = hist[0]["step"][0]
    rules = {"running": "", "population": "pop_"}
    curves = {
        rule: {k: np.stack([h[p + k] for h in hist]) for k in CURVES if p + k in hist[0]}
        for rule, p in rules.items()
    }
    curves["population"]["train_objective"] = curves["running"]["train_objective"]
    final = {r: c["test_accuracy"][:, :, -1] for r, c in curves.items()}  # (G, S)
    main = config["eval_stats"]
    other = "population" if main == "running" else "running"
    mean_test = final[main].mean(axis=1)
    i_full = ghosts.index(b) if b in ghosts else len(ghosts) - 1
    best = int(np.argmax(mean_test))
    gain = float(mean_test[best] - mean_test[i_full])
    gap = final["running"] - final["population"]  # (G, S)
    notes = [
        f"Ghost size {ghosts[best]} has the highest final test accuracy ({main} statistics, "
        f"{mean_test[best]:.4f}); it is {gain:+.4f} over plain batch norm (g = {b}).",
        "Running-average minus population-statistics test accuracy per ghost size: "
        + ", ".join(f"g={g}: {gap[i].mean():+.4f}" for i, g in enumerate(ghosts))
        + f"; with {other} statistics the best ghost size is "
        f"{ghosts[int(np.argmax(final[other].mean(1)))]}.",
        "Ghost size is static (a reshape), so each ghost size is its own vmapped sweep over "
        "seeds; all sweeps share the seeds, hence the initialisations and data order.",
    ]
    headline = {f"test acc, g={g}": mean_std(final[main][i]) for i, g in enumerate(ghosts)}
    headline.update(
        {
            f"test acc, g={g} ({other} stats)": mean_std(final[other][i])
            for i, g in enumerate(ghosts)
        }
    )
    headline["best ghost size"] = ghosts[best]
    headline["gain of best g over plain BN"] = gain
    return {
        "ghost_sizes": ghosts,
        "step": steps,
        "eval_stats": main,
        "curves": {
            rule: {str(g): {k: v[i] for k, v in c.items()} for i, g in enumerate(ghosts)}
            for rule, c in curves.items()
        },
        "final_test_accuracy": final[main],
        "final_test_accuracy_population": final["population"],
        "final_test_accuracy_running": final["running"],
        "final_train_accuracy": curves[main]["train_accuracy"][:, :, -1],
        "best_test_accuracy": curves[main]["test_accuracy"].max(axis=-1),
        "final_test_accuracy_mean": mean_test,
        "final_test_accuracy_std": final[main].std(axis=1),
        "best_ghost_size": ghosts[best],
        "headline": headline,
        "notes": notes,
    }


def figure(numbers: dict, config: dict):
    """Final accuracy vs ghost size, and test accuracy / train loss over steps."""
    ghosts, b = numbers["ghost_sizes"], config["batch_size"]
    main = numbers["eval_stats"]
    curves = numbers["curves"][main]
    final_test = np.asarray(numbers["final_test_accuracy"])
    final_train = np.asarray(numbers["final_train_accuracy"])
    fig, axes = kit.panels(3, size=(4.3, 3.4))
    ax = axes[0]
    kit.band(ax, ghosts, final_test.T, label=f"test ({main} stats)", marker="o")
    other = "population" if main == "running" else "running"
    kit.band(
        ax, ghosts, np.asarray(numbers[f"final_test_accuracy_{other}"]).T,
        label=f"test ({other} stats)", marker="s", ls=":",
    )  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xticks(ghosts, [str(g) for g in ghosts])
    ax.set_xlabel(f"ghost batch size g (batch {b}; g = {b} is plain BN)")
    ax.set_ylabel("final test accuracy")
    ax.set_title("final test accuracy vs ghost size", fontsize=10)
    ax2 = ax.twinx()
    kit.band(
        ax2, ghosts, final_train.T, label="train (right axis)", color="grey", ls="--", marker="."
    )
    ax2.set_ylabel("final train accuracy", color="grey")
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="lower center")

    best = numbers["best_ghost_size"]
    shown = sorted({ghosts[0], best, ghosts[len(ghosts) // 2], ghosts[-1]})
    for ax, key_, label in (
        (axes[1], "test_accuracy", "test accuracy"),
        (axes[2], "train_loss", "train loss (eval mode)"),
    ):
        for g in shown:
            lab = f"g = {g}" + (" (plain BN)" if g == b else "")
            kit.band(ax, numbers["step"], curves[str(g)][key_], label=lab)
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.set_title(f"{label} during training ({main} stats)", fontsize=10)
    axes[2].set_yscale("log")
    axes[1].set_ylim(max(0.0, float(final_test.min()) - 0.15), None)
    axes[1].legend(fontsize=8)
    fig.suptitle(
        f"Ghost batch norm, MNIST-1D {config['n_train']} train, SGD momentum, batch "
        f"{b}; mean ± std over {final_test.shape[1]} seeds",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
