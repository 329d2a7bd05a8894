"""Ghost batch norm: normalising small chunks of a large batch regularizes (Hoffer et al. 2017).

An MLP with batch norm after every hidden linear layer is trained with one LARGE batch size
B. In training mode each batch is split into ``B / g`` ghost batches of ``g`` examples and
every ghost is normalised with its own mean and variance (:func:`jreg.models.ghost_batch_norm`);
``g = B`` is ordinary batch norm. Small ghosts make the normalisation statistics noisy, which
injects data-dependent noise into the activations, like the small-batch training that large
batches lose ("Train longer, generalize better", Hoffer, Hubara & Soudry, NeurIPS 2017).

Evaluation statistics. Batch norm's running averages are *state*, not parameters, and the
training loop only carries parameters. Instead of an exponential running average we evaluate
with the population statistics of the current network over the whole training set (the
inference rule of Ioffe & Szegedy 2015, Alg. 2, computed exactly rather than averaged over
past minibatches): ``predict`` first runs the training set through the network, layer by
layer, normalising each layer with its full-training-set mean and variance, and then applies
those fixed statistics to the inputs it was asked about. This is deterministic, has no
momentum hyperparameter that could interact with the ghost size, and gives every ghost size
the same inference rule, so only the training noise differs between them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jreg import data, losses, models, plotting, train
from jreg.experiments.runner import Outcome

DESCRIPTION = (
    "MNIST-1D 4k, MLP 40-128-128-10 with batch norm, batch 512: ghost batch "
    "size 8 … 512 (= ordinary batch norm)."
)


# ----------------------------------------------------------------------------- the model


def bn_mlp_init(key: jax.Array, widths: Sequence[int]) -> dict:
    """Parameters of an MLP with batch norm after every hidden linear layer.

    Hidden linear layers have no bias (batch norm subtracts the mean, so a bias would get a
    zero gradient; the norm's ``bias`` takes its place). Weights use LeCun normal init.

    Args:
      key: PRNG key.
      widths: layer sizes, e.g. ``(40, 128, 128, 10)``.

    Returns:
      ``{"hidden": [{"w": (fan_in, fan_out)}, ...], "bn": [{"scale", "bias"}, ...],
      "out": {"w", "b"}}``.
    """
    layers = models.mlp_init(key, widths)
    return {
        "hidden": [{"w": layer["w"]} for layer in layers[:-1]],
        "bn": [models.batch_norm_init(w)[0] for w in widths[1:-1]],
        "out": layers[-1],
    }


def bn_mlp_apply(
    params: dict,
    x: jax.Array,
    *,
    ghost_size: int | None,
    stats: Sequence[models.BatchNormState] | None = None,
    activation: str = "relu",
) -> tuple[jax.Array, list[jax.Array], list[models.BatchNormState]]:
    """Forward pass ``linear -> (ghost) batch norm -> activation`` per hidden layer.

    Args:
      params: output of :func:`bn_mlp_init`.
      x: inputs ``(B, widths[0])``.
      ghost_size: examples per ghost batch in training mode (must divide B); ``None``
        uses ordinary :func:`jreg.models.batch_norm` (one ghost of size B).
      stats: per hidden layer, the statistics to normalise with (evaluation mode); ``None``
        means training mode (each ghost normalised with its own statistics).
      activation: hidden non-linearity.

    Returns:
      ``(logits (B, K), normalized, batch_stats)``: the normalised pre-affine activations
      of every hidden layer (``(B, width)`` each) and, in training mode, the mean over
      ghosts of the ghost means and (biased) variances of each layer (``stats`` echoed
      back in evaluation mode).
    """
    act = models.activation_fn(activation)
    h = x
    normalized, batch_stats = [], []
    for i, (layer, bn) in enumerate(zip(params["hidden"], params["bn"], strict=True)):
        a = h @ layer["w"]
        if stats is not None:
            z, st = models.ghost_batch_norm(a, ghost_size=1, state=stats[i], train=False)
        elif ghost_size is None:
            z, st = models.batch_norm(a, momentum=0.0)
        else:
            z, st = models.ghost_batch_norm(a, ghost_size=ghost_size, momentum=0.0)
        # momentum=0: the returned "running" state is exactly this batch's ghost statistics.
        normalized.append(z)
        batch_stats.append(st)
        h = act(z * bn["scale"] + bn["bias"])
    return h @ params["out"]["w"] + params["out"]["b"], normalized, batch_stats


def population_stats(params: dict, x_train: jax.Array, *, activation: str = "relu"):
    """Per-layer mean and biased variance of the pre-norm activations over all of ``x_train``.

    Layer ``l`` sees the inputs normalised with the population statistics of layers
    ``< l``, exactly as at inference. Gradients are stopped (evaluation only).
    """
    _, _, stats = bn_mlp_apply(params, x_train, ghost_size=x_train.shape[0], activation=activation)
    return jax.lax.stop_gradient(stats)


def bn_mlp_problem(
    widths: Sequence[int],
    x_train: jax.Array,
    *,
    ghost_size: int | None,
    optimizer: Callable[[train.HParams], optax.GradientTransformation],
    activation: str = "relu",
) -> train.Problem:
    """A :class:`jreg.train.Problem` for the batch-norm MLP with a fixed (static) ghost size.

    Args:
      widths: layer sizes.
      x_train: the full training inputs; ``predict`` normalises with their population
        statistics under the current parameters (see the module docstring).
      ghost_size: ghost batch size (static: it sets a reshape); ``None`` for plain batch norm.
      optimizer: ``hp -> GradientTransformation``.
      activation: hidden non-linearity.

    Returns:
      The Problem; its loss is the softmax cross-entropy in training mode.
    """
    x_train = jnp.asarray(x_train)

    def init(key, hp):
        del hp
        return bn_mlp_init(key, widths)

    def loss(params, x, y, *, key, hp):
        del key, hp
        logits, _, _ = bn_mlp_apply(params, x, ghost_size=ghost_size, activation=activation)
        return losses.cross_entropy(logits, y)

    def predict(params, x, hp):
        del hp
        stats = population_stats(params, x_train, activation=activation)
        logits, _, _ = bn_mlp_apply(params, x, ghost_size=None, stats=stats, activation=activation)
        return logits

    return train.Problem(init, loss, predict, optimizer)


# ----------------------------------------------------------------------------- experiment


def get_config(quick: bool = False) -> dict:
    """MNIST-1D (4000 train), SGD with momentum 0.9 (lr 0.1), batch 512, ghost sizes 8 … 512."""
    return {
        "seed": 0,
        "seeds": 5,
        "n_train": 4000,
        "n_test": 1000,
        "widths": (40, 128, 128, 10),
        "activation": "relu",
        "batch_size": 512,
        "ghost_sizes": (8, 32, 512) if quick else (8, 16, 32, 64, 128, 256, 512),
        "lr": 0.1,
        "momentum": 0.9,
        "num_epochs": 20 if quick else 120,
        "eval_every": 5 if quick else 10,
    }


def run(config: dict, *, progress: bool = True) -> Outcome:
    """One vmapped sweep over seeds per ghost size; summarise final test accuracy."""
    ds = data.mnist1d(config["n_train"], config["n_test"], seed=config["seed"])
    b = config["batch_size"]
    ghosts = [int(g) for g in config["ghost_sizes"]]
    for g in ghosts:
        if b % g:
            raise ValueError(f"ghost size {g} must divide the batch size {b}.")

    def optimizer(hp):
        del hp
        return optax.sgd(config["lr"], momentum=config["momentum"])

    hist = []
    for g in ghosts:
        problem = bn_mlp_problem(
            config["widths"],
            ds[0],
            ghost_size=g,
            optimizer=optimizer,
            activation=config["activation"],
        )
        res = train.sweep(
            problem,
            ds,
            seeds=config["seeds"],
            num_epochs=config["num_epochs"],
            batch_size=b,
            eval_every=config["eval_every"],
            progress=progress,
        )
        hist.append(jax.tree.map(lambda a: np.asarray(a)[0], res.history))  # drop H = 1
    steps = hist[0]["step"][0]
    keys = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "train_objective")
    curves = {k: np.stack([h[k] for h in hist]) for k in keys}  # (G, S, T)
    final_test = curves["test_accuracy"][:, :, -1]
    final_train = curves["train_accuracy"][:, :, -1]
    best_test = curves["test_accuracy"].max(axis=-1)
    mean_test = final_test.mean(axis=1)
    best_g = ghosts[int(np.argmax(mean_test))]
    i_full = ghosts.index(b) if b in ghosts else len(ghosts) - 1

    fig, axes = plotting.figure(1, 3, size=(4.3, 3.4))
    ax = axes[0][0]
    plotting.band(ax, ghosts, final_test.T, label="test", marker="o")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ghosts, [str(g) for g in ghosts])
    ax.set_xlabel(f"ghost batch size g (batch {b}; g = {b} is plain BN)")
    ax.set_ylabel("final test accuracy")
    ax.set_title("final test accuracy vs ghost size", fontsize=10)
    ax2 = ax.twinx()
    plotting.band(
        ax2, ghosts, final_train.T, label="train (right axis)", color="grey", ls="--", marker="."
    )
    ax2.set_ylabel("final train accuracy", color="grey")
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="lower center")

    shown = sorted({ghosts[0], best_g, ghosts[len(ghosts) // 2], ghosts[i_full]})
    for ax, key_, label in (
        (axes[0][1], "test_accuracy", "test accuracy"),
        (axes[0][2], "train_loss", "train loss (eval mode)"),
    ):
        for g in shown:
            plotting.band(
                ax,
                steps,
                curves[key_][ghosts.index(g)],
                label=f"g = {g}" + (" (plain BN)" if g == b else ""),
            )
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.set_title(f"{label} during training", fontsize=10)
    axes[0][2].set_yscale("log")
    axes[0][1].set_ylim(max(0.0, float(curves["test_accuracy"][:, :, -1].min()) - 0.15), None)
    axes[0][1].legend(fontsize=8)
    fig.suptitle(
        f"Ghost batch norm, MNIST-1D {config['n_train']} train, SGD momentum, batch "
        f"{b}; mean ± std over {config['seeds']} seeds",
        fontsize=10,
    )
    fig.tight_layout()

    numbers = {
        "ghost_sizes": ghosts,
        "step": steps,
        "curves": {str(g): {k: curves[k][i] for k in keys} for i, g in enumerate(ghosts)},
        "final_test_accuracy": final_test,
        "final_train_accuracy": final_train,
        "best_test_accuracy": best_test,
        "final_test_accuracy_mean": mean_test,
        "final_test_accuracy_std": final_test.std(axis=1),
        "best_ghost_size": best_g,
    }
    headline = {
        f"test acc, g={g}": f"{final_test[i].mean():.4f} ± {final_test[i].std():.4f}"
        for i, g in enumerate(ghosts)
    }
    headline["best ghost size"] = best_g
    headline["gain of best g over plain BN"] = float(mean_test.max() - mean_test[i_full])
    notes = [
        "Evaluation normalises every layer with its population statistics over the whole "
        "training set under the current weights (no running averages), identical for all g.",
        "Ghost size is static (a reshape), so each ghost size is its own vmapped sweep over "
        "seeds; all sweeps share the seeds, hence the initialisations and data order.",
    ]
    return Outcome(fig, numbers, headline, notes)
