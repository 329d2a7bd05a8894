import io
import json

import numpy as np

from jreg.experiments.applications import batch_size
from jreg.experiments.runner import to_json


def test_batch_size_quick():
    config = batch_size.get_config(quick=True)
    num = batch_size.compute(config)
    batch_size.figure(dict(num), config).savefig(io.BytesIO(), format="png")
    json.dumps(to_json(num))
    small, large = (str(b) for b in config["batch_sizes"])
    for arm, per in num["arms"].items():
        for b, run in per.items():
            # Every run is read at the first epoch whose training loss is below the target.
            assert np.all(run["reached"]), (arm, b)
            assert np.all(run["train_loss"] <= config["target_loss"])
            assert np.all(run["sharpness"] > 0)
        eta = {b: per[b]["learning_rate"] for b in per}
        assert eta[small] == config["learning_rate"]
    fixed, scaled = num["arms"]["fixed η"], num["arms"]["fixed η/B"]
    assert fixed[large]["learning_rate"] == fixed[small]["learning_rate"]
    assert np.isclose(scaled[large]["noise_scale"], scaled[small]["noise_scale"])
    # At a fixed η a large batch takes fewer, less noisy steps per epoch: more epochs to the
    # same training loss than the small batch, on every seed.
    assert np.all(fixed[large]["epochs"] > fixed[small]["epochs"])
    ratio = int(large) // int(small)
    assert np.all(fixed[large]["steps"] < ratio * fixed[small]["steps"])
    assert num["verdict"] in ("agrees", "better", "worse")


def test_trend_reads_as_a_sentence_about_b():
    assert batch_size._trend([2.1, 4.7, 9.5]) + " B" == "rises with B"
    assert batch_size._trend([0.66, 0.64, 0.61]) + " B" == "falls with B"
    assert batch_size._trend([2.1, 2.2, 1.8]) + " B" == "is not monotone in B"
