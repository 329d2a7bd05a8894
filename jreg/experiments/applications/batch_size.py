"""Implicit regularization of SGD noise: batch size vs test accuracy and sharpness.

Same model (MLP 40-128-128-10 ReLU, He init), data (MNIST-1D, Greydanus 2020: 4,000
train / 1,000 test), optimizer (plain SGD) and number of EPOCHS for every batch size B.
Learning rate: FIXED (no scaling with B) by default, as in Keskar et al. 2017 and Smith,
Dherin, Barrett & De 2021 ("On the origin of implicit regularization in SGD"), so the
SGD noise scale ``η/B`` falls as B grows; ``lr_scaling="linear"`` (Goyal et al. 2017,
``η = lr · B / batch_sizes[0]``) keeps it constant instead. With a fixed rate and fixed
epochs a large batch also takes fewer steps, so the final train accuracy is reported
beside the test accuracy: only batch sizes that fit the training set compare minima.

Sharpness: the top eigenvalue of the Hessian of the full-batch training loss at the end
of training (``analysis.top_hessian_eigenvalue``, power iteration on Hessian-vector
products). One sweep per batch size (each needs its own stream), seeds vmapped.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jreg import analysis, data, tasks
from jreg.core import streams
from jreg.experiments import kit, plotting
from jreg.experiments.kit import mean_std
from jreg.nn import nets
from jreg.regularizers import losses
from jreg.util import checks

DESCRIPTION = (
    "MNIST-1D, MLP 40-128-128-10, SGD at a fixed rate and fixed epochs: test accuracy and "
    "sharpness (top Hessian eigenvalue) vs batch size 16…1024."
)


def get_config(quick: bool = False) -> dict:
    """Reference setup: SGD η=0.1 fixed, 100 epochs, B ∈ {16, 64, 256, 1024}, 3 seeds."""
    full = {
        "data_seed": 0,
        "seeds": 3,
        "n_train": 4000,
        "n_test": 1000,
        "widths": (40, 128, 128, 10),
        "batch_sizes": (16, 64, 256, 1024),
        "learning_rate": 0.1,
        "lr_scaling": "fixed",  # or "linear": η = learning_rate · B / batch_sizes[0]
        "num_epochs": 100,
        "power_iters": 20,
    }
    quick_overrides = dict(
        seeds=2, n_train=1000, n_test=500, widths=(40, 64, 64, 10), batch_sizes=(16, 250),
        num_epochs=40,
    )  # fmt: skip
    return kit.sized(quick, full, quick_overrides=quick_overrides)


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Train every batch size (seeds vmapped), then measure the sharpness of each network.

    Numbers (per batch size, arrays over seeds S): final train/test accuracy and loss,
    top Hessian eigenvalue of the training loss, and the test-accuracy curves.
    """
    x_tr, y_tr, x_te, y_te = data.mnist1d(
        config["n_train"], config["n_test"], seed=config["data_seed"]
    )
    d = tasks.split_data(x_tr, y_tr, x_te, y_te)
    model = nets.mlp(config["widths"], activation="relu", init="he")
    if config["lr_scaling"] not in ("fixed", "linear"):
        raise ValueError(f"lr_scaling must be 'fixed' or 'linear', got {config['lr_scaling']!r}.")
    xs, ys = jnp.asarray(x_tr), jnp.asarray(y_tr)

    def train_loss(params):
        return losses.cross_entropy(
            model.apply(params, {}, xs, key=None, train=False, hp={})[0], ys
        )

    sharpness = jax.jit(
        jax.vmap(
            lambda p, k: analysis.top_hessian_eigenvalue(train_loss, p, k, config["power_iters"])
        )
    )
    per_b, curves = {}, {}
    for b in config["batch_sizes"]:
        eta = config["learning_rate"] * (
            b / config["batch_sizes"][0] if config["lr_scaling"] == "linear" else 1.0
        )
        e = config["num_epochs"]
        res = run.sweep(
            tasks.supervised(model, optimizer=optax.sgd(eta), name=f"B={b}"), d,
            stream=streams.epochs(b), seeds=config["seeds"], epochs=e, eval_epochs=e // 10,
        )  # fmt: skip
        hist = {k: v[0] for k, v in res.history.items()}  # (S, T)
        params = jax.tree.map(lambda a: a[0], res.state["params"])
        keys = jax.random.split(
            checks.seed_key(config["data_seed"], "data_seed"), hist["step"].shape[0]
        )
        per_b[b] = {
            "learning_rate": eta,
            "steps": e * (config["n_train"] // b),
            "train_accuracy": hist["train_accuracy"][:, -1],
            "test_accuracy": hist["test_accuracy"][:, -1],
            "train_loss": hist["train_loss"][:, -1],
            "test_loss": hist["test_loss"][:, -1],
            "sharpness": np.asarray(sharpness(params, keys)),
        }
        epoch = hist["epoch"][0].astype(np.float64)
        curves[b] = {"epoch": epoch, "test_accuracy": hist["test_accuracy"]}
    bs = list(config["batch_sizes"])
    test = np.asarray([per_b[b]["test_accuracy"].mean() for b in bs])
    sharp = np.asarray([per_b[b]["sharpness"].mean() for b in bs])
    fits = [b for b in bs if per_b[b]["train_accuracy"].min() >= 0.99]
    numbers = {"per_batch_size": {str(b): v for b, v in per_b.items()}}
    numbers["curves"] = {str(b): v for b, v in curves.items()}
    numbers["headline"] = {
        f"B={b} (η={per_b[b]['learning_rate']:g})": (
            f"test {mean_std(per_b[b]['test_accuracy'], '.3f')}, train "
            f"{mean_std(per_b[b]['train_accuracy'], '.3f')}, λ_max "
            f"{mean_std(per_b[b]['sharpness'], '.2f')}"
        )
        for b in bs
    }
    mono = lambda v: (
        "falls"
        if np.all(np.diff(v) < 0)
        else "rises"
        if np.all(np.diff(v) > 0)
        else "is not monotone"
    )
    notes = [
        f"Learning rate: {config['lr_scaling']} ({config['learning_rate']:g} at B={bs[0]}); "
        f"{config['num_epochs']} epochs for every batch size.",
        f"Mean test accuracy {mono(test)} with the batch size "
        f"({', '.join(f'{t:.3f}' for t in test)}); "
        f"the sharpness λ_max {mono(sharp)} ({', '.join(f'{s:.2f}' for s in sharp)}).",
        f"Batch sizes that fit the training set (train accuracy ≥ 0.99 on every seed): "
        f"{fits or 'none'}; the others are also under-trained, not only less noisy.",
    ]
    if len(fits) >= 2:
        a, z = fits[0], fits[-1]
        ta, tz = per_b[a]["test_accuracy"].mean(), per_b[z]["test_accuracy"].mean()
        sa, sz = per_b[a]["sharpness"].mean(), per_b[z]["sharpness"].mean()
        notes.append(
            f"Among those, B={a} vs B={z}: test accuracy {ta:.3f} vs {tz:.3f}, λ_max "
            f"{sa:.2f} vs {sz:.2f}: the smaller batch "
            f"{'does' if ta > tz and sa < sz else 'does not'} find a flatter minimum that "
            "generalizes better."
        )
    numbers["notes"] = notes
    return numbers


def figure(numbers: dict, config: dict):
    """Test/train accuracy and sharpness vs batch size (left two), test curves (right)."""
    per = numbers["per_batch_size"]
    bs = [int(b) for b in per]
    fig, axes = plotting.figure(1, 3, size=(4.0, 3.2), layout="constrained")
    ax = axes[0][0]
    for key, label in (("test_accuracy", "test"), ("train_accuracy", "train")):
        ys = np.stack([np.asarray(per[str(b)][key]) for b in bs], axis=1)
        plotting.band(ax, bs, ys, label=label, marker="o")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8)
    ax = axes[0][1]
    ys = np.stack([np.asarray(per[str(b)]["sharpness"]) for b in bs], axis=1)
    plotting.band(ax, bs, ys, marker="o")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("top Hessian eigenvalue (train loss)")
    ax = axes[0][2]
    for b in bs:
        c = numbers["curves"][str(b)]
        plotting.band(ax, np.asarray(c["epoch"]), np.asarray(c["test_accuracy"]), label=f"B={b}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8)
    fig.suptitle(
        f"MNIST-1D, SGD η={config['learning_rate']:g} ({config['lr_scaling']}), "
        f"{config['num_epochs']} epochs; mean ± std over seeds",
        fontsize=10,
    )
    return fig
