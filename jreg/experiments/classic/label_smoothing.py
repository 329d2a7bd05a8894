"""Label smoothing: an ε sweep trades the over-confidence of an interpolating MLP for calibration.

An MLP trained to 100% training accuracy on 1,000 MNIST digits with plain cross-entropy is
over-confident on the test set: its mean confidence exceeds its accuracy and most of its
mistakes are made with high confidence. Smoothing the targets (``1 − ε`` on the label,
``ε/(K − 1)`` elsewhere, :mod:`jreg.regularizers.losses`) pulls the reliability curve onto the
diagonal for small ε and past it (under-confidence) for larger ε; the expected calibration
error (15 quantile bins) has a minimum at a small ε.
"""

from __future__ import annotations

import jax
import matplotlib
import numpy as np
import optax

from jreg import data, tasks
from jreg.analysis import metrics
from jreg.experiments import kit, plotting
from jreg.experiments.kit import mean_std
from jreg.nn import nets
from jreg.tasks import schedules
from jreg.util import checks

DESCRIPTION = "MNIST 1k, MLP 784-128-10, SGD: calibration (ECE, reliability) vs label smoothing ε."
CURVES = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")


def get_config(quick: bool = False) -> dict:
    """Reference setup (blog appendix): SGD, power law (0.15, 1, 5e3), 250 epochs, B=32."""
    full = {
        "seed": 0,
        "seeds": 10,
        "n_train": 1000,
        "n_test": 4000,
        "widths": (784, 128, 10),
        "lr": (0.15, 1.0, 5e3),  # lr0 / (1 + t/tau)^a written (lr0, a, tau)
        "num_epochs": 250,
        "batch_size": 32,
        "eval_every": 25,
        "epsilons": (0.0, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.05),  # fine: issue 13, item 5
        "num_bins": 15,
        "binning": "quantile",
        "wrong_conf_level": 0.8,
        "bootstrap": 2000,  # resamples of the seeds for the arg-min interval
        "compare_epsilons": (0.01, 0.015),  # paired ECE difference (this run vs the blog)
    }
    quick_sizes = {"seeds": 5, "n_train": 300, "n_test": 1000, "num_epochs": 60, "eval_every": 20}
    quick_sizes["epsilons"] = (0.0, 0.01, 0.015, 0.03, 0.1)
    return kit.sized(quick, full, quick_overrides=quick_sizes)


def _calibration(probs: np.ndarray, labels: np.ndarray, config: dict) -> dict:
    """Calibration statistics of one model's test-set probabilities ``(N, K)``."""
    kw = {"num_bins": config["num_bins"], "binning": config["binning"]}
    curve = metrics.reliability_curve(probs, labels, **kw)
    wrong = metrics.confidence_of_wrong(probs, labels)
    level = config["wrong_conf_level"]
    return {
        "ece": float(metrics.expected_calibration_error(probs, labels, **kw)),
        "bin_confidence": np.asarray(curve.confidence),
        "bin_accuracy": np.asarray(curve.accuracy),
        "accuracy": float(metrics.accuracy(probs, labels)),
        "mean_confidence": float(probs.max(axis=-1).mean()),
        "wrong_confidences": wrong,
        "frac_wrong_above_level": float(np.mean(wrong > level)) if wrong.size else float("nan"),
    }


def _bootstrap_argmin(ece: np.ndarray, eps: np.ndarray, config: dict) -> dict:
    """Bootstrap over seeds of the ε with the lowest mean ECE, and a paired difference.

    ``ece`` (H, S) per ε and seed, ``eps`` (H,); config: ``bootstrap`` (resamples),
    ``compare_epsilons``, ``seed``. Seeds are resampled with replacement, the same resample
    for every ε (all ε share each seed's init and batch order). Returns ``argmin_interval``
    (2.5 / 97.5 % quantiles of the resamples' arg-min ε), ``argmin_freq`` (H,) and for the
    ``compare_epsilons`` the per-seed ECE difference (S,) with a 95 % interval of its mean.
    """
    h_n, s_n = ece.shape
    idx = np.random.default_rng(config["seed"]).integers(0, s_n, size=(config["bootstrap"], s_n))
    arg = np.argmin(ece[:, idx].mean(axis=-1), axis=0)  # (B,): arg-min of each resample
    a, b = (int(np.argmin(np.abs(eps - e))) for e in config["compare_epsilons"])
    diff = ece[a] - ece[b]  # (S,)
    ci = np.quantile(diff[idx].mean(axis=-1), [0.025, 0.975])
    return {
        "argmin_interval": np.quantile(eps[arg], [0.025, 0.975]),
        "argmin_freq": np.bincount(arg, minlength=h_n) / arg.size,
        "compare": {"epsilons": eps[[a, b]], "ece_difference": diff, "interval": ci},
    }


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Train every (ε, seed) pair as one sweep and measure test-set calibration.

    Numbers: ECE, accuracy, confidence, confident mistakes (H, S); reliability bins (H, S, M);
    the mistakes' confidence CDF at ε = 0 and at the lowest-ECE ε (S, G); curves (H, S, T).
    """
    key = checks.seed_key(config["seed"])
    x_tr, y_tr, x_te, y_te = data.mnist_digits(config["n_train"], config["n_test"], key=key)
    model = nets.mlp(config["widths"], activation="tanh")
    task = tasks.supervised(model, optimizer=optax.sgd(schedules.power_law(*config["lr"])))
    eps = np.asarray(config["epsilons"], np.float32)
    if eps.ndim != 1 or eps.size == 0 or 0.0 not in eps:
        raise ValueError(f"epsilons must be a 1-D list that includes 0, got {config['epsilons']}.")
    ds = tasks.split_data(x_tr, y_tr, x_te, y_te)
    res = kit.epoch_sweep(run, task, ds, config, hparams={"label_smoothing": eps})
    predict = lambda p: jax.nn.softmax(model.apply(p, {}, x_te, key=None, train=False, hp={})[0])
    probs = np.asarray(jax.jit(jax.vmap(jax.vmap(predict)))(res.state["params"]))  # (H, S, N, K)
    h_n, s_n = probs.shape[:2]
    cal = [[_calibration(probs[h, s], y_te, config) for s in range(s_n)] for h in range(h_n)]
    stack = lambda k: np.asarray([[c[k] for c in row] for row in cal])  # (H, S, ...)
    ece, acc, conf = stack("ece"), stack("accuracy"), stack("mean_confidence")
    frac_wrong = stack("frac_wrong_above_level")
    bin_conf, bin_acc = stack("bin_confidence"), stack("bin_accuracy")  # (H, S, M)
    i0 = int(np.flatnonzero(eps == 0.0)[0])
    best = int(np.argmin(ece.mean(axis=1)))
    level = config["wrong_conf_level"]
    grid = np.linspace(0.0, 1.0, 201)
    ecdf = lambda x: np.searchsorted(np.sort(x), grid, side="right") / max(x.size, 1)
    cdf = lambda h: np.asarray([ecdf(c["wrong_confidences"]) for c in cal[h]])  # (S, G)
    train_acc = res.history["train_accuracy"][:, :, -1]
    gap = conf - acc  # (H, S): > 0 means over-confident on average
    boot = _bootstrap_argmin(ece, eps, config)
    numbers = {
        "epsilon": eps,
        "bootstrap": boot,
        "ece": ece,
        "ece_mean": ece.mean(axis=1),
        "ece_std": ece.std(axis=1),
        "argmin_epsilon": round(float(eps[best]), 6),
        "argmin_index": best,
        "test_accuracy": acc,
        "test_accuracy_mean": acc.mean(axis=1),
        "train_accuracy_final": train_acc,
        "mean_confidence": conf,
        "confidence_minus_accuracy": gap,
        "frac_wrong_conf_above_level": frac_wrong,
        "wrong_conf_level": level,
        "reliability": {"bin_confidence": bin_conf, "bin_accuracy": bin_acc},
        "wrong_confidence_cdf_eps0": {"grid": grid, "cdf": cdf(i0)},
        "wrong_confidence_cdf_best": {"grid": grid, "cdf": cdf(best)},
        "history": {"step": res.history["step"][0, 0]} | {k: res.history[k] for k in CURVES},
    }
    ci = "[{:g}, {:g}]".format(*boot["argmin_interval"]) if s_n > 1 else "none (one seed)"
    numbers["headline"] = {
        **{f"ECE, ε={e:g}": mean_std(ece[h]) for h, e in enumerate(eps)},
        "ε minimizing mean ECE": round(float(eps[best]), 6),
        "arg-min ε, bootstrap 95% interval over seeds": ci,
        **{f"test acc, ε={e:g}": mean_std(acc[h]) for h, e in enumerate(eps)},
        f"errors with conf > {level}, ε=0": mean_std(frac_wrong[i0], ".3f"),
        f"errors with conf > {level}, ε={eps[best]:g}": mean_std(frac_wrong[best], ".3f"),
        "mean conf − acc, ε=0 (over-confidence)": mean_std(gap[i0]),
        "over-confident at ε=0 (all seeds)": bool(np.all(gap[i0] > 0)),
        "final train acc, ε=0": mean_std(train_acc[i0]),
    }
    numbers["notes"] = [
        f"ECE and reliability curves use {config['num_bins']} {config['binning']} bins of the "
        "test confidence; label smoothing puts 1 − ε on the label and ε/(K − 1) on every "
        "other class.",
        f"The mean test ECE is lowest at ε = {eps[best]:g} ({ece[best].mean():.4f}, vs "
        f"{ece[i0].mean():.4f} at ε = 0); at ε = 0 the mean confidence "
        f"{'exceeds' if gap[i0].mean() > 0 else 'does not exceed'} the accuracy by "
        f"{gap[i0].mean():+.4f}.",
        _compare_note(boot, s_n, config["bootstrap"]),
        f"Fraction of wrong test predictions with confidence > {level}, per ε: "
        + f"{', '.join(f'ε={e:g}: {frac_wrong[h].mean():.3f}' for h, e in enumerate(eps))}.",
    ]
    return numbers


def _compare_note(boot: dict, s_n: int, num: int) -> str:
    """Sentence on the arg-min's bootstrap interval and the paired ECE difference."""
    lo, hi = boot["argmin_interval"]
    c = boot["compare"]
    (e1, e2), d, (d_lo, d_hi) = c["epsilons"], c["ece_difference"], c["interval"]
    if s_n < 2:  # a bootstrap of one seed is that seed: no interval, no claim
        return (
            f"One seed: ECE(ε={e1:g}) − ECE(ε={e2:g}) = {d.mean():+.4f} on that seed; no "
            "interval over seeds and no claim of a difference (run with --seeds 2 or more)."
        )
    return (
        f"Resampling the {s_n} seeds {num} times, the ε of lowest mean ECE lies in "
        f"[{lo:g}, {hi:g}] (95 %). ECE(ε={e1:g}) − ECE(ε={e2:g}) per seed: "
        f"{d.mean():+.4f} ± {d.std():.4f}, 95 % bootstrap interval of the mean "
        f"[{d_lo:+.4f}, {d_hi:+.4f}]: "
        + ("a tie (the interval contains 0)." if d_lo <= 0 <= d_hi else "a measured difference.")
    )


def figure(numbers: dict, config: dict):
    """CDF of wrong predictions' confidence, reliability curves, ECE and accuracy vs ε."""
    eps, rel = np.asarray(numbers["epsilon"]), numbers["reliability"]
    ece, acc, conf = (np.asarray(numbers[k]) for k in ("ece", "test_accuracy", "mean_confidence"))
    bin_conf, bin_acc = np.asarray(rel["bin_confidence"]), np.asarray(rel["bin_accuracy"])
    frac0 = np.asarray(numbers["frac_wrong_conf_above_level"])[int(np.argmin(np.abs(eps)))].mean()
    best, level = numbers["argmin_index"], numbers["wrong_conf_level"]
    h_n, s_n = ece.shape
    bins = f"{config['num_bins']} {config['binning']} bins"
    fig, (ax_cdf, ax_rel, ax_ece, ax_acc) = kit.panels(4, ncols=2, size=(5.0, 4.0))

    def dress(ax, ylabel, title, fontsize=8, **legend):
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=fontsize, **legend)

    cdf0, cdf_best = numbers["wrong_confidence_cdf_eps0"], numbers["wrong_confidence_cdf_best"]
    grid = np.asarray(cdf0["grid"])
    plotting.band(ax_cdf, grid, cdf0["cdf"], color="C3", label="ε = 0")
    if eps[best] != 0:
        label = f"ε = {eps[best]:g} (lowest ECE)"
        plotting.band(ax_cdf, grid, cdf_best["cdf"], color="C0", lw=1.0, label=label)
    ax_cdf.axvline(level, color="grey", ls="--", lw=0.8)
    ax_cdf.axhline(1 - frac0, color="grey", ls=":", lw=0.8)
    text = f"ε = 0: {frac0:.0%} of errors\nhave confidence > {level}"
    arrow = {"arrowstyle": "->", "color": "grey"}
    ax_cdf.annotate(text, xy=(level, 1 - frac0), xytext=(0.05, 0.6), fontsize=8, arrowprops=arrow)
    ax_cdf.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="confidence max_k p_k")
    title = "CDF of confidence on wrong test predictions"
    dress(ax_cdf, "fraction of wrong test predictions ≤ x", title, loc="upper left")

    colors = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.9, h_n))
    for h in range(h_n):
        kw = {"color": colors[h], "marker": ".", "ms": 3, "lw": 1.0, "label": f"ε = {eps[h]:g}"}
        plotting.band(ax_rel, bin_conf[h].mean(axis=0), bin_acc[h], **kw)
    lo = max(0.0, np.floor(min(bin_conf.mean(axis=1).min(), bin_acc.mean(axis=1).min()) * 10) / 10)
    ax_rel.plot([lo, 1], [lo, 1], color="grey", ls="--", lw=0.8, label="perfect calibration")
    ax_rel.set(xlim=(lo, 1.0), ylim=(lo, 1.02), xlabel=f"mean confidence ({bins})")
    title = "reliability: below diagonal = over-confident"
    dress(ax_rel, "mean accuracy in bin", title, fontsize=7, loc="lower right", ncol=2)

    plotting.band(ax_ece, eps, ece.T, color="C0", marker="o", ms=3, label="test ECE")
    ax_ece.axvline(eps[best], color="grey", ls="--", lw=0.8, label=f"minimum at ε = {eps[best]:g}")
    lo, hi = numbers["bootstrap"]["argmin_interval"]
    ax_ece.axvspan(lo, hi, color="grey", alpha=0.15, label="arg-min: 95% bootstrap over seeds")
    dress(ax_ece, f"ECE ({bins})", "expected calibration error")
    plotting.band(ax_acc, eps, acc.T, color="C2", marker="o", ms=3, label="test accuracy")
    plotting.band(ax_acc, eps, conf.T, color="C1", marker="s", ms=3, label="mean test confidence")
    dress(ax_acc, "test accuracy / mean confidence", "accuracy vs confidence")
    for ax in (ax_ece, ax_acc):
        ax.set_xscale("symlog", linthresh=0.01)
        ax.set_xlim(0, eps.max() * 1.1)
        ax.set_xlabel("label smoothing ε (symlog)")
    fig.suptitle(
        f"MNIST {config['n_train']} train / {config['n_test']} test, MLP 784-128-10 tanh, SGD, "
        f"{config['num_epochs']} epochs; mean ± std over {s_n} seeds",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
