"""Implicit regularization of SGD noise: batch size vs sharpness at a matched training loss.

Keskar et al. 2017 ("On large-batch training ...") train with small (SB) and large (LB)
batches to ≈ 100 % training accuracy; LB reaches sharper minima and tests worse (Table 2:
MNIST FC 98.03 vs 97.81 %, CIFAR-10 shallow conv 80.04 vs 77.26 %, deep conv 89.24 vs
87.26 %). Smith & Le 2018 trace this to the SGD noise scale ``g ≈ η N / B``: at a fixed
``η / B`` (Goyal et al. 2017's linear scaling rule) the batch size should stop mattering.

Here: MLP 40-128-128-10 (ReLU, He init) on MNIST-1D (Greydanus 2020; 4,000 train / 1,000
test), plain SGD, two arms over ≥ 4 batch sizes × ≥ 5 seeds: ``fixed η`` (η = lr for every
B: the noise scale falls as B grows) and ``fixed η/B`` (η = lr · B / B₀: the noise scale
held). Every run trains until its full training loss first falls below ``target_loss``
(early stopping on a tracked number that falls every epoch until the
loss is below the target, then stays put), so runs are
compared at a MATCHED training loss, not at a fixed number of epochs or steps; the
parameters at that evaluation give the test accuracy and the sharpness: the top
eigenvalue of the Hessian of the full training loss (``analysis.top_hessian_eigenvalue``).
A run that never reaches the target within ``max_epochs`` is reported as such.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jreg import analysis, data, tasks
from jreg.core import streams
from jreg.experiments import kit
from jreg.experiments.kit import mean_std
from jreg.nn import nets
from jreg.regularizers import losses
from jreg.util import checks

DESCRIPTION = (
    "MNIST-1D, MLP 40-128-128-10, SGD to a matched training loss: test accuracy and "
    "sharpness vs batch size at a fixed η and at a fixed η/B (noise scale); vs Keskar et al."
)


def get_config(quick: bool = False) -> dict:
    """Reference: B ∈ {16, 32, 64, 128} × 5 seeds × 2 arms, SGD lr 0.1 at B=16."""
    full = {
        "data_seed": 0,
        "seeds": 5,
        "n_train": 4000,
        "n_test": 1000,
        "widths": (40, 128, 128, 10),
        "batch_sizes": (16, 32, 64, 128),
        "learning_rate": 0.1,  # η at batch_sizes[0]; the fixed-η/B arm scales it with B
        "target_loss": 0.05,  # full training cross-entropy at which every run is read
        "max_epochs": 400,
        "power_iters": 20,
        "published": {
            "source": "Keskar et al. 2017, On Large-Batch Training for Deep Learning, "
            "Table 2 (test accuracy %, small batch vs large batch; both ≈ 100 % train)",
            "test_accuracy_pct": {
                "MNIST FC (F1)": (98.03, 97.81),
                "CIFAR-10 shallow conv (C1)": (80.04, 77.26),
                "CIFAR-10 deep conv (C3)": (89.24, 87.26),
            },
        },
        # ours vs theirs: small − large batch test accuracy (points) at fixed η, against
        # the FC network's (the closest to our MLP), within this tolerance.
        "tolerance_pts": 1.5,
    }
    quick_overrides = dict(
        seeds=2, n_train=1000, n_test=500, widths=(40, 64, 64, 10), batch_sizes=(16, 64),
        target_loss=0.2, max_epochs=200,
    )  # fmt: skip
    return kit.sized(quick, full, quick_overrides=quick_overrides)


def _trend(v) -> str:
    """How a quantity moves across the ascending batch sizes, as a verb phrase on ``B``."""
    d = np.diff(np.asarray(v, float))
    return (
        "rises with" if np.all(d > 0) else "falls with" if np.all(d < 0) else "is not monotone in"
    )


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Train every arm × batch size (seeds vmapped) to the target loss; read each run there.

    Numbers per arm and batch size (arrays over seeds): η, epochs and steps to the target,
    whether it was reached, training loss, train / test accuracy and sharpness there.
    """
    x_tr, y_tr, x_te, y_te = data.mnist1d(
        config["n_train"], config["n_test"], seed=config["data_seed"]
    )
    d = tasks.split_data(x_tr, y_tr, x_te, y_te)
    model = nets.mlp(config["widths"], activation="relu", init="he")
    xs, ys = jnp.asarray(x_tr), jnp.asarray(y_tr)
    target = float(config["target_loss"])

    def train_loss(params):
        return losses.cross_entropy(
            model.apply(params, {}, xs, key=None, train=False, hp={})[0], ys
        )

    sharpness = jax.jit(
        jax.vmap(
            lambda p, k: analysis.top_hessian_eigenvalue(train_loss, p, k, config["power_iters"])
        )
    )

    def until_target(state, hp):  # falls every evaluation until the loss reaches the target
        reached = train_loss(state["params"]) <= target
        count = optax.tree_utils.tree_get(state["opt_state"], "count")
        return {"until_target": jnp.where(reached, -1e9, -count.astype(jnp.float32))}

    arms, b0 = {}, config["batch_sizes"][0]
    for arm, scale in (("fixed η", lambda b: 1.0), ("fixed η/B", lambda b: b / b0)):
        per_b = {}
        for b in config["batch_sizes"]:
            eta = config["learning_rate"] * scale(b)
            if b == b0 and arms:  # the same run as the fixed-η arm's
                per_b[str(b)] = arms["fixed η"][str(b)]
                continue
            task = tasks.supervised(
                model,
                optimizer=optax.sgd(optax.constant_schedule(eta)),
                track=until_target,
                name=f"B={b}",
            )
            res = run.sweep(
                task, d, stream=streams.epochs(b), seeds=config["seeds"],
                epochs=config["max_epochs"], eval_epochs=1, monitor="until_target",
                patience=1, segments=config["max_epochs"] // 10,
            )  # fmt: skip
            steps_per_epoch = config["n_train"] // b
            at = res.best_step[0] // steps_per_epoch - 1  # index of the evaluation read
            pick = lambda k: np.take_along_axis(res.history[k][0], at[:, None], 1)[:, 0]
            params = jax.tree.map(lambda a: a[0], res.best_state["params"])
            keys = jax.random.split(checks.seed_key(config["data_seed"], "data_seed"), at.size)
            per_b[str(b)] = {
                "learning_rate": eta,
                "noise_scale": eta / b,
                "epochs": at + 1,
                "steps": (at + 1) * steps_per_epoch,
                "reached": pick("train_loss") <= target,
                **{k: pick(k) for k in ("train_loss", "train_accuracy", "test_accuracy")},
                "sharpness": np.asarray(sharpness(params, keys)),
            }
        arms[arm] = per_b
    return _summarize(config, arms)


def _summarize(config: dict, arms: dict) -> dict:
    """Headline, verdict against Keskar et al. and notes computed from the per-run numbers."""
    bs = [str(b) for b in config["batch_sizes"]]
    mean = lambda arm, k: np.asarray([arms[arm][b][k].mean() for b in bs])
    small, large = bs[0], bs[-1]
    diff = {
        a: 100 * (arms[a][small]["test_accuracy"] - arms[a][large]["test_accuracy"]) for a in arms
    }
    pub = config["published"]["test_accuracy_pct"]
    theirs = {k: v[0] - v[1] for k, v in pub.items()}
    ours = float(diff["fixed η"].mean())
    numbers = {
        "arms": arms,
        "published": config["published"],
        "theirs_small_minus_large_pts": theirs,
        "ours_small_minus_large_pts": diff,
        "verdict": kit.verdict(ours, theirs["MNIST FC (F1)"], tol=config["tolerance_pts"]),
        "same_direction_as_published": bool(ours > 0),
    }
    numbers["headline"] = {
        f"{a}, B={b} (η={arms[a][b]['learning_rate']:g})": (
            f"test {mean_std(arms[a][b]['test_accuracy'], '.3f')}, train loss "
            f"{mean_std(arms[a][b]['train_loss'], '.3f')}, λ_max "
            f"{mean_std(arms[a][b]['sharpness'], '.2f')}, {arms[a][b]['epochs'].mean():.0f} ep"
        )
        for a in arms
        for b in bs
    }
    numbers["headline"][f"test B={small} − B={large}, fixed η (ours / Keskar MNIST FC)"] = (
        f"{mean_std(diff['fixed η'], '+.2f', '.2f')} / {theirs['MNIST FC (F1)']:+.2f} pts → "
        f"{numbers['verdict']}"
    )
    notes = [
        f"SGD lr {config['learning_rate']:g} at B={small}; every run is read at the first "
        f"epoch whose full training loss is ≤ {config['target_loss']:g} (at most "
        f"{config['max_epochs']} epochs); {len(next(iter(arms.values()))[small]['sharpness'])} "
        "seeds.",
    ]
    for a in arms:
        missed = [b for b in bs if not np.all(arms[a][b]["reached"])]
        notes.append(
            f"{a}: training loss read {', '.join(f'{v:.3f}' for v in mean(a, 'train_loss'))} "
            f"after {', '.join(f'{v:.0f}' for v in mean(a, 'epochs'))} epochs for B = "
            f"{', '.join(bs)}; runs that missed the target: {missed or 'none'}. At that loss "
            f"the sharpness λ_max {_trend(mean(a, 'sharpness'))} B "
            f"({', '.join(f'{v:.2f}' for v in mean(a, 'sharpness'))}) and the test accuracy "
            f"{_trend(mean(a, 'test_accuracy'))} B "
            f"({', '.join(f'{v:.3f}' for v in mean(a, 'test_accuracy'))})."
        )
    d_eta, d_noise = (float(np.abs(diff[a].mean())) for a in ("fixed η", "fixed η/B"))
    notes += [
        f"Test accuracy B={small} − B={large}: "
        f"{mean_std(diff['fixed η'], '+.2f', '.2f')} points at fixed η, "
        f"{mean_std(diff['fixed η/B'], '+.2f', '.2f')} at fixed η/B: holding the noise "
        f"scale {'shrinks' if d_noise < d_eta else 'does not shrink'} the batch-size effect "
        "(Smith & Le 2018 predict it does).",
        "Keskar et al. (small − large, points): "
        + ", ".join(f"{k} {v:+.2f}" for k, v in theirs.items())
        + f"; ours at fixed η {ours:+.2f}; against the FC network (tolerance ±"
        f"{config['tolerance_pts']:g} points): {numbers['verdict']}, "
        f"{'same' if ours > 0 else 'opposite'} direction.",
    ]
    numbers["notes"] = notes
    return numbers


def figure(numbers: dict, config: dict):
    """Per arm: test accuracy, sharpness and training loss read vs B; ours vs Keskar."""
    arms = numbers["arms"]
    bs = np.asarray(config["batch_sizes"])
    fig, axes = kit.panels(4, size=(3.6, 3.2))
    for a, per in arms.items():
        for ax, key in zip(axes[:3], ("test_accuracy", "sharpness", "train_loss"), strict=True):
            kit.seeds_errorbar(
                ax, bs, np.stack([per[str(b)][key] for b in bs]), label=a, dots=False
            )
    for ax, lab in zip(
        axes[:3], ("test accuracy", "λ_max (train-loss Hessian)", "train loss read"), strict=True
    ):
        ax.set(xscale="log", xlabel="batch size B", ylabel=lab)
        ax.legend(fontsize=7)
    axes[0].axhline(0.1, color="gray", ls=":", label="chance")
    axes[2].axhline(config["target_loss"], color="gray", ls="--")
    theirs = numbers["theirs_small_minus_large_pts"]
    ours = numbers["ours_small_minus_large_pts"]
    labels = [*theirs, *(f"ours, {a}" for a in ours)]
    vals = [*theirs.values(), *(np.mean(v) for v in ours.values())]
    axes[3].barh(labels, vals, color=["C7"] * len(theirs) + ["C0", "C1"][: len(ours)])
    axes[3].axvline(0, color="k", lw=0.8)
    axes[3].set(xlabel="test acc, small − large batch (points)", title="ours vs Keskar et al.")
    axes[3].tick_params(labelsize=7)
    fig.tight_layout()
    return fig
