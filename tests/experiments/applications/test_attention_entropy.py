"""attention_entropy at quick size: at the high rate the baseline's entropy collapses and its
loss spikes; at the safe rate it learns without either; QK-layernorm bounds the logits."""

import io

import numpy as np
import pytest

from jreg.experiments.applications import attention_entropy as exp


def test_events_find_spikes_and_collapse():
    loss = np.array([[3.0, 2.0, 1.0, 3.5, 1.0]])  # spike at step 3 (3.5 > 1.5 × 1.0)
    ent = np.array([[[1.0], [0.9], [0.4], [0.3], [0.3]]])  # below 0.5 × 1.0 from step 2
    acc = np.full((1, 5), 0.9)
    ev = exp.events(loss, ent, acc, {**exp.get_config(quick=True), "final_window": 2})
    assert ev["spike_step"][0] == 3 and ev["collapse_step"][0] == 2 and not ev["failed"][0]


@pytest.mark.standard_promotion  # optax adam
def test_collapse_and_spikes_at_high_rate():
    config = exp.get_config(quick=True)
    n = exp.compute(config)
    exp.figure(dict(n), config).savefig(io.BytesIO(), format="png")
    base, qk = 0, n["arms"].index("QK-layernorm")
    assert n["final_accuracy"][base, 0].min() > 0.9  # the safe rate learns the task
    assert (n["spike_step"][base, 0] < 0).all()  # without spikes
    assert (n["spike_step"][base, -1] >= 0).all()  # the high rate spikes in every seed
    assert (n["min_entropy"][base, -1] < 0.1 * n["min_entropy"][base, 0]).all()  # collapse
    logit = n["curves"]["max_logit"]
    assert logit[qk, -1].max() < 0.01 * logit[base, -1].max()  # QK-layernorm bounds logits
    assert np.isfinite(n["curves"]["loss"]).all() and len(n["notes"]) == len(n["arms"]) + 3
