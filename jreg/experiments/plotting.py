"""Small matplotlib helpers shared by the experiments (mean ± std bands, boundaries)."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure


def band(ax, x, ys, *, label=None, color=None, axis=0, **kw):
    """Plot the mean of ``ys`` over ``axis`` (seeds) with a ±1 std shaded band."""
    ys = np.asarray(ys, dtype=np.float64)
    mean, std = ys.mean(axis=axis), ys.std(axis=axis)
    (line,) = ax.plot(x, mean, label=label, color=color, **kw)
    ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
    return line


def boundary(ax, xx, yy, p1, x, y, *, flipped=None, title=None):
    """Probability contours of a 2-D binary classifier with the training points."""
    cs = ax.contourf(xx, yy, p1, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.75)
    ax.contour(xx, yy, p1, levels=[0.5], colors="k", linewidths=1.0)
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap="RdBu_r", s=8, edgecolors="k", linewidths=0.3)
    if flipped is not None and np.any(flipped):
        ax.scatter(
            x[flipped, 0],
            x[flipped, 1],
            s=40,
            facecolors="none",
            edgecolors="gold",
            linewidths=1.0,
            label="flipped label",
        )
    if title:
        ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return cs


_FIGURE_KWARGS = ("layout", "dpi", "facecolor", "constrained_layout", "tight_layout")


def subplots(nrows=1, ncols=1, *, figsize, **kw):
    """``plt.subplots`` outside pyplot: a plain ``matplotlib.figure.Figure`` and its axes.

    No backend is chosen and no pyplot state is touched (a notebook keeps its own
    backend); save the figure with ``fig.savefig``. Figure-level keywords (``layout``,
    ``dpi``, ...) go to the figure, the rest to ``Figure.subplots``.
    """
    fig = Figure(figsize=figsize, **{k: kw.pop(k) for k in _FIGURE_KWARGS if k in kw})
    return fig, fig.subplots(nrows, ncols, **kw)


def figure(nrows=1, ncols=1, *, size=(4.0, 3.2), squeeze=False, **kw):
    """:func:`subplots` with a per-panel ``size`` and a 2-D axes array by default."""
    figsize = (size[0] * ncols, size[1] * nrows)
    return subplots(nrows, ncols, figsize=figsize, squeeze=squeeze, **kw)


cmap = matplotlib.colormaps.get_cmap
