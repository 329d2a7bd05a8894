"""Stochastic depth (drop-path) on a residual 1-D CNN that overfits MNIST-1D.

Huang et al. 2016, "Deep Networks with Stochastic Depth": during training each residual
branch is dropped for a whole example with a probability that grows linearly with depth,
``p_l = l / L · p_L`` for block ``l = 1..L``; survivors are scaled by ``1 / (1 − p_l)`` so
evaluation uses the full network unchanged (:func:`jreg.nn.models.drop_path`). Their
setting (a 110-layer ResNet on CIFAR-10) overfits: the training error goes to ≈ 0 and the
test error is 13.63 % without augmentation; ``p_L = 0.5`` brings it to 11.66 %.

Here the closest setting that runs in minutes on CPUs: MNIST-1D (Greydanus 2020; 4,000
train / 1,000 test, no augmentation), where a small CNN reaches ≈ 94 % test accuracy and
fits the training set exactly. The network is a residual 1-D CNN (:func:`residual_cnn`: a
stride-2 stem convolution, ``depth`` pre-activation blocks ``h + drop_path(conv(relu(conv(
relu(h)))))``, a linear read-out), trained with Adam until the training accuracy is ≈ 1;
the final rate ``p_L`` is swept from 0 (the overfitting baseline) to 0.5 (Huang et al.'s
choice), every rate × seed in one vmapped sweep. Numbers per rate: train and test accuracy
and their gap; the relative test-error change at ``p_L = 0.5`` is set against theirs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jreg import data, tasks
from jreg.core import streams
from jreg.experiments import kit
from jreg.experiments.kit import mean_std
from jreg.nn import models, nets

DESCRIPTION = (
    "MNIST-1D, residual 1-D CNN (8 blocks × 16 channels) trained to fit the training set: "
    "drop-path with the linear depth ramp, p_L = 0…0.5; gap and test error vs Huang et al."
)


def get_config(quick: bool = False) -> dict:
    """Full size: 4,000 / 1,000 MNIST-1D, 3 seeds; quick: 1,000 / 500, narrow and short."""
    full = {
        "data_seed": 0,  # mnist1d generator seed
        "seeds": 3,  # model seeds (init, batch order, drop masks)
        "n_train": 4000,
        "n_test": 1000,
        "channels": 16,
        "depth": 8,  # residual blocks, two 3-tap convolutions each
        "rates": (0.0, 0.1, 0.25, 0.5),  # final-block drop rate p_L
        "learning_rate": 1e-3,
        "batch_size": 100,
        "num_epochs": 40,
        "eval_every": 5,  # epochs
        "published": {
            "source": "Huang et al. 2016, Deep Networks with Stochastic Depth, Sec. 4 / "
            "Table 1: 110-layer ResNet, CIFAR-10, linear decay to p_L = 0.5",
            "test_error_pct_no_augmentation": {"constant depth": 13.63, "stochastic": 11.66},
            "test_error_pct_augmentation": {"constant depth": 6.41, "stochastic": 5.25},
            "p_L": 0.5,
            "mnist1d_source": "Greydanus 2020, MNIST-1D README (test accuracy %)",
            "mnist1d_test_accuracy_pct": {"logistic": 32, "MLP": 68, "CNN": 94, "GRU": 91},
        },
        # ours vs theirs: relative test-error reduction at p_L = 0.5, in percent of the
        # no-drop error (theirs 14.4 % without augmentation); the no-drop CNN vs 94 %.
        "tolerance_rel_error_pct": 10.0,
        "tolerance_accuracy_pct": 3.0,
    }
    quick_overrides = dict(
        seeds=2, n_train=1000, n_test=500, channels=8, depth=4, rates=(0.0, 0.5),
        learning_rate=3e-3, batch_size=50, num_epochs=40, eval_every=10,
    )  # fmt: skip
    return kit.sized(quick, full, quick_overrides=quick_overrides)


def residual_cnn(length: int, num_classes: int, *, channels: int, depth: int) -> nets.Model:
    """Residual 1-D CNN with stochastic depth at ``hp["drop_path_rate"]`` (linear ramp).

    ``x (B, length) -> 5-tap conv, stride 2 (B, length/2, C) -> depth × [h + drop_path(
    conv₃(relu(conv₃(relu(h)))))] -> relu, flatten -> linear (B, num_classes)``. Each
    convolution is one matmul over the stacked shifts (fast under ``vmap`` on CPUs); the
    blocks are a ``lax.scan``; the second conv of a block starts at ``1/√depth`` of He.
    """

    def conv(p, h):  # 'same' padding, h (B, L, C_in), p["w"] (taps · C_in, C_out)
        taps = p["w"].shape[0] // h.shape[-1]
        padded = jnp.pad(h, ((0, 0), (taps // 2, taps // 2), (0, 0)))
        cols = jnp.concatenate([padded[:, i : i + h.shape[1]] for i in range(taps)], -1)
        return cols @ p["w"] + p["b"]

    def he(key, fan_in, fan_out, scale=1.0):
        w = jax.random.normal(key, (fan_in, fan_out)) * scale * jnp.sqrt(2.0 / fan_in)
        return {"w": w, "b": jnp.zeros(fan_out)}

    def init(key, hp):
        k_in, k_out, *k_blocks = jax.random.split(key, depth + 2)
        blocks = [
            [he(k1, 3 * channels, channels), he(k2, 3 * channels, channels, depth**-0.5)]
            for k1, k2 in (jax.random.split(k) for k in k_blocks)
        ]
        params = {
            "in": he(k_in, 5, channels),
            "blocks": jax.tree.map(lambda *a: jnp.stack(a), *blocks),
            "out": he(k_out, length // 2 * channels, num_classes, 0.5**0.5),
        }
        return params, {}

    def apply(params, state, x, *, key, train, hp):
        rate = hp.get("drop_path_rate", 0.0)

        def block(h, inputs):
            (c1, c2), layer = inputs
            branch = conv(c2, jax.nn.relu(conv(c1, jax.nn.relu(h))))
            k = None if key is None else jax.random.fold_in(key, layer)
            return h + models.drop_path(branch, layer / depth * rate, key=k, train=train), None

        h = conv(params["in"], x[..., None])[:, ::2]
        h = jax.lax.scan(block, h, (params["blocks"], jnp.arange(1, depth + 1)))[0]
        out = jax.nn.relu(h).reshape(h.shape[0], -1) @ params["out"]["w"] + params["out"]["b"]
        return out, state, {}

    return nets.Model(init, apply)


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Train every rate × seed in one sweep; final train / test accuracy per rate."""
    x_tr, y_tr, x_te, y_te = data.mnist1d(
        config["n_train"], config["n_test"], seed=config["data_seed"]
    )
    model = residual_cnn(x_tr.shape[1], 10, channels=config["channels"], depth=config["depth"])
    task = tasks.supervised(
        model, optimizer=optax.adam(config["learning_rate"]), hparams={"drop_path_rate": 0.0}
    )
    rates = np.asarray(config["rates"], np.float32)
    hist = run.sweep(
        task, tasks.split_data(x_tr, y_tr, x_te, y_te),
        stream=streams.epochs(config["batch_size"]), seeds=config["seeds"],
        epochs=config["num_epochs"], eval_epochs=config["eval_every"],
        hparams={"drop_path_rate": rates},
    ).history  # fmt: skip
    tr_acc, te_acc = hist["train_accuracy"][..., -1], hist["test_accuracy"][..., -1]  # (R, S)
    gap, err = tr_acc - te_acc, 100 * (1 - te_acc)
    labels = [f"p_L={r:g}" for r in rates]
    pub = config["published"]
    theirs = pub["test_error_pct_no_augmentation"]
    theirs_rel = 100 * (1 - theirs["stochastic"] / theirs["constant depth"])
    i_pub = int(np.argmin(np.abs(rates - pub["p_L"])))  # our arm at (or nearest) their rate
    ours_rel = 100 * (1 - err[i_pub] / err[0])  # per seed, paired: same init and batches
    base_acc = 100 * te_acc[0].mean()
    numbers = {
        "rates": rates,
        "epoch": hist["epoch"][0, 0],
        "curves": {k: hist[k] for k in ("train_accuracy", "test_accuracy")},
        "train_accuracy": tr_acc,
        "test_accuracy": te_acc,
        "train_test_gap": gap,
        "chance_accuracy": 0.1,
        "published": pub,
        "ours": {
            "rate": float(rates[i_pub]),
            "test_error_pct": {"no drop": err[0], labels[i_pub]: err[i_pub]},
            "relative_error_reduction_pct": ours_rel,
            "no_drop_test_accuracy_pct": base_acc,
        },
        "theirs_relative_error_reduction_pct": theirs_rel,
        "verdict_relative_error_reduction": kit.verdict(
            float(ours_rel.mean()), theirs_rel, tol=config["tolerance_rel_error_pct"]
        ),
        "verdict_no_drop_vs_mnist1d_cnn": kit.verdict(
            base_acc, pub["mnist1d_test_accuracy_pct"]["CNN"], tol=config["tolerance_accuracy_pct"]
        ),
    }
    numbers["headline"] = {
        **{f"test acc, {lab}": mean_std(te_acc[i], ".3f") for i, lab in enumerate(labels)},
        **{f"train − test gap, {lab}": mean_std(gap[i], ".3f") for i, lab in enumerate(labels)},
        f"rel. test-error change at {labels[i_pub]} (ours / Huang et al.)": (
            f"{mean_std(-ours_rel, '+.1f', '.1f')} % / {-theirs_rel:+.1f} % → "
            f"{numbers['verdict_relative_error_reduction']}"
        ),
    }
    gap_m, te_m = gap.mean(axis=1), te_acc.mean(axis=1)
    shrinks = bool(np.all(np.diff(gap_m) < 0))
    numbers["notes"] = [
        f"MNIST-1D (seed {config['data_seed']}): {config['n_train']} train / "
        f"{config['n_test']} test, no augmentation; residual 1-D CNN, {config['depth']} blocks "
        f"of {config['channels']} channels; {hist['step'].shape[1]} seeds, "
        f"{config['num_epochs']} epochs of batch {config['batch_size']}, Adam "
        f"{config['learning_rate']:g}; chance accuracy 0.1.",
        f"Without drop-path the network reaches train accuracy {mean_std(tr_acc[0], '.3f')} "
        f"and test accuracy {mean_std(te_acc[0], '.3f')} (MNIST-1D README CNN: 0.94; "
        f"verdict (tolerance ±{config['tolerance_accuracy_pct']:g} points): "
        f"{numbers['verdict_no_drop_vs_mnist1d_cnn']}): a train − test gap of "
        f"{mean_std(gap[0], '.3f')} for drop-path to regularize.",
        "Mean train − test gap per rate: "
        + ", ".join(f"{g:.3f} ({lab})" for g, lab in zip(gap_m, labels, strict=True))
        + f"; it {'shrinks' if shrinks else 'does not shrink'} monotonically with p_L. Mean "
        "test accuracy: " + ", ".join(f"{t:.3f}" for t in te_m) + ".",
        f"At {labels[i_pub]} the test error goes {err[0].mean():.2f} → {err[i_pub].mean():.2f} "
        f"% ({mean_std(-ours_rel, '+.1f', '.1f')} % relative, {int(np.sum(ours_rel > 0))}/"
        f"{ours_rel.size} seeds lower); Huang et al. (CIFAR-10, no augmentation): "
        f"{theirs['constant depth']} → {theirs['stochastic']} % ({-theirs_rel:+.1f} %): "
        f"verdict (tolerance ±{config['tolerance_rel_error_pct']:g} points): "
        f"{numbers['verdict_relative_error_reduction']}, "
        f"{'same' if ours_rel.mean() > 0 else 'opposite'} direction.",
    ]
    return numbers


def figure(numbers: dict, config: dict):
    """Accuracies and gap per rate; test error ours vs Huang et al.; test curves."""
    rates = np.asarray(numbers["rates"])
    fig, axes = kit.panels(3, size=(14 / 3, 4))
    kit.seeds_errorbar(axes[0], rates, numbers["test_accuracy"], label="test")
    kit.seeds_errorbar(axes[0], rates, numbers["train_accuracy"], label="train", dots=False)
    kit.seeds_errorbar(axes[0], rates, numbers["train_test_gap"], label="train − test")
    axes[0].axhline(numbers["chance_accuracy"], color="gray", ls=":", label="chance")
    axes[0].set(xlabel="final drop-path rate $p_L$", ylabel="accuracy", title="ours (mean ± std)")
    axes[0].legend(fontsize=8)
    ours = numbers["ours"]["test_error_pct"]
    theirs = numbers["published"]["test_error_pct_no_augmentation"]
    x = np.arange(2)
    axes[1].bar(x - 0.2, [np.mean(v) for v in ours.values()], 0.4, label="ours, MNIST-1D")
    axes[1].bar(x + 0.2, list(theirs.values()), 0.4, label="Huang et al., CIFAR-10")
    axes[1].set_xticks(x, ["no drop", f"$p_L$={numbers['ours']['rate']:g}"])
    axes[1].set(ylabel="test error (%)", title="test error, ours vs published")
    axes[1].legend(fontsize=8)
    curves = np.asarray(numbers["curves"]["test_accuracy"])
    for i, r in enumerate(rates):
        kit.band(axes[2], np.asarray(numbers["epoch"]), curves[i], label=f"$p_L$={r:g}")
    axes[2].set(xlabel="epoch", ylabel="test accuracy", title="test accuracy during training")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    return fig
