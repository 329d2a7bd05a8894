"""The experiment kit: what every experiment module needs besides its own idea.

An experiment module is ``get_config(quick) -> dict``, ``compute(config, run) -> dict``
and ``figure(numbers, config) -> Figure`` (see :mod:`jreg.experiments`). This module
holds the pieces they share, with no file I/O and no registry:

- :func:`sized`: a config with its ``--quick`` overrides, written once.
- :class:`Run`: what the runner hands ``compute`` — progress bars and where sweeps
  checkpoint (an explicit argument; the n-th sweep of a run gets its own subfolder, so a
  resumed run finds each sweep's checkpoints again) — and :meth:`Run.sweep`, a sweep
  counted in epochs whose history comes back as NumPy.
- :func:`mean_std`, :func:`bootstrap_ci`: summaries over seeds.
- :func:`verdict`: ours against a published number, with a stated tolerance.
- :func:`panels`, :func:`seeds_errorbar`, :data:`band`: figure panels.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from jreg.core import train
from jreg.experiments import plotting

band = plotting.band


def sized(quick: bool, full: Mapping[str, Any], *, quick_overrides: Mapping[str, Any]) -> dict:
    """The full-size (reference) config, or it updated with the ``--quick`` sizes.

    Args:
      quick: tiny sizes for tests and smoke runs.
      full: the reference setup.
      quick_overrides: the entries that differ at quick size (each must be in ``full``).
    """
    unknown = set(quick_overrides) - set(full)
    if unknown:
        raise ValueError(f"quick overrides name unknown config keys: {sorted(unknown)}.")
    return {**full, **quick_overrides} if quick else dict(full)


def to_numpy(tree):
    """Every array leaf of ``tree`` as a NumPy array (PRNG key arrays are left as they are)."""

    def leaf(x):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return x
        return np.asarray(x)

    return jax.tree.map(leaf, tree)


@dataclasses.dataclass(frozen=True)
class Run:
    """How an experiment's sweeps run: progress bars and checkpoints (given by the runner).

    Attributes:
      progress: show a progress bar per sweep.
      checkpoint_dir: parent folder of the sweeps' checkpoints (None: no checkpoints).
        The n-th sweep of ``compute`` checkpoints in ``<n>-<task name>-<hash of its
        configs>``; rerunning the same ``compute`` with the same folder resumes every
        sweep from its latest checkpoint and skips finished ones.
      checkpoint_every: segments between checkpoints.
    """

    progress: bool = False
    checkpoint_dir: str | None = None
    checkpoint_every: int = 5
    _count: list = dataclasses.field(default_factory=lambda: [0], repr=False, compare=False)

    def folder(self, name: str, *parts: Any) -> str | None:
        """The next sweep's checkpoint folder (None without ``checkpoint_dir``)."""
        if self.checkpoint_dir is None:
            return None
        text = json.dumps([name, *parts], default=lambda x: np.asarray(x).tolist())
        digest = hashlib.sha1(text.encode()).hexdigest()[:12]
        n, self._count[0] = self._count[0], self._count[0] + 1
        return os.path.join(self.checkpoint_dir, f"{n:03d}-{name}-{digest}")

    def sweep(
        self,
        task,
        data,
        *,
        stream,
        seeds,
        epochs: int | None = None,
        eval_epochs: int | None = None,
        num_steps: int | None = None,
        eval_every: int | None = None,
        hparams: Mapping[str, Any] | None = None,
        sweeper: Callable = train.sweep,
        **kwargs,
    ) -> train.Result:
        """:func:`jreg.core.train.sweep` (or ``sweeper``) with this run's bar and checkpoints.

        Args:
          task, data, stream, seeds, hparams, kwargs: as for :func:`jreg.core.train.sweep`.
          epochs, eval_epochs: length and evaluation period in epochs of ``stream``
            (``stream.block_size(data)`` steps each); or give ``num_steps``/``eval_every``.
          sweeper: :func:`jreg.core.train.sweep` or a layer above it with the same
            arguments (e.g. :func:`jreg.tasks.widths.sweep_buckets`).

        Returns:
          The :class:`jreg.core.train.Result` with ``history`` as NumPy arrays, shape
          ``(H, S, T)``; with ``epochs``, ``history["epoch"]`` is ``step`` in epochs.
        """
        spe = stream.block_size(data) if epochs is not None else 1
        if epochs is not None:
            if num_steps is not None or eval_every is not None or eval_epochs is None:
                raise ValueError("give epochs and eval_epochs, or num_steps and eval_every.")
            num_steps, eval_every = epochs * spe, eval_epochs * spe
        hp = {k: np.asarray(v) for k, v in (hparams or {}).items()}
        folder = self.folder(
            getattr(task, "name", type(task).__name__), stream.name, hp,
            np.asarray(seeds), num_steps, eval_every,
        )  # fmt: skip
        res = sweeper(
            task, data, stream=stream, seeds=seeds, num_steps=num_steps, eval_every=eval_every,
            hparams=hparams, progress=self.progress, checkpoint_dir=folder,
            checkpoint_every=self.checkpoint_every, **kwargs,
        )  # fmt: skip
        history = to_numpy(res.history)
        if epochs is not None:
            history = {**history, "epoch": history["step"] // spe}
        return dataclasses.replace(res, history=history)


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


def bootstrap_ci(
    x, *, stat: Callable = np.mean, num: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` over the first axis of ``x`` (seeds).

    Args:
      x: array ``(S, ...)``; rows are resampled with replacement.
      stat: ``(S', ...) -> scalar`` statistic of a resample (default: the mean).
      num: resamples.
      level: coverage of the interval.
      seed: NumPy generator seed (reproducible intervals).
    """
    x = np.asarray(x, np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.shape[0], size=(num, x.shape[0]))
    vals = np.array([stat(x[i]) for i in idx])
    lo, hi = np.quantile(vals, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def verdict(ours: float, theirs: float, *, tol: float, higher_is_better: bool = True) -> str:
    """Compare our number with a published one: ``"agrees"`` within ``tol``, else the side.

    Returns ``"agrees"`` when ``|ours - theirs| <= tol``, otherwise ``"better"`` or
    ``"worse"`` (in the direction of ``higher_is_better``) — computed, never written.
    """
    if abs(ours - theirs) <= tol:
        return "agrees"
    return "better" if (ours > theirs) == higher_is_better else "worse"


def panels(n: int, *, ncols: int | None = None, size=(4.2, 3.3), **kw):
    """A figure of ``n`` panels in rows of ``ncols`` and the flat list of its axes.

    Unused cells of the grid are hidden. Figures are plain ``matplotlib.figure.Figure``
    objects (no pyplot state, no backend chosen).
    """
    ncols = ncols or n
    nrows = -(-n // ncols)
    fig, axes = plotting.figure(nrows, ncols, size=size, **kw)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def seeds_errorbar(ax, x, values, *, label=None, dots: bool = True, **kw):
    """Mean ± std over seeds of ``values`` ``(len(x), S)`` as error bars, seeds as dots."""
    v = np.asarray(values, np.float64)
    line = ax.errorbar(x, v.mean(1), yerr=v.std(1), marker="o", capsize=4, label=label, **kw)
    if dots:
        for s in range(v.shape[1]):
            ax.plot(x, v[:, s], ".", color="gray", alpha=0.5)
    return line


#: The run of a direct ``compute(config)`` call (tests, notebooks): no bar, no checkpoints.
QUIET = Run()


# --- added for classic


def epoch_sweep(run: Run, task, data, config: Mapping[str, Any], **kwargs) -> train.Result:
    """``run.sweep`` as most experiments call it, sized by the config's usual keys.

    Minibatches of ``config["batch_size"]`` in epochs (:func:`jreg.core.streams.epochs`),
    seeds ``config["seeds"]``, ``config["num_epochs"]`` epochs, an evaluation every
    ``config["eval_every"]`` epochs; ``kwargs`` (e.g. ``hparams``) go to :meth:`Run.sweep`.
    """
    from jreg.core import streams

    return run.sweep(
        task, data, stream=streams.epochs(config["batch_size"]), seeds=config["seeds"],
        epochs=config["num_epochs"], eval_epochs=config["eval_every"], **kwargs,
    )  # fmt: skip
