import json

import matplotlib.pyplot as plt
import numpy as np

from jreg.experiments.classic import weight_decay
from jreg.experiments.runner import to_json

TINY = {
    "num_epochs": 60,
    "eval_every": 30,
    "seeds": 2,
    "n_test": 300,
    "grid_resolution": 30,
    "lambda2": [0.0, 0.01, 0.02],
    "lambda1": [0.0, 0.002, 0.004],
}


def test_weight_decay_quick():
    config = weight_decay.get_config(quick=True) | TINY
    n = weight_decay.compute(config)
    for arm in n["per_seed"].values():
        for values in arm.values():
            assert np.all(np.isfinite(np.asarray(values, dtype=float)))
    mean = n["mean"]
    l2, l1, prox = mean["L2"], mean["L1 (loss)"], mean["L1 (prox)"]
    # The proximal step produces exact zeros; the L2 gradient and the L1 subgradient do not
    # (the subgradient leaves weights hopping around 0 by about lr * λ₁).
    assert prox["zero_frac_all"][1] > 0.3
    assert prox["zero_frac_all"][1] > 20 * max(l2["zero_frac_all"][1], l1["zero_frac_all"][1])
    assert l1["zero_frac_all"][1] < 0.05
    # Both L1 variants drive most weights below 1e-3; L2 only shrinks them.
    assert min(l1["sparsity_all"][1], prox["sparsity_all"][1]) > 3 * l2["sparsity_all"][1]
    # L2 shrinks the weight norm: the strongest λ₂ has a smaller norm than λ₂ = 0.
    assert l2["norm"][-1] < l2["norm"][1] < l2["norm"][0]
    # The λ = 0 model is shared by the three arms.
    assert l2["test_accuracy"][0] == l1["test_accuracy"][0] == prox["test_accuracy"][0]
    json.dumps(to_json(n))
    fig = weight_decay.figure(n, config)  # smoke: draws from the numbers alone
    assert len(fig.axes) > 9
    plt.close(fig)
