"""The tensorflow-datasets path: prepared TFDS datasets read without TensorFlow or network."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import numpy as np

from jreg.util.checks import (
    check_finite,
    check_positive_int,
)

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class DatasetNotPreparedError(FileNotFoundError):
    """A TFDS dataset is not prepared locally; jreg never downloads at run time."""


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
