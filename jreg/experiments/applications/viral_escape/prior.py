"""The surface prior of :mod:`.viral_escape` at a swept quality, and what it buys.

A prior of quality ``q`` keeps the true surface label of ``round(q · L)`` sites chosen at
random and shuffles the labels of the other sites among themselves (so every prior
marks ``num_surface`` sites): ``q = 0`` is a random labelling, independent of the truth
(uninformative), ``q = 1`` the true labels (the oracle). :func:`jreg.data.dms_escape`
draws the hotspots among the surface sites, so the oracle prior's favoured sites hold
every hotspot BY CONSTRUCTION: its AUROC gain is an upper bound, not evidence.
"""

from __future__ import annotations

import numpy as np

from jreg.experiments import kit
from jreg.experiments.kit import mean_std


def prior_labels(surface: np.ndarray, qualities, seed: int) -> np.ndarray:
    """``(Q, L)`` bool: the prior's surface labels at each quality (nested kept sets)."""
    rng = np.random.default_rng([seed, 20])
    order = rng.permutation(surface.size)  # sites kept first; larger q keeps a superset
    out = np.empty((len(qualities), surface.size), bool)
    for i, q in enumerate(qualities):
        rest = order[round(q * surface.size) :]
        out[i] = surface
        out[i, rest] = surface[rng.permutation(rest)]
    return out


def label_stats(labels: np.ndarray, draws) -> dict:
    """Per (seed, quality): the fraction of sites labelled right, of hotspots favoured."""
    hot = np.stack([g["hotspot"] for g in draws])[:, None]  # (S, 1, L)
    surface = np.stack([g["surface"] for g in draws])[:, None]
    return {
        "prior_agreement": (labels == surface).mean(-1),
        "prior_hotspot_recall": (labels & hot).sum(-1) / hot.sum(-1),
    }


def summarize(num: dict, config: dict) -> tuple[list[str], dict]:
    """Notes and headline entries of the quality sweep (axes: n, seed, quality, fit)."""
    qs, ns, d = np.asarray(num["prior_quality"]), num["train_sizes"], num["num_features"]
    m = {name: k for k, name in enumerate(num["methods"])}
    gain = num["prior_auroc"] - num["auroc"][:, :, None, [m["ridge"], m["lasso"]]]
    small = ns <= d / 5
    g = gain[small].mean((0, 1))  # (Q, 2): mean over small n and seeds
    agree, hot = num["prior_agreement"].mean(0), num["prior_hotspot_recall"].mean(0)
    notes, headline = [], {}
    for k, base in enumerate(("ridge", "lasso")):
        above = [f"{q:g}" for q, v in zip(qs, g[:, k], strict=True) if v > 0]
        notes.append(
            f"Surface prior on {base}, for n ≤ d/5: site-AUROC gain over plain {base} by prior "
            "quality q (fraction of sites whose label is kept; "
            + ", ".join(
                f"q={q:g}: {v:+.3f} (labels right {a:.2f}, hotspots favoured {h:.2f})"
                for q, v, a, h in zip(qs, g[:, k], agree, hot, strict=True)
            )
            + f"); the gain is positive at q ∈ {{{', '.join(above) or 'none'}}}."
        )
        for i, q in enumerate(qs):
            headline[f"n≤d/5: AUROC gain of weighted {base}, prior q={q:g}"] = mean_std(
                gain[small][:, :, i, k], ".3f"
            )
    oracle = qs == 1.0
    if oracle.any():
        notes.append(
            f"At q = 1 (oracle) the favoured sites hold {hot[oracle][0]:.0%} of the hotspots "
            "by construction (dms_escape draws hotspots among the surface sites), so the "
            f"oracle gains ({g[oracle][0, 0]:+.3f} ridge, {g[oracle][0, 1]:+.3f} lasso) "
            "hold by construction; "
            f"at q = {qs[0]:g} the prior is a random labelling ({hot[0]:.0%} of hotspots "
            f"favoured, labels right {agree[0]:.2f}) and gains {g[0, 0]:+.3f} / {g[0, 1]:+.3f}."
        )
    return notes, headline


def panel(ax, num: dict) -> None:
    """Site-AUROC gain of the weighted fits over the plain ones vs prior quality (n ≤ d/5)."""
    qs, ns = np.asarray(num["prior_quality"]), np.asarray(num["train_sizes"])
    small, m = ns <= num["num_features"] / 5, {k: i for i, k in enumerate(num["methods"])}
    for k, base in enumerate(("ridge", "lasso")):
        plain = np.asarray(num["auroc"])[small][:, :, m[base]]  # (n, S)
        gain = np.asarray(num["prior_auroc"])[small][..., k] - plain[..., None]
        kit.band(ax, qs, gain.reshape(-1, len(qs)).T, axis=1, label=f"weighted {base}")
    ax.axhline(0, color="gray", lw=0.6)
    ax.set(xlabel="prior quality q (0: random labels, 1: oracle)", ylabel="AUROC gain, n ≤ d/5")
    ax.legend(fontsize=7)
