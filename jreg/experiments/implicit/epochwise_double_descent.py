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
    full = {
        "run_widths": (36, 62, 104, 177, 300),
        "eval_every": 5,
        "long_widths": (36, 62, 104, 177),
        "long_noise": (0.15, 0.20),
        "long_epochs": 4000,
        "long_eval_every": 10,
        "long_seeds": 1,
        "smooth": 5,  # evaluations in the running mean used to locate peaks / minima
    }
    small = {"run_widths": (11, 29, 128), "long_widths": (11, 29), "long_epochs": 400}
    return double_descent.get_config(quick) | kit.sized(quick, full, quick_overrides=small)


def _points(epochs: np.ndarray, **points) -> dict:
    """``<name>_epoch`` and ``<name>_error`` of every ``name=(curve, index)``."""
    out = {}
    for name, (curve, i) in points.items():
        out |= {f"{name}_epoch": int(epochs[i]), f"{name}_error": float(curve[i])}
    return out


def _first_fit(train_err: np.ndarray) -> int | None:
    """Index of the first evaluation with zero seed-mean training error (None if never)."""
    fits = np.flatnonzero(train_err.mean(0) <= 0)
    return int(fits[0]) if fits.size else None


def describe_curve(epochs: np.ndarray, test_err: np.ndarray, train_err: np.ndarray) -> dict:
    """Of the seed-mean curves (epochs (T,), errors (S, T)): the early minimum (over the first
    third of the evaluations), the peak after it, the final and best test error, and the
    first epoch with zero mean training error (None if never)."""
    mean = test_err.mean(0)
    first_min = int(np.argmin(mean[: max(1, len(mean) // 3)]))
    peak = first_min + int(np.argmax(mean[first_min:]))
    fit = _first_fit(train_err)
    return {
        **_points(epochs, early_min=(mean, first_min), peak=(mean, peak)),
        "final_error": float(mean[-1]),
        "best_error": float(mean.min()),
        "interpolates_at_epoch": None if fit is None else int(epochs[fit]),
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
    and 0.005 (5 of 1,000 test examples). Also the first epoch with zero mean training
    error (None if never), the test error there, and the training error at the end.
    ``epochs``: (T,); ``test_err``, ``train_err``: (S, T).
    """
    m = test_err.mean(0)
    r = running_mean(m, smooth)
    early = int(np.argmin(m[: max(1, len(m) // 8)]))
    peak = early + int(np.argmax(r[early:]))
    late = peak + int(np.argmin(r[peak:]))
    sigma = float(np.std((m - r)[len(m) // 2 :]))
    final = float(m[-max(1, len(m) // 10) :].mean())
    fit = _first_fit(train_err)
    return {
        **_points(epochs, early_min=(m, early), peak=(r, peak), late_min=(r, late)),
        "final_error": final,
        "fall_after_peak": float(r[peak] - r[late]),
        "fall_to_final": float(r[peak] - final),
        "fluctuation": sigma,
        "detected": bool(r[peak] - final > max(3 * sigma, 0.005)),
        "below_early_min": bool(r[late] < m[early]),
        "interpolates_at_epoch": None if fit is None else int(epochs[fit]),
        "error_at_fit": None if fit is None else float(m[fit]),
        "final_train_error": float(train_err.mean(0)[-1]),
    }


def long_runs(config: dict, *, run: kit.Run) -> dict:
    """The long run: ``long_widths`` x ``long_seeds`` at each of ``long_noise``.

    Returns ``epochs`` (T,), ``test_error`` / ``train_error`` (L, P, S, T) and per noise
    level and width the :func:`second_descent` summary.
    """
    long = {"seeds": "long_seeds", "num_epochs": "long_epochs", "eval_every": "long_eval_every"}
    cfg = config | {k: config[v] for k, v in long.items()}
    ws = np.asarray(config["long_widths"])
    data = [double_descent.prepare(config, label_noise=noise)[0] for noise in config["long_noise"]]
    runs = [double_descent.train_widths(cfg, ds, ws, noise_levels=(1,), run=run) for ds in data]
    test, train = (np.stack([r[k][0] for r in runs]) for k in ("test_error", "train_error"))
    epochs = runs[-1]["epoch"]
    summary = {
        f"{noise:.0%}": {
            int(w): second_descent(epochs, test[i, j], train[i, j], smooth=config["smooth"])
            for j, w in enumerate(ws)
        }
        for i, noise in enumerate(config["long_noise"])
    }
    return dict(widths=ws, epochs=epochs, test_error=test, train_error=train, summary=summary)


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
    ds, _ = double_descent.prepare(config)
    ws = np.asarray(config["run_widths"])
    res = double_descent.train_widths(config, ds, ws, noise_levels=(1,), run=run)
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
    fitted = lambda fit: "never all fitted." if fit is None else f"fitted from epoch {fit}."
    notes = [
        f"h={w}: test error falls to {d['early_min_error']:.3f} by epoch {d['early_min_epoch']}, "
        f"{'rises' if d['peak_error'] > d['early_min_error'] else 'does not rise'} to "
        f"{d['peak_error']:.3f} at epoch {d['peak_epoch']}, and ends at {d['final_error']:.3f} "
        f"(peak − final = {d['peak_error'] - d['final_error']:.3f}); training labels "
        + fitted(d["interpolates_at_epoch"])
        for w, d in per_width.items()
    ]
    long = long_runs(config, run=run)
    for noise, per in long["summary"].items():
        found = [w for w, d in per.items() if d["detected"]]
        headline[f"{noise} noise, {config['long_epochs']} epochs: second descent at widths"] = (
            ", ".join(map(str, found)) or "none"
        )
        notes += [_long_note(f"{noise} noise, h={w}", d) for w, d in per.items()]
    curves = dict(widths=ws, epochs=epochs, test_error=test_err, train_error=train_err)
    return curves | dict(per_width=per_width, long=long, headline=headline, notes=notes)


def _epoch_axes(ax, ylabel: str) -> None:
    """Log-scaled epoch axis, ``ylabel`` and a small legend."""
    ax.set_xscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)


def figure(numbers: dict, config: dict):
    """Test and training error vs epoch per width (mean ± std over seeds); long runs below."""
    ws, epochs = np.asarray(numbers["widths"]), np.asarray(numbers["epochs"])
    test_err, train_err = np.asarray(numbers["test_error"]), np.asarray(numbers["train_error"])
    fig, axes = kit.panels(4, ncols=2, size=(5.0, 3.6))
    cmap = plotting.cmap("viridis")
    for i, w in enumerate(ws):
        color = cmap(i / max(1, len(ws) - 1))
        kit.band(axes[0], epochs, test_err[i], label=f"h={w}", color=color)
        kit.band(axes[1], epochs, train_err[i], label=f"h={w}", color=color)
    _epoch_axes(axes[0], "test error")
    _epoch_axes(axes[1], "train error (noisy labels)")
    long = numbers["long"]
    lw, le = np.asarray(long["widths"]), np.asarray(long["epochs"])
    for ax, (noise, per), curves in zip(
        axes[2:], long["summary"].items(), np.asarray(long["test_error"]), strict=True
    ):
        for i, (w, d) in enumerate(zip(lw, per.values(), strict=True)):
            color = cmap(i / max(1, len(lw) - 1))
            ax.plot(le, curves[i].mean(0), color=color, lw=0.6, alpha=0.5)
            smooth = running_mean(curves[i].mean(0), config["smooth"])
            ax.plot(le, smooth, color=color, label=f"h={w}")
            ax.plot(d["peak_epoch"], d["peak_error"], "v", color=color)
            ax.plot(d["late_min_epoch"], d["late_min_error"], "^", color=color)
        _epoch_axes(ax, "test error")
        ax.set_title(
            f"{noise} label noise, {curves.shape[1]} seed(s), {int(le[-1])} epochs\n"
            "▼ peak, ▲ lowest after it; thick: running mean",
            fontsize=8,
        )
    noise, n = config["label_noise"], test_err.shape[1]
    fig.suptitle(f"MNIST-1D, top: {noise:.0%} label noise, mean ± std over {n} seeds", fontsize=10)
    fig.tight_layout()
    return fig
