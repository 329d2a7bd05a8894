"""Train networks of *different widths* together: padding + unit masks, bucketed by size.

A width-``h`` MLP is embedded in a width-``W`` one (``W >= h``): hidden units ``>= h``
are multiplied by zero after the activation, so the padded network computes exactly the
small one and its padded weights receive exactly zero gradient (tested in
``tests/test_models.py``). Width then becomes an ordinary array hyperparameter and
:func:`jreg.train.sweep` can ``vmap`` over it. Padding everything to the largest width
would multiply the work (20 geometric widths from 2 to 300 padded to 300 cost ~8x the
unpadded sum), so :func:`bucket_widths` groups widths of similar size and each bucket
is padded only to its own largest member.

Label noise as a hyperparameter: :func:`pack_labels` stores clean and noisy labels in
one integer array, and the problem decodes them with ``hp["noisy"]`` so that clean and
noisy runs share one compiled program.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jreg import _checks, losses, models, train


def geometric_widths(lo: int, hi: int, num: int) -> np.ndarray:
    """``num`` distinct integer widths spaced geometrically from ``lo`` to ``hi``.

    Rounding collides at the small end (2, 2.6, 3.4, ...), so each width is at least one
    more than the previous; the top of the range stays geometric and ends at ``hi``.
    """
    _checks.check_positive_int("num", num)
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


def flip_labels(
    key: jax.Array, y, num_classes: int, fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Replace exactly ``round(fraction * N)`` labels by a uniformly drawn *different* class.

    Returns:
      ``(y_noisy (N,), flipped (N,) bool)``.
    """
    _checks.check_closed_unit_interval("fraction", fraction)
    y = np.asarray(y)
    _checks.check_labels("y", y, num_classes)
    k_idx, k_new = jax.random.split(key)
    n_flip = int(round(fraction * y.shape[0]))
    idx = np.asarray(jax.random.permutation(k_idx, y.shape[0]))[:n_flip]
    offset = np.asarray(jax.random.randint(k_new, (n_flip,), 1, num_classes))
    y_noisy = y.copy()
    y_noisy[idx] = (y[idx] + offset) % num_classes
    flipped = np.zeros(y.shape, bool)
    flipped[idx] = True
    return y_noisy.astype(np.int32), flipped


def pack_labels(y_clean, y_noisy, num_classes: int) -> np.ndarray:
    """One int array holding both label sets: ``clean + num_classes * noisy``."""
    return (np.asarray(y_clean) + num_classes * np.asarray(y_noisy)).astype(np.int32)


def unpack_labels(y_packed: jax.Array, noisy, num_classes: int) -> jax.Array:
    """Noisy labels where ``noisy`` is true (may be traced), clean ones otherwise."""
    return jnp.where(noisy > 0, y_packed // num_classes, y_packed % num_classes)


def _padding_stable_normal(key: jax.Array, rows: int, cols: int) -> jax.Array:
    """``(rows, cols)`` standard normals whose entry ``(i, j)`` depends only on (key, i, j).

    Column ``j`` is a 1-D draw with ``fold_in(key, j)``; JAX's (partitionable) threefry
    1-D draws are prefix-stable, so the top-left block of a padded matrix is the same for
    every padded size: a width trains from the same initialisation whichever bucket (and
    so whichever device count) it lands in. ``tests/test_widths.py`` pins this.
    """
    draw = lambda j: jax.random.normal(jax.random.fold_in(key, j), (rows,))
    return jax.vmap(draw)(jnp.arange(cols)).T


def padded_mlp_problem(
    *,
    in_dim: int,
    num_classes: int,
    max_width: int,
    optimizer: Callable[[dict], optax.GradientTransformation],
    num_hidden: int = 2,
    activation: str = "relu",
    init: str = "he",
) -> train.Problem:
    """MLP ``in -> h x num_hidden -> classes`` padded to ``max_width``; ``h = hp["width"]``.

    Initialisation matches an unpadded width-``h`` network: ``init`` scales use the real
    fan-in ``h`` (not ``max_width``), and padded entries start at zero. Training labels
    are decoded from packed labels with ``hp["noisy"]`` (see :func:`pack_labels`); test
    labels are always clean. ``evaluate`` reports ``train_error`` against the labels the
    model was trained on and ``test_error`` against clean test labels.

    Args:
      in_dim, num_classes: input and output sizes.
      max_width: padded hidden width W (every ``hp["width"]`` must be <= W).
      optimizer: ``hp -> GradientTransformation``.
      num_hidden: hidden layers.
      activation: hidden non-linearity.
      init: ``"he"`` or ``"lecun"`` scaling with the real fan-in.

    Returns:
      A :class:`jreg.train.Problem`.
    """
    _checks.check_positive_int("max_width", max_width)
    models.activation_fn(activation)
    gain = {"he": 2.0, "lecun": 1.0}
    _checks.check_choice("init", init, gain)
    k = num_classes

    def masks(hp):
        width = jnp.asarray(hp["width"]).astype(jnp.int32)  # float or int hparam
        m = (jnp.arange(max_width) < width).astype(jnp.float32)
        return [m] * num_hidden

    def init_fn(key, hp):
        h = jnp.asarray(hp["width"], jnp.float32)
        m = masks(hp)[0]
        sizes = [in_dim] + [max_width] * num_hidden + [k]
        fan_in = [jnp.asarray(in_dim, jnp.float32)] + [h] * num_hidden
        keys = jax.random.split(key, len(sizes) - 1)
        params = []
        for i, (kk, a, b) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True)):
            w = _padding_stable_normal(kk, a, b) * jnp.sqrt(gain[init] / fan_in[i])
            row = m if i > 0 else jnp.ones((a,))
            col = m if i < num_hidden else jnp.ones((b,))
            params.append({"w": w * row[:, None] * col[None, :], "b": jnp.zeros((b,))})
        return params

    def logits_fn(params, x, hp):
        return models.mlp_apply(params, x, activation=activation, unit_masks=masks(hp))

    def loss_fn(params, x, y, *, key, hp):
        del key
        return losses.cross_entropy(logits_fn(params, x, hp), unpack_labels(y, hp["noisy"], k))

    def evaluate(params, data, hp):
        x_tr, y_tr, x_te, y_te = data
        out = {}
        for name, x, y in (
            ("train", x_tr, unpack_labels(y_tr, hp["noisy"], k)),
            ("test", x_te, y_te % k),
        ):
            logits = logits_fn(params, x, hp)
            out[f"{name}_loss"] = losses.cross_entropy(logits, y)
            # mean of mistakes (not 1 - accuracy): exactly 0 when every example is right
            out[f"{name}_error"] = jnp.mean(jnp.argmax(logits, -1) != y)
        return out

    return train.Problem(init_fn, loss_fn, logits_fn, optimizer, evaluate=evaluate)


def width_sweep(
    widths: Sequence[int],
    data,
    *,
    seeds,
    noise_levels: Sequence[int] = (1,),
    optimizer: Callable[[dict], optax.GradientTransformation],
    num_epochs: int,
    batch_size: int,
    eval_every: int,
    num_buckets: int | None = None,
    num_hidden: int = 2,
    activation: str = "relu",
    progress: bool = True,
    strategy: str = "vmap",
) -> dict:
    """Train every (width, noise flag, seed) triple, one vmapped program per width bucket.

    Args:
      widths: hidden widths.
      data: ``(x_train, y_packed, x_test, y_test)`` with packed training labels.
      seeds: seeds (S,) or a count.
      noise_levels: values of ``hp["noisy"]`` to run (0 = clean labels, 1 = noisy).
      optimizer: ``hp -> GradientTransformation``.
      num_epochs, batch_size, eval_every: as in :func:`jreg.train.sweep`.
      num_buckets: cap on buckets (default: chosen by :func:`bucket_widths`).
      num_hidden, activation: architecture.
      progress: progress bars.
      strategy: ``"vmap"`` or ``"map"`` inside each bucket.

    Returns:
      dict with ``widths`` (P,), ``buckets`` and history arrays of shape
      ``(len(noise_levels), P, S, T)`` for every history key (``epoch``, ``step``,
      ``train_error``, ``test_error``, ``train_loss``, ``test_loss``...).
    """
    widths = np.asarray(sorted(int(w) for w in widths))
    in_dim, k = int(np.shape(data[0])[1]), int(np.max(np.asarray(data[3]))) + 1
    b = batch_size
    # Per-step work of one padded model (forward + backward ~ 3x forward FLOPs); the
    # overhead of a bucket is set to that of a width-64 model's run (compile + dispatch).
    cost = lambda w: 3 * b * (in_dim * w + (num_hidden - 1) * w * w + w * k)
    noise_levels = np.asarray(noise_levels, np.float32)
    num_seeds = seeds if isinstance(seeds, int) else len(seeds)
    buckets = bucket_widths(
        widths,
        cost=cost,
        overhead=cost(64) * 4,
        max_buckets=num_buckets,
        configs_per_width=len(noise_levels) * num_seeds,
        num_devices=jax.device_count(),
    )
    per_width: dict[int, dict] = {}
    for bucket in buckets:
        problem = padded_mlp_problem(
            in_dim=in_dim,
            num_classes=k,
            max_width=max(bucket),
            optimizer=optimizer,
            num_hidden=num_hidden,
            activation=activation,
        )
        hp = train.grid(noisy=noise_levels, width=np.asarray(bucket, np.float32))
        res = train.sweep(
            problem,
            data,
            seeds=seeds,
            hparams=hp,
            num_epochs=num_epochs,
            batch_size=batch_size,
            eval_every=eval_every,
            progress=progress,
            strategy=strategy,
        )
        hist = jax.tree.map(np.asarray, res.history)
        for j, w in enumerate(bucket):
            rows = [i * len(bucket) + j for i in range(len(noise_levels))]
            per_width[w] = {name: v[rows] for name, v in hist.items()}
    names = per_width[int(widths[0])].keys()
    stacked = {n: np.stack([per_width[int(w)][n] for w in widths], axis=1) for n in names}
    return {"widths": widths, "buckets": buckets, **stacked}
