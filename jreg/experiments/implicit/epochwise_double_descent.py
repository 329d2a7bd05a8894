"""Epoch-wise double descent: test error vs epoch for widths around and above the threshold.

Nakkiran et al., "Deep Double Descent: Where Bigger Models and More Data Hurt", ICLR 2020
(arXiv:1912.02292), Section 6: with label noise, models near and above the interpolation
threshold can show a second descent of the test error over training time.
"""

from __future__ import annotations

import numpy as np

from jreg.experiments import kit, plotting
from jreg.experiments.implicit import double_descent

DESCRIPTION = (
    "MNIST-1D with noisy labels: test error vs epoch for a few MLP widths (500 epochs at 15%), "
    "and widths 36-177 trained 4,000 epochs at 15% and 20% noise."
)

#: ``widths`` is not an MLP's layer sizes but the grid of hidden widths (checked by the runner).
FIXED_LENGTH = {"widths": "(smallest, largest, count) of the geometric width grid"}


def get_config(quick: bool = False) -> dict:
    """Same data and optimizer as ``double_descent``; dense evaluation over epochs.

    The long run (issue 13): the widths whose test error rises after the early minimum,
    trained 8x longer at two noise levels, one seed each (about 4 minutes on 2 cores).
    """
    cfg = double_descent.get_config(quick)
    cfg.update(
        {
            "run_widths": (11, 29, 128) if quick else (36, 62, 104, 177, 300),
            "eval_every": 5,
            "long_widths": (11, 29) if quick else (36, 62, 104, 177),
            "long_noise": (0.15, 0.20),
            "long_epochs": 400 if quick else 4000,
            "long_eval_every": 10,
            "long_seeds": 1,
            "smooth": 5,  # evaluations in the running mean used to locate peaks / minima
        }
    )
    return cfg


def describe_curve(epochs: np.ndarray, test_err: np.ndarray, train_err: np.ndarray) -> dict:
    """Early minimum, later peak, end and interpolation epoch of one width's curves.

    Args:
      epochs: evaluation epochs (T,).
      test_err: test error per seed (S, T); train_err: training error per seed (S, T).

    Returns:
      The early minimum (over the first third of the evaluations), the peak after it,
      the final and best mean test error, and the first epoch with zero mean training
      error (None if never).
    """
    mean = test_err.mean(0)
    first_min = int(np.argmin(mean[: max(1, len(mean) // 3)]))
    peak = first_min + int(np.argmax(mean[first_min:]))
    fits = np.flatnonzero(train_err.mean(0) <= 0)
    return {
        "early_min_epoch": int(epochs[first_min]),
        "early_min_error": float(mean[first_min]),
        "peak_epoch": int(epochs[peak]),
        "peak_error": float(mean[peak]),
        "final_error": float(mean[-1]),
        "best_error": float(mean.min()),
        "interpolates_at_epoch": int(epochs[fits[0]]) if fits.size else None,
    }


def running_mean(x: np.ndarray, k: int) -> np.ndarray:
    """Centred running mean over the last axis, window ``k`` (shrunk at the ends)."""
    x = np.asarray(x, np.float64)
    c = np.concatenate([np.zeros(x.shape[:-1] + (1,)), np.cumsum(x, -1)], -1)
    t = np.arange(x.shape[-1])
    lo, hi = np.maximum(t - k // 2, 0), np.minimum(t + k // 2 + 1, x.shape[-1])
    return (c[..., hi] - c[..., lo]) / (hi - lo)


def second_descent(
    epochs: np.ndarray, test_err: np.ndarray, train_err: np.ndarray, *, smooth: int
) -> dict:
    """Where a long run's test-error curve rises and falls again.

    On the seed-mean curve ``m`` and its running mean ``r`` (window ``smooth``): the
    early minimum of ``m`` over the first eighth of training, the peak of ``r`` after it,
    the lowest ``r`` after the peak, the final error (mean of ``m`` over the last tenth)
    and the fluctuation ``σ`` (std of ``m − r`` over the second half of training). A
    second descent is *detected* when the error stays down: peak − final exceeds ``3σ``
    (the highest of ~T/smooth window means of pure noise lies ~1.3σ above its mean)
    and 0.005 (5 of 1,000 test examples).

    Also the first epoch with zero mean training error (None if never), the test error
    there, and the training error at the end.

    Args:
      epochs: evaluation epochs (T,); test_err, train_err: (S, T).
    """
    m = test_err.mean(0)
    r = running_mean(m, smooth)
    early = int(np.argmin(m[: max(1, len(m) // 8)]))
    peak = early + int(np.argmax(r[early:]))
    late = peak + int(np.argmin(r[peak:]))
    sigma = float(np.std((m - r)[len(m) // 2 :]))
    final = float(m[-max(1, len(m) // 10) :].mean())
    fits = np.flatnonzero(train_err.mean(0) <= 0)
    return {
        "early_min_epoch": int(epochs[early]),
        "early_min_error": float(m[early]),
        "peak_epoch": int(epochs[peak]),
        "peak_error": float(r[peak]),
        "late_min_epoch": int(epochs[late]),
        "late_min_error": float(r[late]),
        "final_error": final,
        "fall_after_peak": float(r[peak] - r[late]),
        "fall_to_final": float(r[peak] - final),
        "fluctuation": sigma,
        "detected": bool(r[peak] - final > max(3 * sigma, 0.005)),
        "below_early_min": bool(r[late] < m[early]),
        "interpolates_at_epoch": int(epochs[fits[0]]) if fits.size else None,
        "error_at_fit": float(m[fits[0]]) if fits.size else None,
        "final_train_error": float(train_err.mean(0)[-1]),
    }


def long_runs(config: dict, *, progress: bool) -> dict:
    """The long run: ``long_widths`` x ``long_seeds`` at each of ``long_noise``.

    Returns ``epochs`` (T,), ``test_error`` / ``train_error`` (L, P, S, T) and per noise
    level and width the :func:`second_descent` summary.
    """
    cfg = config | {
        "seeds": config["long_seeds"],
        "num_epochs": config["long_epochs"],
        "eval_every": config["long_eval_every"],
    }
    ws = np.asarray(config["long_widths"])
    test, train = [], []
    for noise in config["long_noise"]:
        ds, _ = double_descent.prepare(config, label_noise=noise)
        res = double_descent.train_widths(cfg, ds, ws, noise_levels=(1,), progress=progress)
        test.append(res["test_error"][0])
        train.append(res["train_error"][0])
    epochs = res["epoch"]
    summary = {
        f"{noise:.0%}": {
            int(w): second_descent(epochs, test[i][j], train[i][j], smooth=config["smooth"])
            for j, w in enumerate(ws)
        }
        for i, noise in enumerate(config["long_noise"])
    }
    return {
        "widths": ws,
        "epochs": epochs,
        "test_error": np.stack(test),
        "train_error": np.stack(train),
        "summary": summary,
    }


def _long_note(label: str, d: dict) -> str:
    """One sentence from a :func:`second_descent` summary."""
    fit = d["interpolates_at_epoch"]
    if fit is None:
        tail = f"it never fits the noisy labels (train error {d['final_train_error']:.3f})"
    else:
        change = d["final_error"] - d["error_at_fit"]
        tail = (
            f"it fits the noisy labels from epoch {fit} (test error then "
            f"{d['error_at_fit']:.3f}, {change:+.3f} by the end)"
        )
    found = "detected" if d["detected"] else "not detected"
    if d["detected"]:
        found += f", {'below' if d['below_early_min'] else 'not below'} the early minimum"
    return (
        f"{label}: early minimum {d['early_min_error']:.3f} (epoch {d['early_min_epoch']}), "
        f"peak {d['peak_error']:.3f} (epoch {d['peak_epoch']}), lowest after it "
        f"{d['late_min_error']:.3f} (epoch {d['late_min_epoch']}), final {d['final_error']:.3f} "
        f"(peak − final = {d['fall_to_final']:.3f}, fluctuation σ = {d['fluctuation']:.4f}): "
        f"second descent {found}; {tail}."
    )


def compute(config: dict, run: kit.Run = kit.QUIET) -> dict:
    """Train the chosen widths on noisy labels, evaluating every few epochs.

    Returns ``epochs`` (T,), ``test_error`` / ``train_error`` of shape (P, S, T), a
    per-width summary (:func:`describe_curve`) and the long run (:func:`long_runs`).
    """
    progress = run.progress
    ds, _ = double_descent.prepare(config)
    ws = np.asarray(config["run_widths"])
    res = double_descent.train_widths(config, ds, ws, noise_levels=(1,), progress=progress)
    epochs = res["epoch"]
    test_err, train_err = res["test_error"][0], res["train_error"][0]  # (P, S, T)
    per_width = {
        int(w): describe_curve(epochs, test_err[i], train_err[i]) for i, w in enumerate(ws)
    }
    headline = {
        f"h={w}: early-min / peak / final test error": (
            f"{d['early_min_error']:.3f} (ep {d['early_min_epoch']}) / "
            f"{d['peak_error']:.3f} (ep {d['peak_epoch']}) / {d['final_error']:.3f}"
        )
        for w, d in per_width.items()
    }
    notes = [
        f"h={w}: test error falls to {d['early_min_error']:.3f} by epoch {d['early_min_epoch']}, "
        f"{'rises' if d['peak_error'] > d['early_min_error'] else 'does not rise'} to "
        f"{d['peak_error']:.3f} at epoch {d['peak_epoch']}, and ends at {d['final_error']:.3f} "
        f"(peak − final = {d['peak_error'] - d['final_error']:.3f}); training labels "
        + (
            f"fitted from epoch {d['interpolates_at_epoch']}."
            if d["interpolates_at_epoch"] is not None
            else "never all fitted."
        )
        for w, d in per_width.items()
    ]
    long = long_runs(config, progress=progress)
    for noise, per in long["summary"].items():
        found = [w for w, d in per.items() if d["detected"]]
        headline[f"{noise} noise, {config['long_epochs']} epochs: second descent at widths"] = (
            ", ".join(map(str, found)) or "none"
        )
        notes += [_long_note(f"{noise} noise, h={w}", d) for w, d in per.items()]
    return {
        "widths": ws,
        "epochs": epochs,
        "test_error": test_err,
        "train_error": train_err,
        "per_width": per_width,
        "long": long,
        "headline": headline,
        "notes": notes,
    }


def figure(numbers: dict, config: dict):
    """Test and training error vs epoch per width (mean ± std over seeds); long runs below."""
    ws, epochs = np.asarray(numbers["widths"]), np.asarray(numbers["epochs"])
    test_err, train_err = np.asarray(numbers["test_error"]), np.asarray(numbers["train_error"])
    fig, axes = plotting.figure(2, 2, size=(5.0, 3.6))
    cmap = plotting.cmap("viridis")
    for i, w in enumerate(ws):
        color = cmap(i / max(1, len(ws) - 1))
        plotting.band(axes[0][0], epochs, test_err[i], label=f"h={w}", color=color)
        plotting.band(axes[0][1], epochs, train_err[i], label=f"h={w}", color=color)
    for ax, lab in zip(axes[0], ("test error", "train error (noisy labels)"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(lab)
        ax.legend(fontsize=7)
    long = numbers["long"]
    lw, le = np.asarray(long["widths"]), np.asarray(long["epochs"])
    for ax, (noise, per), curves in zip(
        axes[1], long["summary"].items(), np.asarray(long["test_error"]), strict=True
    ):
        for i, (w, d) in enumerate(zip(lw, per.values(), strict=True)):
            color = cmap(i / max(1, len(lw) - 1))
            ax.plot(le, curves[i].mean(0), color=color, lw=0.6, alpha=0.5)
            smooth = running_mean(curves[i].mean(0), config["smooth"])
            ax.plot(le, smooth, color=color, label=f"h={w}")
            ax.plot(d["peak_epoch"], d["peak_error"], "v", color=color)
            ax.plot(d["late_min_epoch"], d["late_min_error"], "^", color=color)
        ax.set_xscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("test error")
        ax.set_title(
            f"{noise} label noise, {curves.shape[1]} seed(s), {int(le[-1])} epochs\n"
            "▼ peak, ▲ lowest after it; thick: running mean",
            fontsize=8,
        )
        ax.legend(fontsize=7)
    fig.suptitle(
        f"MNIST-1D, top: {config['label_noise']:.0%} label noise, mean ± std over "
        f"{test_err.shape[1]} seeds",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
