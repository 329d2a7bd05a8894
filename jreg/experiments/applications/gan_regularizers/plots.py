"""The figure of :mod:`..gan_regularizers`: samples, ours vs chance vs published, Dirac-GAN."""

from __future__ import annotations

import numpy as np

from jreg.experiments import plotting

from . import dirac


def _scatter(ax, x, centers, title):
    lim = np.abs(centers).max() + 1.0
    ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.4, color="C0")
    ax.scatter(centers[:, 0], centers[:, 1], s=25, marker="x", color="C3", lw=1)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xticks=[], yticks=[])
    ax.set_title(title, fontsize=7)


def _versus(ax, name, r, published, key):
    """Ours (mean ± std over seeds), chance (gray) and the published rows (open markers)."""
    scale, labels = (1, "modes captured") if key == "modes" else (100, "high-quality %")
    ours = [(a, scale * np.asarray(v, float)) for a, v in zip(r["arms"], r[key], strict=True)]
    c = r["chance"]
    ours += [
        (f"chance: {a}", scale * np.asarray(v, float))
        for a, v in zip(c["arms"], c[key], strict=True)
    ]
    ticks = [a for a, _ in ours]
    for i, (a, v) in enumerate(ours):
        color = "gray" if a.startswith("chance") else "C0"
        ax.errorbar(i, v.mean(), yerr=v.std(), fmt="o", ms=4, capsize=2, color=color)
    for t, (table, rows) in enumerate(published.items()):
        for method, (m, hq) in rows[name].items():
            ax.plot(len(ticks), m if key == "modes" else hq, "o", mfc="none", color=f"C{t + 1}")
            ticks.append(f"{table}: {method}")
    if key == "modes":
        ax.axhline(len(r["centers"]), color="k", ls=":", lw=0.8)
    ax.set_xticks(np.arange(len(ticks)), ticks, rotation=60, ha="right", fontsize=6)
    ax.set_ylabel(labels)
    ax.set_title(f"{name}: ours vs chance vs published", fontsize=7)


def figure(numbers: dict, config: dict):
    """Rows per mixture: samples per arm and chance cloud; last row: the comparisons, Dirac-GAN."""
    mix = numbers["mixtures"]
    ncols = max(len(r["arms"]) + len(r["chance"]["arms"]) for r in mix.values())
    ncols = max(ncols, 2 * len(mix) + 2)
    fig, axes = plotting.figure(len(mix) + 1, ncols, size=(2.4, 2.4))
    for row, (name, r) in enumerate(mix.items()):
        centers, c = np.asarray(r["centers"]), r["chance"]
        panels = [(a, np.asarray(r["samples"])[i], r["modes"][i], r["high_quality"][i])
                  for i, a in enumerate(r["arms"])]  # fmt: skip
        panels += [(f"chance: {a}", np.asarray(c["samples"])[i], c["modes"][i],
                    c["high_quality"][i]) for i, a in enumerate(c["arms"])]  # fmt: skip
        for ax, (arm, x, m, hq) in zip(axes[row], panels, strict=False):
            title = f"{name}: {arm}\n{np.mean(m):.1f}/{len(centers)} modes, "
            _scatter(ax, x, centers, title + f"{100 * np.mean(hq):.1f}% HQ")
        for ax in axes[row, len(panels) :]:
            ax.axis("off")
        for k, key in enumerate(("modes", "high_quality")):
            _versus(axes[-1, 2 * row + k], name, r, numbers["published"], key)
    dirac.draw(axes[-1, 2 * len(mix)], axes[-1, 2 * len(mix) + 1], numbers["dirac"])
    for ax in axes[-1, 2 * len(mix) + 2 :]:
        ax.axis("off")
    fig.suptitle(
        f"GANs on 2-D mixtures, MLP {config['depth']}×{config['hidden']} ReLU, batch "
        f"{config['batch_size']}, {config['num_steps']} generator steps; mean ± std over "
        f"{config['seeds']} seeds (scatter: seed 0, × = true modes; bottom: filled = ours, "
        "gray = chance clouds, open = VEEGAN / PacGAN Table 1)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig
