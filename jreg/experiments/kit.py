"""Small helpers shared by the experiment modules (no I/O, no matplotlib, no registry).

The runner (:mod:`jreg.experiments.runner`) writes files; experiments import only this.
"""

from __future__ import annotations

import numpy as np


def mean_std(x, fmt: str = ".4f", std_fmt: str | None = None) -> str:
    """``"mean ± std"`` over every entry of ``x`` (e.g. seeds), for headline tables.

    Args:
      x: array-like of any shape.
      fmt: format spec of the mean (and of the std unless ``std_fmt`` is given).
      std_fmt: format spec of the standard deviation.
    """
    x = np.asarray(x, np.float64)
    if x.size == 1:  # one seed: no spread to show
        return f"{x.mean():{fmt}}"
    return f"{x.mean():{fmt}} ± {x.std():{std_fmt or fmt}}"
