"""attention_entropy at quick size: entropy collapses with the learning rate; fixes keep it up."""

import io

import numpy as np
import pytest

from jreg.experiments.applications import attention_entropy as exp


@pytest.mark.standard_promotion  # optax adam
def test_entropy_collapse_and_fixes():
    n = exp.compute(exp.get_config(quick=True))
    exp.figure(dict(n), exp.get_config(quick=True)).savefig(io.BytesIO(), format="png")
    ent, logit = n["mean_attention_entropy"], n["max_attention_logit"]  # (arm, lr, seed)
    base, strong = 0, n["arms"].index("entropy λ=0.3")
    qk, sr = n["arms"].index("QK-layernorm"), n["arms"].index("σReparam")
    assert ent[base, -1].mean() < ent[base, 0].mean() - 0.3  # baseline collapses at high lr
    assert ent[strong, -1].mean() > ent[base, -1].mean() + 0.5  # the regularizer keeps it up
    assert logit[qk, -1].mean() < 0.1 * logit[base, -1].mean()  # QK-layernorm bounds logits
    assert logit[sr, -1].mean() < 0.1 * logit[base, -1].mean()  # and so does σReparam
    assert np.isfinite(n["final_accuracy"]).all() and len(n["notes"]) == len(n["arms"]) + 3
