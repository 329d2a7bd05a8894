"""Model-wise double descent on MNIST-1D: 20 widths x seeds x {15%, 0%} label noise.

Nakkiran et al., "Deep Double Descent: Where Bigger Models and More Data Hurt", ICLR 2020
(arXiv:1912.02292); Belkin et al., "Reconciling modern machine learning practice and the
bias-variance trade-off", PNAS 2019.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jreg import data, tasks
from jreg.core import streams, train
from jreg.experiments import kit
from jreg.nn import nets
from jreg.tasks import widths
from jreg.util import checks

DESCRIPTION = (
    "MNIST-1D, MLP 40-h-h-10 (ReLU), 20 widths 2..300: test error vs size, 15% vs 0% noise."
)

#: ``widths`` is not an MLP's layer sizes but the grid of hidden widths (checked by the runner).
FIXED_LENGTH = {"widths": "(smallest, largest, count) of the geometric width grid"}

IN_DIM, NUM_CLASSES = 40, 10


def get_config(quick: bool = False) -> dict:
    """Reference setup (issue 4): SGD 0.01 momentum 0.9, batch 100, 500 epochs, 3 seeds."""
    full = {
        "seed": 0,
        "seeds": 3,
        "n_train": 4000,
        "n_test": 1000,
        "label_noise": 0.15,
        "widths": (2, 300, 20),  # (lo, hi, num), geometric
        "lr": 0.01,
        "momentum": 0.9,
        "batch_size": 100,
        "num_epochs": 500,
        "eval_every": 50,  # epochs
        "num_hidden": 2,
    }
    # quick: 400 examples, B=50 and lr 0.05 so that widths >= ~18 interpolate the
    # noisy labels within 1,600 steps (the threshold moves with the data size).
    small = dict(seeds=2, n_train=400, widths=(4, 128, 8), lr=0.05, batch_size=50, num_epochs=200)
    return kit.sized(quick, full, quick_overrides=small)


def prepare(config: dict, label_noise: float | None = None) -> tuple[dict, np.ndarray]:
    """MNIST-1D as ``{"train": {"x", "y", "y_noisy"}, "test": {"x", "y"}}`` and the flip mask.

    ``y_noisy`` flips exactly ``round(label_noise * N)`` training labels to another class
    (:func:`jreg.data.flip_labels` with key ``seed + 1``); ``flipped`` is (N,) bool.
    """
    noise = config["label_noise"] if label_noise is None else label_noise
    x, y, xt, yt = data.mnist1d(config["n_train"], config["n_test"], seed=config["seed"])
    y_noisy, flipped = data.flip_labels(
        checks.seed_key(config["seed"] + 1, "seed + 1"), y, NUM_CLASSES, noise
    )
    return tasks.split_data(x, y, xt, yt, y_noisy=y_noisy), flipped


def noisy_target(batch: dict, hp) -> jax.Array:
    """Training labels: ``y_noisy`` where ``hp["noisy"] > 0`` (may be traced), else ``y``.

    Splits without ``y_noisy`` (the test set) are always scored against clean labels.
    """
    if "y_noisy" not in batch:
        return batch["y"]
    return jnp.where(hp["noisy"] > 0, batch["y_noisy"], batch["y"])


def width_family(config: dict) -> widths.Bucketed:
    """Padded MLPs ``40 -> h x num_hidden -> 10`` with SGD, swept over ``hp["width"]``.

    Hyperparameters: ``width`` (hidden units) and ``noisy`` (1: train on ``y_noisy``).
    Bucketing cost: forward + backward FLOPs of one padded step (~3x forward); one more
    bucket costs as much as four width-64 models (compilation, dispatch).
    """
    b, nh = config["batch_size"], config["num_hidden"]
    cost = lambda w: 3 * b * (IN_DIM * w + (nh - 1) * w * w + w * NUM_CLASSES)
    opt = optax.sgd(config["lr"], momentum=config["momentum"])

    def make(max_width: int) -> train.Task:
        model = nets.padded_mlp(IN_DIM, NUM_CLASSES, max_width, num_hidden=nh)
        return tasks.supervised(
            model,
            optimizer=opt,
            hparams={"width": float(max_width), "noisy": 1.0},
            target=noisy_target,
            name=f"padded_mlp(<= {max_width})",
        )

    return widths.Bucketed(make, key="width", cost=cost, overhead=4 * cost(64))


def train_widths(config: dict, ds: dict, ws, *, noise_levels, run: kit.Run) -> dict:
    """Every (noise flag, width, seed) in one bucketed sweep (:meth:`kit.Run.sweep`).

    Args:
      config: experiment config (optimizer, batch size, epochs, eval period in epochs).
      ds: data from :func:`prepare`.
      ws: hidden widths (P,).
      noise_levels: values of ``hp["noisy"]`` (1: noisy labels, 0: clean), L of them.
      run: progress bars and checkpoints.

    Returns:
      History arrays reshaped to ``(L, P, S, T)`` plus ``"epoch"`` (T,).
    """
    ws = np.asarray(ws)
    res = run.sweep(
        width_family(config),
        ds,
        stream=streams.epochs(config["batch_size"]),
        seeds=config["seeds"],
        hparams=train.grid(noisy=noise_levels, width=ws),
        epochs=config["num_epochs"],
        eval_epochs=config["eval_every"],
        sweeper=widths.sweep_buckets,
    )
    shape = (len(noise_levels), len(ws))
    hist = {k: v.reshape(shape + v.shape[1:]) for k, v in res.history.items()}
    return {**hist, "epoch": hist["epoch"][0, 0, 0]}


def summarize(test_err: np.ndarray, train_err: np.ndarray) -> dict:
    """Threshold, classical minimum and peak of a (P,) test-error curve over widths."""
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


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Train every width, seed and noise level; summarise error vs parameter count.

    Returns per-label-set test / train errors at the end of training, shape (P, S), their
    means (P,), and the interpolation threshold, classical minimum and peak widths.
    """
    ds, flipped = prepare(config)
    ws = widths.geometric_widths(*config["widths"])
    res = train_widths(config, ds, ws, noise_levels=(1, 0), run=run)
    n_params = np.array(
        [widths.hidden_params(w, IN_DIM, NUM_CLASSES, config["num_hidden"]) for w in ws]
    )
    test_err, train_err = res["test_error"][..., -1], res["train_error"][..., -1]  # (2, P, S)
    labels = [f"{config['label_noise']:.0%} label noise", "clean labels"]
    summary = {
        lab: summarize(test_err[i].mean(-1), train_err[i].mean(-1)) for i, lab in enumerate(labels)
    }

    def at(i, lab):
        if i is None:
            return None
        err = float(test_err[labels.index(lab), i].mean())
        return {"width": int(ws[i]), "params": int(n_params[i]), "test_error": err}

    noisy, clean = summary[labels[0]], summary[labels[1]]
    thr = at(noisy["threshold_index"], labels[0])
    peak, small = at(noisy["peak_index"], labels[0]), at(noisy["small_min_index"], labels[0])
    buckets = width_family(config).buckets(ws, configs_per_width=2 * config["seeds"])
    rise, fall = noisy["peak_above_small_min"], noisy["peak_above_largest"]
    return {
        "widths": ws,
        "params": n_params,
        "buckets": buckets,
        "test_error": {lab: test_err[i] for i, lab in enumerate(labels)},
        "train_error": {lab: train_err[i] for i, lab in enumerate(labels)},
        "test_error_mean": {lab: test_err[i].mean(-1) for i, lab in enumerate(labels)},
        "summary": summary,
        "threshold": {lab: at(summary[lab]["threshold_index"], lab) for lab in labels},
        "peak": {lab: at(summary[lab]["peak_index"], lab) for lab in labels},
        "small_width_min": {lab: at(summary[lab]["small_min_index"], lab) for lab in labels},
        "flipped_fraction": float(flipped.mean()),
        "headline": {
            "interpolation threshold width (noisy)": thr["width"] if thr else "none",
            "peak width (noisy)": peak["width"],
            "peak test error (noisy)": peak["test_error"],
            "small-width min test error (noisy)": small["test_error"],
            "largest-width test error (noisy)": float(test_err[0, -1].mean()),
            "largest-width test error (clean)": float(test_err[1, -1].mean()),
            "clean peak above its small-width min": clean["peak_above_small_min"],
        },
        "notes": [
            f"Widths {list(map(int, ws))} trained in {len(buckets)} padded buckets "
            f"{buckets} (one vmapped program each, noise level x width x seed).",
            f"Noisy labels: test error at width {peak['width']} is {rise:+.3f} above the "
            f"small-width minimum (width {small['width']}) and {fall:+.3f} above the widest "
            f"net; the interpolation threshold is "
            + (f"width {thr['width']} ({thr['params']:,} parameters)." if thr else "not reached."),
            f"Clean labels: the test error rises at most {clean['peak_above_small_min']:.3f} "
            "above its small-width minimum.",
        ],
    }


def figure(numbers: dict, config: dict):
    """Test / train error vs parameter count and test error vs width, mean ± std over seeds."""
    ws, n_params = np.asarray(numbers["widths"]), np.asarray(numbers["params"])
    labels = list(numbers["test_error"])
    thr = numbers["threshold"][labels[0]]
    fig, axes = kit.panels(2, size=(5.2, 3.8))
    ax = axes[0]
    for lab, color in zip(labels, ("C3", "C0"), strict=True):
        te, tr = np.asarray(numbers["test_error"][lab]), np.asarray(numbers["train_error"][lab])
        kit.band(ax, n_params, te.T, label=f"test, {lab}", color=color)
        kit.band(ax, n_params, tr.T, label=f"train, {lab}", color=color, ls="--")
    if thr is not None:
        ax.axvline(thr["params"], color="grey", ls=":", label="interpolation threshold (noisy)")
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("error")
    ax.legend(fontsize=7)
    n_seeds = np.asarray(numbers["test_error"][labels[0]]).shape[-1]
    ax.set_title(
        f"MNIST-1D, {config['n_train']} train, mean ± std over {n_seeds} seeds", fontsize=9
    )
    ax = axes[1]
    for lab, color in zip(labels, ("C3", "C0"), strict=True):
        te = np.asarray(numbers["test_error"][lab])
        kit.band(ax, ws, te.T, label=f"test, {lab}", color=color, marker=".")
    ax.set_xscale("log")
    ax.set_xlabel("hidden width h")
    ax.set_ylabel("test error")
    ax.legend(fontsize=7)
    ax.set_title("test error vs width", fontsize=9)
    fig.tight_layout()
    return fig
