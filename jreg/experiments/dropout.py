"""Dropout on overlapping two moons: a smoother boundary, and MC dropout as an ensemble.

Reference (blog section 3, appendix): MLP 2-96-96-2 tanh, Adam (0.9, 0.999) with power-law
rate (0.05, 0.5, 5e4), 1e4 epochs of B=32 on 300 two-moons points whose position noise is
large enough that the classes overlap; no label noise. Two networks: no dropout and p=0.4
after every hidden layer, trained for every seed in one vmapped sweep. The dropout net is
then run (i) deterministically (dropout off, the usual inference), (ii) with dropout left
ON (single Monte-Carlo passes) and (iii) as the average of many such passes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jreg import analysis, data, metrics, models, plotting, schedules, train
from jreg.experiments.runner import Outcome, mean_std

DESCRIPTION = (
    "Two moons (300 pts, noise 0.3, overlapping), MLP 2-96-96-2, Adam: dropout p=0 vs 0.4; "
    "deterministic vs single MC-dropout passes vs their average."
)

NAMES = ("no dropout", "dropout")


def get_config(quick: bool = False) -> dict:
    """Reference setup (blog appendix): Adam, power law (0.05, 0.5, 5e4), 1e4 epochs, B=32."""
    return {
        "seed": 0,  # data set (train and test draws)
        "seeds": 5,  # model seeds (init, data order, dropout masks)
        "n_train": 300,
        "n_test": 2000,
        "noise": 0.3,  # std of the Gaussian position noise (sklearn make_moons units)
        "widths": (2, 96, 96, 2),
        "lr": (0.05, 0.5, 5e4),  # lr0 / (1 + t/tau)^a written (lr0, a, tau)
        "betas": (0.9, 0.999),
        "num_epochs": 300 if quick else 10_000,
        "batch_size": 32,
        "eval_every": 20 if quick else 250,
        "dropout_rate": 0.4,
        "mc_samples": 100,  # passes averaged for the MC-dropout prediction
        "mc_shown": 3,  # single passes drawn in the figure
        "grid_resolution": 80 if quick else 100,
    }


def run(config: dict, *, progress: bool = True) -> Outcome:
    """Train both nets for every seed as one sweep, then compare inference modes."""
    key = jax.random.key(config["seed"])
    k_data, k_mc = jax.random.split(key)
    del key
    x_tr, y_tr, x_te, y_te = data.two_moons(
        k_data, config["n_train"], noise=config["noise"], n_test=config["n_test"]
    )
    lr0, a, tau = config["lr"]
    b1, b2 = config["betas"]
    rate = float(config["dropout_rate"])
    # offset=1: the reference optimizer increments its counter before computing the rate.
    problem = train.mlp_classifier(
        config["widths"],
        optimizer=lambda hp: optax.adam(schedules.power_law(lr0, a, tau, offset=1), b1=b1, b2=b2),
        activation="tanh",
    )
    res = train.sweep(
        problem,
        (x_tr, y_tr, x_te, y_te),
        seeds=config["seeds"],
        hparams={"dropout_rate": np.asarray([0.0, rate], np.float32)},
        num_epochs=config["num_epochs"],
        batch_size=config["batch_size"],
        eval_every=config["eval_every"],
        progress=progress,
    )
    hist = jax.tree.map(np.asarray, res.history)
    params = res.params  # leaves (2, S, ...)
    n_seeds = hist["step"].shape[1]

    # ---- inference modes on [plot grid; test set] for every seed
    pad = 0.4
    xlim = (float(x_tr[:, 0].min()) - pad, float(x_tr[:, 0].max()) + pad)
    ylim = (float(x_tr[:, 1].min()) - pad, float(x_tr[:, 1].max()) + pad)
    r = config["grid_resolution"]
    xx, yy = np.meshgrid(
        np.linspace(*xlim, r, dtype=np.float32), np.linspace(*ylim, r, dtype=np.float32)
    )  # the grid of jreg.analysis.decision_grid
    pts = jnp.asarray(np.concatenate([np.stack([xx.ravel(), yy.ravel()], 1), x_te], 0))
    n_grid = r * r

    def det_probs(p):
        return jax.nn.softmax(problem.predict(p, pts, {}), axis=-1)[:, 1]

    @jax.jit
    def mc_probs(p, k):
        """Class-1 probability of each of ``mc_samples`` dropout-on passes, (M, P).

        One pass = one thinned network: the SAME dropout mask for every point (the key is
        shared across the vmap over points), so a pass has a decision boundary of its own.
        """
        keys = jax.random.split(k, config["mc_samples"])

        def one(kk):
            logits = jax.vmap(
                lambda xi: models.mlp_apply(
                    p, xi, activation="tanh", dropout_rate=rate, key=kk, train=True
                )
            )(pts)
            return jax.nn.softmax(logits, axis=-1)[:, 1]

        return jax.lax.map(one, keys, batch_size=10)

    p_det = np.asarray(jax.jit(jax.vmap(jax.vmap(det_probs)))(params))  # (2, S, P)
    drop_params = jax.tree.map(lambda w: w[1], params)
    p_mc = np.stack(
        [  # (S, M, P); one seed at a time keeps memory small
            np.asarray(
                mc_probs(jax.tree.map(lambda w: w[s], drop_params), jax.random.fold_in(k_mc, s))
            )
            for s in range(n_seeds)
        ]
    )
    p_avg = p_mc.mean(axis=1)  # (S, P)

    def acc(p1):  # p1 (..., P) -> test accuracy (...)
        return np.mean((p1[..., n_grid:] > 0.5) == np.asarray(y_te), axis=-1)

    det_cls = p_det[1, :, n_grid:] > 0.5  # (S, n_test), dropout net, dropout off
    avg_name = f"dropout, MC average of {config['mc_samples']}"
    test_acc = {
        "no dropout": acc(p_det[0]),
        "dropout, deterministic": acc(p_det[1]),
        "dropout, single MC pass (mean over passes)": acc(p_mc).mean(axis=1),
        avg_name: acc(p_avg),
    }
    single_acc = acc(p_mc)  # (S, M)
    agree_avg = np.mean((p_avg[:, n_grid:] > 0.5) == det_cls, axis=-1)  # (S,)
    agree_single = np.mean((p_mc[:, :, n_grid:] > 0.5) == det_cls[:, None], axis=-1)  # (S, M)
    gap_avg = np.abs(p_avg[:, :n_grid] - p_det[1, :, :n_grid]).mean(axis=-1)  # (S,)
    gap_single = np.abs(p_mc[:, :, :n_grid] - p_det[1, :, None, :n_grid]).mean(axis=-1)
    # sanity: the sweep's own evaluation agrees with ours
    sweep_acc = hist["test_accuracy"][:, :, -1]
    ours = np.stack([test_acc["no dropout"], test_acc["dropout, deterministic"]])
    if not np.allclose(sweep_acc, ours, atol=2.0 / len(y_te)):
        raise AssertionError(f"test accuracy mismatch: sweep {sweep_acc}, recomputed {ours}.")
    probs_te = jnp.asarray(np.stack([1 - p_det[..., n_grid:], p_det[..., n_grid:]], -1))
    ece = np.asarray(
        jax.vmap(jax.vmap(lambda q: metrics.expected_calibration_error(q, jnp.asarray(y_te))))(
            probs_te
        )
    )
    logit_gap = np.asarray(
        jax.vmap(
            jax.vmap(
                lambda p: analysis.mean_abs_logit_gap(problem.predict(p, jnp.asarray(x_te), {}))
            )
        )(params)
    )  # (2, S)

    # ---- figure
    fig, axes = plotting.figure(2, 4, size=(3.6, 3.3), layout="constrained")
    grid = lambda p: p[:n_grid].reshape(r, r)
    s0 = 0
    panels = [
        (axes[0][0], p_det[0, s0], f"no dropout\ntest acc {test_acc['no dropout'][s0]:.3f}"),
        (
            axes[0][1],
            p_det[1, s0],
            f"dropout p={rate:g}, OFF at inference\ntest acc "
            f"{test_acc['dropout, deterministic'][s0]:.3f}",
        ),
        (
            axes[0][2],
            p_avg[s0],
            f"dropout ON, average of {config['mc_samples']} passes\ntest acc "
            f"{test_acc[avg_name][s0]:.3f}, "
            f"agrees with OFF on {agree_avg[s0]:.1%}",
        ),
    ]
    for i in range(config["mc_shown"]):
        panels.append(
            (
                axes[1][i],
                p_mc[s0, i],
                f"dropout ON, single pass #{i + 1}\ntest acc {single_acc[s0, i]:.3f}, "
                f"agrees with OFF on {agree_single[s0, i]:.1%}",
            )
        )
    cs = None
    for ax, p1, title in panels:
        cs = plotting.boundary(ax, xx, yy, grid(p1), x_tr, y_tr, title=title)
    fig.colorbar(cs, ax=axes[:, :3].ravel().tolist(), fraction=0.02, pad=0.01, label="p(class 1)")

    steps = hist["step"][0, 0]
    ax = axes[0][3]
    for i, name in enumerate(NAMES):
        plotting.band(ax, steps, hist["test_accuracy"][i], label=f"{name}, test")
    ax.set_xlabel("step")
    ax.set_ylabel("test accuracy (dropout off)")
    ax.set_title("test accuracy on fresh moons", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[1][3]
    for i, name in enumerate(NAMES):
        line = plotting.band(ax, steps, hist["train_loss"][i], label=f"{name}, train")
        plotting.band(
            ax, steps, hist["test_loss"][i], label=f"{name}, test", ls="--", color=line.get_color()
        )
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (dropout off)")
    ax.set_title("train (solid) / test (dashed) loss", fontsize=9)
    ax.legend(fontsize=7)
    fig.suptitle(
        f"Two moons, {config['n_train']} train points, noise {config['noise']} (classes "
        f"overlap); boundaries: seed {s0}; curves: mean ± std over {n_seeds} seeds",
        fontsize=11,
    )

    # ---- numbers
    final = lambda k: hist[k][:, :, -1]  # (2, S)
    numbers = {
        "step": steps,
        "curves": {
            name: {
                k: hist[k][i]
                for k in (
                    "train_loss",
                    "test_loss",
                    "train_accuracy",
                    "test_accuracy",
                    "train_objective",
                )
            }
            for i, name in enumerate(NAMES)
        },
        "test_accuracy": test_acc,
        "test_accuracy_single_passes": single_acc,
        "agreement_with_deterministic": {"mc_average": agree_avg, "single_pass": agree_single},
        "grid_mean_abs_p_diff_from_deterministic": {
            "mc_average": gap_avg,
            "single_pass": gap_single,
        },
        "final_train_loss": {n: final("train_loss")[i] for i, n in enumerate(NAMES)},
        "final_train_objective": {n: final("train_objective")[i] for i, n in enumerate(NAMES)},
        "final_test_loss": {n: final("test_loss")[i] for i, n in enumerate(NAMES)},
        "train_accuracy": {n: final("train_accuracy")[i] for i, n in enumerate(NAMES)},
        "test_mean_abs_logit_gap": {n: logit_gap[i] for i, n in enumerate(NAMES)},
        "test_ece": {n: ece[i] for i, n in enumerate(NAMES)},
    }
    headline = {f"test acc, {k}": mean_std(v) for k, v in test_acc.items()}
    headline |= {
        "class agreement with OFF, MC average": mean_std(agree_avg),
        "class agreement with OFF, single pass": mean_std(agree_single.mean(axis=1)),
        "grid mean |p − p_OFF|, MC average": mean_std(gap_avg),
        "grid mean |p − p_OFF|, single pass": mean_std(gap_single.mean(axis=1)),
        "final train objective (minibatch, as trained), no dropout": mean_std(
            final("train_objective")[0]
        ),
        "final train objective (minibatch, as trained), dropout": mean_std(
            final("train_objective")[1]
        ),
        "final train loss (clean), no dropout": mean_std(final("train_loss")[0]),
        "final train loss (clean), dropout": mean_std(final("train_loss")[1]),
        "final test loss, no dropout": mean_std(final("test_loss")[0]),
        "final test loss, dropout": mean_std(final("test_loss")[1]),
    }
    notes = [
        f"Data: two_moons(noise={config['noise']}) with key {config['seed']}: "
        f"{config['n_train']} training points without label noise; test: {config['n_test']} "
        "fresh points from the same (noisy, overlapping) distribution.",
        "Seeds vary initialisation, minibatch order and dropout masks on one fixed data set.",
        f"Dropout p={rate:g} after both hidden layers (inverted dropout, scaled 1/(1-p) in "
        "training, identity when OFF). Each MC pass is ONE thinned network: one mask per "
        "pass shared by all inputs (jreg.models.mlp_apply(train=True) vmapped over points "
        "with one key), unlike jreg.models.mc_dropout_predict, which draws a fresh mask per "
        "example; the MC average is the mean of the passes' softmax probabilities.",
        "Losses and accuracies in the curves are evaluated with dropout off.",
    ]
    return Outcome(fig, numbers, headline, notes)
