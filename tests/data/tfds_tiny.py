"""A tiny TFDS builder for offline tests of :func:`jreg.data.tfds_numpy` (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

N_TRAIN, N_TEST = 6, 4


def tiny_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The exact images (n, 4, 4) uint8 and labels (n,) the builder writes for ``split``."""
    n, seed = (N_TRAIN, 0) if split == "train" else (N_TEST, 1)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 4, 4), dtype=np.uint8)
    labels = np.arange(n, dtype=np.int64) % 3
    return images, labels


class TinyDigits(tfds.core.GeneratorBasedBuilder):
    """4x4 uint8 'images' with 3 classes; registered under the name ``tiny_digits``."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=(4, 4), dtype=np.uint8),
                    "label": tfds.features.ClassLabel(num_classes=3),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples("train"), "test": self._generate_examples("test")}

    def _generate_examples(self, split):
        images, labels = tiny_arrays(split)
        for i in range(len(labels)):
            yield i, {"image": images[i], "label": int(labels[i])}
