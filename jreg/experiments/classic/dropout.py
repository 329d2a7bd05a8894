"""Dropout on overlapping two moons: a smoother boundary, and MC dropout as an ensemble.

Reference (blog section 3, appendix): MLP 2-96-96-2 tanh, Adam (0.9, 0.999) with power-law rate
(0.05, 0.5, 5e4), 1e4 epochs of B=32 on 300 two-moons points whose position noise is large
enough that the classes overlap; no label noise. Two networks: no dropout and p=0.4 after every
hidden layer, trained for every seed in one vmapped sweep. The dropout net is then run (i)
deterministically (dropout off, the usual inference), (ii) with dropout left ON (single
Monte-Carlo passes) and (iii) as the average of many such passes.

jreg's dropout draws one mask per example (Srivastava et al. 2014); the blog's numpy code draws
ONE mask per forward pass, shared by the whole minibatch (issue 13, item 4). A third net,
"dropout, shared mask" (``models.mlp_apply(shared_mask=...)``, same p and seeds), is the blog's
variant; the mask kind is a swept 0/1 hyperparameter, so the three nets train in one sweep.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jreg import analysis, data, tasks
from jreg.analysis import metrics
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
DET = ("no dropout", "dropout, deterministic", "dropout, shared mask, deterministic")
FINALS = ("train_loss", "train_objective", "test_loss")
CURVES = ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "train_objective")


def get_config(quick: bool = False) -> dict:
    """Reference setup (blog appendix): Adam, power law (0.05, 0.5, 5e4), 1e4 epochs, B=32."""
    full = {
        "seed": 0,  # data set (train and test draws)
        "seeds": 5,  # model seeds (init, data order, dropout masks)
        "n_train": 300,
        "n_test": 2000,
        "noise": 0.3,  # std of the Gaussian position noise (sklearn make_moons units)
        "widths": (2, 96, 96, 2),
        "lr": (0.05, 0.5, 5e4),  # lr0 / (1 + t/tau)^a written (lr0, a, tau)
        "betas": (0.9, 0.999),
        "num_epochs": 10_000,
        "batch_size": 32,
        "eval_every": 250,
        "dropout_rate": 0.4,
        "mc_samples": 100,  # passes averaged for the MC-dropout prediction
        "mc_shown": 3,  # single passes drawn in the figure
        "grid_resolution": 100,
    }
    quick_sizes = {"num_epochs": 300, "eval_every": 20, "grid_resolution": 80}
    return kit.sized(quick, full, quick_overrides=quick_sizes)


def _mlp(widths) -> nets.Model:
    """Tanh MLP reading ``dropout_rate`` and ``shared_mask`` (0: per example, 1: per pass)."""

    def apply(params, x, *, key, train, hp):
        rate, shared = hp.get("dropout_rate", 0.0), hp.get("shared_mask", False)
        kw = {"dropout_rate": rate, "key": key, "train": train, "shared_mask": shared}
        return models.mlp_apply(params, x, activation="tanh", **kw)

    init = lambda key, hp: models.mlp_init(key, widths)
    return nets.pure(init, apply, uses_hp=True)


def _accuracy(p1, labels) -> np.ndarray:
    """Accuracy of class-1 probabilities ``p1`` (..., N) against ``labels`` (N,) -> (...)."""
    p1 = jnp.asarray(p1)
    probs = jnp.stack([1.0 - p1, p1], axis=-1).reshape(-1, *p1.shape[-1:], 2)
    acc = jax.vmap(lambda q: metrics.accuracy(q, jnp.asarray(labels)))(probs)
    return np.asarray(acc).reshape(p1.shape[:-1])


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Train both nets for every seed as one sweep, then compare inference modes.

    Numbers: per-seed test accuracy of every inference mode, agreement of MC passes with the
    deterministic net, curves (3 nets, S, T), seed 0's class-1 probability on a grid per mode.
    """
    k_data, k_mc = jax.random.split(checks.seed_key(config["seed"]))
    moons = data.two_moons(k_data, config["n_train"], **{k: config[k] for k in ("noise", "n_test")})
    x_tr, y_tr, x_te, y_te = moons
    rate = float(config["dropout_rate"])
    model = _mlp(config["widths"])
    # offset=1: the reference optimizer increments its counter before computing the rate.
    opt = optax.adam(schedules.power_law(*config["lr"], offset=1), *config["betas"])  # (b1, b2)
    task = tasks.supervised(model, optimizer=opt, hparams={"dropout_rate": 0.0, "shared_mask": 0.0})
    hp = {"dropout_rate": [0.0, rate, rate], "shared_mask": [0.0, 0.0, 1.0]}  # the three NAMES
    hp = {k: np.asarray(v, np.float32) for k, v in hp.items()}
    res = kit.epoch_sweep(run, task, tasks.split_data(*moons), config, hparams=hp)
    hist, params = res.history, res.state["params"]  # params: leaves (3, S, ...)
    n_seeds = hist["step"].shape[1]

    # ---- inference modes on [plot grid; test set] for every seed
    r, lo, hi = config["grid_resolution"], x_tr.min(0).astype(float), x_tr.max(0).astype(float)
    lo, hi = lo - 0.4, hi + 0.4  # the grid of jreg.analysis.decision_grid
    xx, yy = np.meshgrid(*(np.linspace(lo[i], hi[i], r, dtype=np.float32) for i in (0, 1)))
    pts = jnp.asarray(np.concatenate([np.stack([xx.ravel(), yy.ravel()], 1), x_te], 0))
    n_grid = r * r

    def logits(p, x):
        return model.apply(p, {}, x, key=None, train=False, hp={})[0]

    @jax.jit
    def mc_probs(p, k):
        """(M, P) class-1 probabilities of dropout-on passes, each one mask for all points."""
        keys = jax.random.split(k, config["mc_samples"])
        kw = {"activation": "tanh", "dropout_rate": rate, "train": True, "shared_mask": True}
        one = lambda kk: jax.nn.softmax(models.mlp_apply(p, pts, key=kk, **kw), axis=-1)[:, 1]
        return jax.lax.map(one, keys, batch_size=10)

    det = jax.jit(jax.vmap(jax.vmap(lambda p: jax.nn.softmax(logits(p, pts), axis=-1)[:, 1])))
    p_det = np.asarray(det(params))  # (3, S, P)
    drop_params = jax.tree.map(lambda w: w[1], params)
    seed_s = lambda s: jax.tree.map(lambda w: w[s], drop_params)
    # (S, M, P); one seed at a time keeps memory small
    p_mc = np.stack(
        [np.asarray(mc_probs(seed_s(s), jax.random.fold_in(k_mc, s))) for s in range(n_seeds)]
    )
    p_avg = p_mc.mean(axis=1)  # (S, P)

    det_cls = (p_det[1, :, n_grid:] > 0.5).astype(np.int32)  # (S, n_test): dropout net, OFF
    avg_name = f"dropout, MC average of {config['mc_samples']}"
    single_acc = _accuracy(p_mc[..., n_grid:], y_te)  # (S, M)
    final = lambda k: hist[k][:, :, -1]  # (3, S)
    test_acc = dict(zip(DET, final("test_accuracy"), strict=True))
    test_acc["dropout, single MC pass (mean over passes)"] = single_acc.mean(axis=1)
    test_acc[avg_name] = _accuracy(p_avg[:, n_grid:], y_te)
    agree_avg = np.asarray([_accuracy(p_avg[s, n_grid:], det_cls[s]) for s in range(n_seeds)])
    agree_single = np.stack([_accuracy(p_mc[s, :, n_grid:], det_cls[s]) for s in range(n_seeds)])
    gap_avg = np.abs(p_avg[:, :n_grid] - p_det[1, :, :n_grid]).mean(axis=-1)  # (S,)
    gap_single = np.abs(p_mc[:, :, :n_grid] - p_det[1, :, None, :n_grid]).mean(axis=-1)
    probs_te = jnp.asarray(np.stack([1 - p_det[..., n_grid:], p_det[..., n_grid:]], -1))
    ece_fn = lambda q: metrics.expected_calibration_error(q, jnp.asarray(y_te))
    ece = np.asarray(jax.vmap(jax.vmap(ece_fn))(probs_te))
    gap_fn = lambda p: analysis.mean_abs_logit_gap(logits(p, jnp.asarray(x_te)))
    logit_gap = np.asarray(jax.vmap(jax.vmap(gap_fn))(params))  # (3, S)

    gaps = {"mc_average": gap_avg, "single_pass": gap_single}
    boundary = {"xx": xx, "yy": yy}  # class-1 probability on the R x R grid, seed 0
    boundary |= {n: p_det[i, 0, :n_grid].reshape(r, r) for i, n in enumerate(DET)}
    boundary[avg_name] = p_avg[0, :n_grid].reshape(r, r)
    boundary["single passes"] = p_mc[0, : config["mc_shown"], :n_grid].reshape(-1, r, r)
    numbers = {
        "step": hist["step"][0, 0],
        "curves": {name: {k: hist[k][i] for k in CURVES} for i, name in enumerate(NAMES)},
        "test_accuracy": test_acc,
        "test_accuracy_single_passes": single_acc,
        "agreement_with_deterministic": {"mc_average": agree_avg, "single_pass": agree_single},
        "grid_mean_abs_p_diff_from_deterministic": gaps,
        **{f"final_{k}": dict(zip(NAMES, final(k), strict=True)) for k in FINALS},
        "train_accuracy": {n: final("train_accuracy")[i] for i, n in enumerate(NAMES)},
        "test_mean_abs_logit_gap": {n: logit_gap[i] for i, n in enumerate(NAMES)},
        "test_ece": {n: ece[i] for i, n in enumerate(NAMES)},
        "boundary_seed0": boundary,
        "train_points": {"x": x_tr, "y": y_tr},
    }
    gain = float(np.mean(test_acc["dropout, deterministic"] - test_acc["no dropout"]))
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
    }
    labs = ("train objective (minibatch, as trained)", "train loss (clean)", "test loss")
    for k, lab in zip(("train_objective", "train_loss", "test_loss"), labs, strict=True):
        for i, n in enumerate(NAMES):
            numbers["headline"][f"final {lab}, {n}"] = mean_std(final(k)[i])
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
        f"{agree_single.mean():.1%}.",
        f"The blog's dropout (one mask per forward pass shared by the minibatch) "
        f"{'beats' if d_acc.mean() > 0 else 'does not beat'} jreg's per-example masks: "
        f"test accuracy shared − per-example {mean_std(d_acc)} (paired over {n_seeds} "
        f"seeds, higher on {int(np.sum(d_acc > 0))}, lower on {int(np.sum(d_acc < 0))}); "
        f"test loss {mean_std(d_loss)}.",
    ]
    return numbers


def figure(numbers: dict, config: dict):
    """Boundaries of seed 0 per inference mode (left), accuracy and loss curves (right)."""
    bd, pts, s0 = numbers["boundary_seed0"], numbers["train_points"], 0
    acc, agree = numbers["test_accuracy"], numbers["agreement_with_deterministic"]
    avg_name = next(k for k in acc if k.startswith("dropout, MC average"))
    single_acc, single = np.asarray(numbers["test_accuracy_single_passes"]), bd["single passes"]
    fig, axes = plotting.figure(2, 4, size=(3.6, 3.3), layout="constrained")
    titles = [
        f"no dropout\ntest acc {acc[DET[0]][s0]:.3f}",
        f"dropout p={config['dropout_rate']:g}, OFF at inference\ntest acc {acc[DET[1]][s0]:.3f}",
        f"dropout ON, average of {config['mc_samples']} passes\ntest acc {acc[avg_name][s0]:.3f}, "
        f"agrees with OFF on {agree['mc_average'][s0]:.1%}",
    ]
    for i, a in enumerate(np.asarray(agree["single_pass"])[s0, : min(3, len(single))]):
        titles.append(
            f"dropout ON, single pass #{i + 1}\ntest acc {single_acc[s0, i]:.3f}, "
            f"agrees with OFF on {a:.1%}"
        )
    maps = [bd[DET[0]], bd[DET[1]], bd[avg_name], *np.asarray(single)[:3]]
    xx, yy, x_tr, y_tr = (np.asarray(v) for v in (bd["xx"], bd["yy"], pts["x"], pts["y"]))
    for ax, p1, title in zip([*axes[0][:3], *axes[1]], maps, titles, strict=False):
        cs = plotting.boundary(ax, xx, yy, np.asarray(p1), x_tr, y_tr, title=title)
    fig.colorbar(cs, ax=axes[:, :3].ravel().tolist(), fraction=0.02, pad=0.01, label="p(class 1)")

    steps, curves = numbers["step"], numbers["curves"]
    ax_acc, ax_loss = axes[0][3], axes[1][3]
    for name in NAMES:
        plotting.band(ax_acc, steps, curves[name]["test_accuracy"], label=f"{name}, test")
        line = plotting.band(ax_loss, steps, curves[name]["train_loss"], label=f"{name}, train")
        test = {"label": f"{name}, test", "ls": "--", "color": line.get_color()}
        plotting.band(ax_loss, steps, curves[name]["test_loss"], **test)
    ax_acc.set(xlabel="step", ylabel="test accuracy (dropout off)")
    ax_acc.set_title("test accuracy on fresh moons", fontsize=9)
    ax_loss.set(yscale="log", xlabel="step", ylabel="cross-entropy (dropout off)")
    ax_loss.set_title("train (solid) / test (dashed) loss", fontsize=9)
    for ax in (ax_acc, ax_loss):
        ax.legend(fontsize=7)
    fig.suptitle(
        f"Two moons, {config['n_train']} train points, noise {config['noise']} (classes overlap);"
        f" boundaries: seed {s0}; curves: mean ± std over {single_acc.shape[0]} seeds",
        fontsize=11,
    )
    return fig
