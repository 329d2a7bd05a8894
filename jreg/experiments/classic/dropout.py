"""Dropout on overlapping two moons: a smoother boundary, and MC dropout as an ensemble.

Reference (blog section 3, appendix): MLP 2-96-96-2 tanh, Adam (0.9, 0.999) with power-law
rate (0.05, 0.5, 5e4), 1e4 epochs of B=32 on 300 two-moons points whose position noise is
large enough that the classes overlap; no label noise. Two networks: no dropout and p=0.4
after every hidden layer, trained for every seed in one vmapped sweep. The dropout net is
then run (i) deterministically (dropout off, the usual inference), (ii) with dropout left
ON (single Monte-Carlo passes) and (iii) as the average of many such passes.

jreg's dropout draws one mask per example (Srivastava et al. 2014); the blog's numpy code
draws ONE mask per forward pass, shared by the whole minibatch (issue 13, item 4). A third
net, "dropout, shared mask" (``models.mlp_apply(shared_mask=...)``, same p, same seeds),
is the blog's variant; the mask kind is a swept 0/1 hyperparameter, so the three nets
train in one sweep.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jreg import analysis, data, tasks
from jreg.analysis import metrics
from jreg.core import streams, train
from jreg.experiments import kit, plotting
from jreg.experiments.kit import mean_std
from jreg.nn import models, nets
from jreg.tasks import schedules
from jreg.util import checks

DESCRIPTION = (
    "Two moons (300 pts, noise 0.3, overlapping), MLP 2-96-96-2, Adam: dropout p=0 vs 0.4; "
    "deterministic vs single MC-dropout passes vs their average."
)

NAMES = ("no dropout", "dropout", "dropout, shared mask")  # the last: the blog's mask
CURVES = ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "train_objective")


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


def _mlp(widths) -> nets.Model:
    """Tanh MLP reading ``dropout_rate`` and ``shared_mask`` (0: per example, 1: per pass)."""

    def init(key, hp):
        return models.mlp_init(key, widths)

    def apply(params, x, *, key, train, hp):
        return models.mlp_apply(
            params,
            x,
            activation="tanh",
            dropout_rate=hp.get("dropout_rate", 0.0),
            key=key,
            train=train,
            shared_mask=hp.get("shared_mask", False),
        )

    return nets.pure(init, apply, uses_hp=True)


def _accuracy(p1, labels) -> np.ndarray:
    """Accuracy of class-1 probabilities ``p1`` (..., N) against ``labels`` (N,) -> (...)."""
    p1 = jnp.asarray(p1)
    probs = jnp.stack([1.0 - p1, p1], axis=-1).reshape(-1, *p1.shape[-1:], 2)
    acc = jax.vmap(lambda q: metrics.accuracy(q, jnp.asarray(labels)))(probs)
    return np.asarray(acc).reshape(p1.shape[:-1])


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Train both nets for every seed as one sweep, then compare inference modes.

    Numbers: per-seed test accuracies of every inference mode, agreement of MC passes with
    the deterministic net, training curves (2 nets, S, T) and, for the figure, the class-1
    probability on an R x R grid of seed 0 for each inference mode.
    """
    progress = run.progress
    key = checks.seed_key(config["seed"])
    k_data, k_mc = jax.random.split(key)
    del key
    x_tr, y_tr, x_te, y_te = data.two_moons(
        k_data, config["n_train"], noise=config["noise"], n_test=config["n_test"]
    )
    lr0, a, tau = config["lr"]
    b1, b2 = config["betas"]
    rate = float(config["dropout_rate"])
    model = _mlp(config["widths"])
    # offset=1: the reference optimizer increments its counter before computing the rate.
    opt = optax.adam(schedules.power_law(lr0, a, tau, offset=1), b1=b1, b2=b2)
    spe = config["n_train"] // config["batch_size"]
    task = tasks.supervised(model, optimizer=opt, hparams={"dropout_rate": 0.0, "shared_mask": 0.0})
    res = train.sweep(
        task,
        tasks.split_data(x_tr, y_tr, x_te, y_te),
        stream=streams.epochs(config["batch_size"]),
        seeds=config["seeds"],
        hparams={  # the three NAMES
            "dropout_rate": np.asarray([0.0, rate, rate], np.float32),
            "shared_mask": np.asarray([0.0, 0.0, 1.0], np.float32),
        },
        num_steps=config["num_epochs"] * spe,
        eval_every=config["eval_every"] * spe,
        progress=progress,
    )
    hist = jax.tree.map(np.asarray, res.history)
    params = res.state["params"]  # leaves (3, S, ...)
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

    def logits(p, x):
        return model.apply(p, {}, x, key=None, train=False, hp={})[0]

    @jax.jit
    def mc_probs(p, k):
        """Class-1 probability of each of ``mc_samples`` dropout-on passes, (M, P).

        One pass = one thinned network: the SAME dropout mask for every point
        (``shared_mask``), so a pass has a decision boundary of its own.
        """
        keys = jax.random.split(k, config["mc_samples"])

        def one(kk):
            out = models.mlp_apply(
                p, pts, activation="tanh", dropout_rate=rate, key=kk, train=True, shared_mask=True
            )
            return jax.nn.softmax(out, axis=-1)[:, 1]

        return jax.lax.map(one, keys, batch_size=10)

    det = jax.jit(jax.vmap(jax.vmap(lambda p: jax.nn.softmax(logits(p, pts), axis=-1)[:, 1])))
    p_det = np.asarray(det(params))  # (3, S, P)
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

    det_cls = (p_det[1, :, n_grid:] > 0.5).astype(np.int32)  # (S, n_test): dropout net, OFF
    avg_name = f"dropout, MC average of {config['mc_samples']}"
    single_acc = _accuracy(p_mc[..., n_grid:], y_te)  # (S, M)
    final = lambda k: hist[k][:, :, -1]  # (3, S)
    test_acc = {
        "no dropout": final("test_accuracy")[0],
        "dropout, deterministic": final("test_accuracy")[1],
        "dropout, shared mask, deterministic": final("test_accuracy")[2],
        "dropout, single MC pass (mean over passes)": single_acc.mean(axis=1),
        avg_name: _accuracy(p_avg[:, n_grid:], y_te),
    }
    agree_avg = np.asarray([_accuracy(p_avg[s, n_grid:], det_cls[s]) for s in range(n_seeds)])
    agree_single = np.stack([_accuracy(p_mc[s, :, n_grid:], det_cls[s]) for s in range(n_seeds)])
    gap_avg = np.abs(p_avg[:, :n_grid] - p_det[1, :, :n_grid]).mean(axis=-1)  # (S,)
    gap_single = np.abs(p_mc[:, :, :n_grid] - p_det[1, :, None, :n_grid]).mean(axis=-1)
    probs_te = jnp.asarray(np.stack([1 - p_det[..., n_grid:], p_det[..., n_grid:]], -1))
    ece = np.asarray(
        jax.vmap(jax.vmap(lambda q: metrics.expected_calibration_error(q, jnp.asarray(y_te))))(
            probs_te
        )
    )
    gap_fn = lambda p: analysis.mean_abs_logit_gap(logits(p, jnp.asarray(x_te)))
    logit_gap = np.asarray(jax.vmap(jax.vmap(gap_fn))(params))  # (3, S)

    numbers = {
        "step": hist["step"][0, 0],
        "curves": {name: {k: hist[k][i] for k in CURVES} for i, name in enumerate(NAMES)},
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
        "boundary_seed0": {  # class-1 probability on the R x R grid, seed 0
            "xx": xx,
            "yy": yy,
            "no dropout": p_det[0, 0, :n_grid].reshape(r, r),
            "dropout, deterministic": p_det[1, 0, :n_grid].reshape(r, r),
            "dropout, shared mask, deterministic": p_det[2, 0, :n_grid].reshape(r, r),
            avg_name: p_avg[0, :n_grid].reshape(r, r),
            "single passes": p_mc[0, : config["mc_shown"], :n_grid].reshape(-1, r, r),
        },
        "train_points": {"x": x_tr, "y": y_tr},
    }
    gain = float(np.mean(test_acc["dropout, deterministic"] - test_acc["no dropout"]))
    single_mean = float(agree_single.mean())
    # Paired per seed (same init and batch order): the blog's shared mask minus jreg's.
    d_acc = test_acc["dropout, shared mask, deterministic"] - test_acc["dropout, deterministic"]
    d_loss = final("test_loss")[2] - final("test_loss")[1]
    numbers["shared_minus_per_example"] = {"test_accuracy": d_acc, "test_loss": d_loss}
    numbers["headline"] = {f"test acc, {k}": mean_std(v) for k, v in test_acc.items()} | {
        "class agreement with OFF, MC average": mean_std(agree_avg),
        "class agreement with OFF, single pass": mean_std(agree_single.mean(axis=1)),
        "grid mean |p − p_OFF|, MC average": mean_std(gap_avg),
        "grid mean |p − p_OFF|, single pass": mean_std(gap_single.mean(axis=1)),
        "test acc, shared − per-example mask (paired)": mean_std(d_acc),
        "test loss, shared − per-example mask (paired)": mean_std(d_loss),
        **{
            f"final {lab}, {n}": mean_std(final(k)[i])
            for k, lab in (
                ("train_objective", "train objective (minibatch, as trained)"),
                ("train_loss", "train loss (clean)"),
                ("test_loss", "test loss"),
            )
            for i, n in enumerate(NAMES)
        },
    }
    numbers["notes"] = [
        f"Data: two_moons(noise={config['noise']}) with key {config['seed']}: "
        f"{config['n_train']} training points without label noise; test: {config['n_test']} "
        "fresh points from the same (noisy, overlapping) distribution.",
        "Seeds vary initialisation, minibatch order and dropout masks on one fixed data set.",
        f"Dropout p={rate:g} after both hidden layers, one mask per example in training "
        "(jreg.nn.models.dropout). Each MC pass is ONE thinned network: one mask per pass "
        "shared by all inputs; the MC average is the mean of the passes' softmax "
        "probabilities. Losses and accuracies in the curves are evaluated with dropout off.",
        f"Dropout (deterministic inference) changes the test accuracy by {gain:+.4f} "
        f"(mean over {n_seeds} seeds); the average of {config['mc_samples']} MC passes "
        f"agrees with it on {agree_avg.mean():.1%} of the test points, a single pass on "
        f"{single_mean:.1%}.",
        f"The blog's dropout (one mask per forward pass shared by the minibatch) "
        f"{'beats' if d_acc.mean() > 0 else 'does not beat'} jreg's per-example masks: "
        f"test accuracy shared − per-example {mean_std(d_acc)} (paired over {n_seeds} "
        f"seeds, higher on {int(np.sum(d_acc > 0))}, lower on {int(np.sum(d_acc < 0))}); "
        f"test loss {mean_std(d_loss)}.",
    ]
    return numbers


def figure(numbers: dict, config: dict):
    """Boundaries of seed 0 per inference mode (left), accuracy and loss curves (right)."""
    bd, pts = numbers["boundary_seed0"], numbers["train_points"]
    x_tr, y_tr = np.asarray(pts["x"]), np.asarray(pts["y"])
    xx, yy = np.asarray(bd["xx"]), np.asarray(bd["yy"])
    acc, rate = numbers["test_accuracy"], config["dropout_rate"]
    avg_name = next(k for k in acc if k.startswith("dropout, MC average"))
    agree = numbers["agreement_with_deterministic"]
    single_acc = np.asarray(numbers["test_accuracy_single_passes"])
    fig, axes = plotting.figure(2, 4, size=(3.6, 3.3), layout="constrained")
    s0 = 0
    panels = [
        (axes[0][0], bd["no dropout"], f"no dropout\ntest acc {acc['no dropout'][s0]:.3f}"),
        (
            axes[0][1],
            bd["dropout, deterministic"],
            f"dropout p={rate:g}, OFF at inference\ntest acc "
            f"{acc['dropout, deterministic'][s0]:.3f}",
        ),
        (
            axes[0][2],
            bd[avg_name],
            f"dropout ON, average of {config['mc_samples']} passes\ntest acc "
            f"{acc[avg_name][s0]:.3f}, agrees with OFF on {agree['mc_average'][s0]:.1%}",
        ),
    ]
    for i, p1 in enumerate(np.asarray(bd["single passes"])[:3]):
        panels.append(
            (
                axes[1][i],
                p1,
                f"dropout ON, single pass #{i + 1}\ntest acc {single_acc[s0, i]:.3f}, "
                f"agrees with OFF on {np.asarray(agree['single_pass'])[s0, i]:.1%}",
            )
        )
    cs = None
    for ax, p1, title in panels:
        cs = plotting.boundary(ax, xx, yy, np.asarray(p1), x_tr, y_tr, title=title)
    fig.colorbar(cs, ax=axes[:, :3].ravel().tolist(), fraction=0.02, pad=0.01, label="p(class 1)")

    steps, curves = numbers["step"], numbers["curves"]
    ax = axes[0][3]
    for name in NAMES:
        plotting.band(ax, steps, curves[name]["test_accuracy"], label=f"{name}, test")
    ax.set_xlabel("step")
    ax.set_ylabel("test accuracy (dropout off)")
    ax.set_title("test accuracy on fresh moons", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[1][3]
    for name in NAMES:
        line = plotting.band(ax, steps, curves[name]["train_loss"], label=f"{name}, train")
        plotting.band(
            ax,
            steps,
            curves[name]["test_loss"],
            label=f"{name}, test",
            ls="--",
            color=line.get_color(),
        )
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (dropout off)")
    ax.set_title("train (solid) / test (dashed) loss", fontsize=9)
    ax.legend(fontsize=7)
    n_seeds = np.asarray(curves[NAMES[0]]["test_accuracy"]).shape[0]
    fig.suptitle(
        f"Two moons, {config['n_train']} train points, noise {config['noise']} (classes "
        f"overlap); boundaries: seed {s0}; curves: mean ± std over {n_seeds} seeds",
        fontsize=11,
    )
    return fig
