import io

import numpy as np

from jreg.experiments.applications import batch_size


def test_batch_size_quick():
    config = batch_size.get_config(quick=True)
    num = batch_size.compute(config)
    batch_size.figure(dict(num), config).savefig(io.BytesIO(), format="png")
    small, large = (num["per_batch_size"][str(b)] for b in config["batch_sizes"])
    # Fixed rate and epochs: the small batch fits the training set, generalizes better and
    # sits in a flatter region (smaller top Hessian eigenvalue) than the large batch.
    assert np.all(small["train_accuracy"] >= 0.99)
    assert small["test_accuracy"].mean() > large["test_accuracy"].mean()
    assert small["sharpness"].mean() < large["sharpness"].mean()
    assert np.all(small["sharpness"] > 0)
