"""Run an experiment and write ``<out>/<name>.png``, ``<name>.json`` and ``report.md``."""

from __future__ import annotations

import json
import os
import platform
import time
from typing import Any

import jax
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from jreg import experiments  # noqa: E402


def to_json(x):
    """Convert numpy/jax containers to plain JSON types."""
    if isinstance(x, dict):
        return {str(k): to_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_json(v) for v in x]
    if isinstance(x, (jax.Array, np.ndarray, np.generic)):
        arr = np.asarray(x)
        return arr.tolist() if arr.ndim else arr.item()
    if isinstance(x, float) and not np.isfinite(x):
        return str(x)
    return x


def mean_std(x, fmt: str = ".4f", std_fmt: str | None = None) -> str:
    """``"mean ± std"`` over every entry of ``x`` (e.g. seeds), for headline tables.

    Args:
      x: array-like of any shape.
      fmt: format spec of the mean (and of the std unless ``std_fmt`` is given).
      std_fmt: format spec of the standard deviation.
    """
    x = np.asarray(x, np.float64)
    return f"{x.mean():{fmt}} ± {x.std():{std_fmt or fmt}}"


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    return str(v)


def run_experiment(
    name: str,
    *,
    quick: bool = False,
    seeds: int | None = None,
    out: str = "results",
    progress: bool = True,
    overrides: dict | None = None,
) -> dict:
    """Run one experiment by name and write its figure, JSON and report section.

    Args:
      name: one of :func:`jreg.experiments.available`.
      quick: tiny sizes for smoke tests (seconds), else the reference setup.
      seeds: number of seeds (default from the config, >= 5 at full size).
      out: output folder (created).
      progress: show progress bars.
      overrides: config entries to replace (tests use it to shrink further).

    Returns:
      The JSON record that was written (config, numbers, headline, wall time, ...).
    """
    module = experiments.get(name)
    config = dict(module.get_config(quick=quick))
    if seeds is not None:
        if not isinstance(seeds, int) or seeds < 1:
            raise ValueError(f"--seeds must be a positive integer, got {seeds!r}.")
        config["seeds"] = seeds
    config.update(overrides or {})
    os.makedirs(out, exist_ok=True)
    start = time.perf_counter()
    numbers = module.compute(config, progress=progress)
    wall = time.perf_counter() - start
    headline = numbers.pop("headline")
    notes = numbers.pop("notes", [])
    fig = module.figure(numbers, config)
    png = os.path.join(out, f"{name}.png")
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)
    record = {
        "name": name,
        "description": module.DESCRIPTION,
        "quick": quick,
        "config": to_json(config),
        "headline": to_json(headline),
        "numbers": to_json(numbers),
        "notes": notes,
        "wall_time_s": round(wall, 2),
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "platform": platform.platform(),
    }
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(record, f, indent=1)
    with open(os.path.join(out, "report.md"), "a") as f:
        f.write(f"## {name}{' (quick)' if quick else ''}\n\n{module.DESCRIPTION}\n\n")
        f.write(f"![{name}]({name}.png)\n\n| quantity | value |\n|---|---|\n")
        for k, v in headline.items():
            f.write(f"| {k} | {_fmt(to_json(v))} |\n")
        f.write(f"| wall time (s) | {wall:.1f} |\n\n")
        for note in notes:
            f.write(f"- {note}\n")
        f.write("\n")
    return record
