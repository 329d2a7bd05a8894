"""Sweeps over a *size* axis: padded models, bucketed by size, through the same sweep.

A width-``h`` MLP is embedded in a width-``W`` one (``W >= h``, :func:`jreg.nn.nets.padded_mlp`):
padded units are masked to zero, so the padded network computes exactly the small one
and width becomes an ordinary swept hyperparameter. Padding everything to the largest
width would multiply the work (20 geometric widths from 2 to 300 padded to 300 cost ~8x
the unpadded sum), so a :class:`Bucketed` task family is swept in buckets of similar
sizes (:func:`bucket_widths`), each padded only to its own largest member.
:func:`sweep_buckets` (a layer above :func:`jreg.core.train.sweep`) returns the usual
:class:`jreg.core.train.Result` with leading ``(H, S)`` axes; states are zero-padded to the
largest bucket's shapes.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

import jax
import numpy as np

from jreg.core import train
from jreg.util import checks


def geometric_widths(lo: int, hi: int, num: int) -> np.ndarray:
    """``num`` distinct integer widths spaced geometrically from ``lo`` to ``hi``.

    Rounding collides at the small end (2, 2.6, 3.4, ...), so each width is at least one
    more than the previous; the top of the range stays geometric and ends at ``hi``.
    """
    checks.check_positive_int("num", num)
    if not 1 <= lo < hi or hi - lo + 1 < num:
        raise ValueError(f"need 1 <= lo < hi with at least {num} integers in [lo, hi].")
    w = np.round(np.geomspace(lo, hi, num)).astype(int)
    for i in range(1, num):
        w[i] = max(w[i], w[i - 1] + 1)
    for i in range(num - 2, -1, -1):  # push back down if the bumps overshot hi
        w[i] = min(w[i], w[i + 1] - 1)
    return w


def hidden_params(width, in_dim: int, num_classes: int, num_hidden: int = 2) -> int:
    """Parameter count of an MLP ``in -> width x num_hidden -> classes`` with biases."""
    sizes = [in_dim] + [int(width)] * num_hidden + [num_classes]
    return int(sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True)))


def bucket_widths(
    widths: Sequence[int],
    *,
    cost: Callable[[int], float],
    overhead: float = 0.0,
    max_buckets: int | None = None,
    configs_per_width: int = 1,
    num_devices: int = 1,
) -> list[list[int]]:
    """Group sorted widths into contiguous buckets minimising the padded work.

    Dynamic programming over split points: a bucket of widths ``w_i..w_j`` holds
    ``C = (j - i + 1) * configs_per_width`` models, all padded to ``w_j``, run in parallel
    over ``num_devices`` devices, so it costs ``ceil(C / num_devices) * cost(w_j) +
    overhead`` (with one device: ``C * cost(w_j) + overhead``).

    Args:
      widths: positive ints.
      cost: work of one model padded to a width (e.g. its FLOPs per step).
      overhead: fixed cost of one more bucket (compilation, per-step dispatch).
      max_buckets: optional cap on the number of buckets.
      configs_per_width: models trained per width (seeds x noise levels).
      num_devices: devices the sweep shards each bucket over.

    Returns:
      Buckets (lists of widths, ascending).
    """
    w = sorted(int(x) for x in widths)
    n = len(w)
    if n == 0 or w[0] < 1:
        raise ValueError(f"widths must be positive ints, got {widths!r}.")
    kmax = n if max_buckets is None else max(1, min(n, max_buckets))
    inf = float("inf")
    best = [[inf] * (n + 1) for _ in range(kmax + 1)]  # best[k][j]: first j widths, k buckets
    arg = [[0] * (n + 1) for _ in range(kmax + 1)]
    best[0][0] = 0.0
    for k in range(1, kmax + 1):
        for j in range(1, n + 1):
            for i in range(k - 1, j):
                rounds = -(-(j - i) * configs_per_width // num_devices)  # ceil
                c = best[k - 1][i] + rounds * cost(w[j - 1]) + overhead
                if c < best[k][j]:
                    best[k][j], arg[k][j] = c, i
    k = min(range(1, kmax + 1), key=lambda k: best[k][n])
    buckets, j = [], n
    while k > 0:
        i = arg[k][j]
        buckets.append(w[i:j])
        j, k = i, k - 1
    return buckets[::-1]


@dataclasses.dataclass(frozen=True, eq=False)
class Bucketed:
    """A family of tasks padded to a size: ``make(max_size)`` reads ``hp[key] <= max_size``.

    Attributes:
      make: ``max_size -> jreg.core.train.Task`` (e.g. a supervised task of
        :func:`jreg.nn.nets.padded_mlp` with ``max_width=max_size``).
      key: the size hyperparameter (swept; integer-valued).
      cost: work of one config padded to a size (e.g. FLOPs per step), for bucketing.
      overhead: fixed cost of one more bucket (compilation, dispatch), same units.
      max_buckets: optional cap on the number of buckets.
    """

    make: Callable[[int], train.Task]
    key: str = "width"
    cost: Callable[[int], float] = float
    overhead: float = 0.0
    max_buckets: int | None = None

    def buckets(self, sizes, *, configs_per_width: int = 1) -> list[list[int]]:
        """The buckets a sweep over ``sizes`` runs (:func:`bucket_widths`, all devices).

        Args:
          sizes: the swept sizes (any order, repeats allowed).
          configs_per_width: configs per distinct size (other hparams x seeds).
        """
        return bucket_widths(
            sorted({int(v) for v in np.asarray(sizes).reshape(-1)}),
            cost=self.cost,
            overhead=self.overhead,
            max_buckets=self.max_buckets,
            configs_per_width=configs_per_width,
            num_devices=jax.device_count(),
        )


def _pad_to(x: np.ndarray, shape: tuple, fill) -> np.ndarray:
    out = np.full(shape, fill, x.dtype)
    out[tuple(slice(0, n) for n in x.shape)] = x
    return out


def sweep_buckets(family: Bucketed, data, *, hparams, seeds, **kwargs) -> train.Result:
    """:func:`jreg.core.train.sweep` of a :class:`Bucketed` family, one sweep per bucket.

    Configs are grouped by ``hparams[family.key]`` into buckets (:func:`bucket_widths`
    with the sweep's device count); each bucket is one vmapped sweep of
    ``family.make(max size in the bucket)``. The results are put back in config order:
    histories as they are (shorter early-stopped ones NaN-padded), states zero-padded
    (exact for padded models, whose padded entries are zero). With ``checkpoint_dir``,
    bucket ``i`` checkpoints in its subfolder ``bucket-<i>``.
    """
    hparams = {k: np.asarray(v) for k, v in (hparams or {}).items()}
    if family.key not in hparams or hparams[family.key].ndim != 1:
        raise ValueError(f"a Bucketed sweep needs hparams[{family.key!r}] of shape (H,).")
    sizes = hparams[family.key]
    if np.any(sizes < 1) or np.any(sizes != np.round(sizes)):
        raise ValueError(f"hparams[{family.key!r}] must hold positive integers, got {sizes}.")
    h = sizes.size
    num_seeds = seeds if isinstance(seeds, int) else len(seeds)
    num_unique = len({int(v) for v in sizes})
    buckets = family.buckets(sizes, configs_per_width=max(1, h // num_unique) * num_seeds)
    parts = []
    folder = kwargs.pop("checkpoint_dir", None)
    for i, bucket in enumerate(buckets):
        idx = np.flatnonzero(np.isin(sizes.astype(int), bucket))
        res = train.sweep(
            family.make(max(bucket)),
            data,
            hparams={k: v[idx] for k, v in hparams.items()},
            seeds=seeds,
            checkpoint_dir=folder and os.path.join(folder, f"bucket-{i:02d}"),
            **kwargs,
        )
        parts.append((idx, jax.tree.map(np.asarray, res)))

    def assemble(*leaves, fill):
        shape = tuple(max(s) for s in zip(*(x.shape[1:] for x in leaves), strict=True))
        out = np.full((h,) + shape, fill, leaves[0].dtype)
        for (idx, _), x in zip(parts, leaves, strict=True):
            out[idx] = _pad_to(x, x.shape[:1] + shape, fill)
        return out

    results = [r for _, r in parts]
    nan = lambda *xs: assemble(*xs, fill=np.nan if xs[0].dtype.kind == "f" else -1)
    return train.Result(
        state=jax.tree.map(lambda *xs: assemble(*xs, fill=0), *[r.state for r in results]),
        best_state=jax.tree.map(
            lambda *xs: assemble(*xs, fill=0), *[r.best_state for r in results]
        ),
        history=jax.tree.map(nan, *[r.history for r in results]),
        best_step=assemble(*[r.best_step for r in results], fill=0),
        stop_step=assemble(*[r.stop_step for r in results], fill=0),
    )
