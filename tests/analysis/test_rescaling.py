"""ReLU rescaling: the function is invariant; plain GD keeps the imbalance, decay removes it."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jreg import tasks
from jreg.analysis import rescaling
from jreg.core import streams, train
from jreg.nn import models, nets

WIDTHS = (5, 16, 16, 3)


def _apply(params, x):
    return models.mlp_apply(params, x, activation="relu")


@pytest.mark.parametrize("layer", [0, 1])
def test_rescaling_leaves_the_function_unchanged(layer):
    params = models.mlp_init(jax.random.key(0), WIDTHS)
    params = [
        {**p, "b": jax.random.normal(jax.random.key(i), p["b"].shape)} for i, p in enumerate(params)
    ]
    x = jax.random.normal(jax.random.key(1), (64, 5))
    out = _apply(params, x)
    # Powers of two commute with float rounding: bit-identical outputs.
    for c in (2.0, 0.25, 1024.0):
        np.testing.assert_array_equal(_apply(rescaling.rescale_layer(params, layer, c), x), out)
    # Other scales: equal up to float32 rounding (a few ulps of the output scale).
    eps = np.finfo(np.float32).eps
    for c in (3.0, 0.1, 37.0):
        diff = jnp.max(jnp.abs(_apply(rescaling.rescale_layer(params, layer, c), x) - out))
        assert float(diff) <= 16 * eps * float(jnp.max(jnp.abs(out)))
    # The parameters did change, and the norms moved in opposite directions.
    moved = rescaling.layer_norms(rescaling.rescale_layer(params, layer, 3.0))
    norms = rescaling.layer_norms(params)
    np.testing.assert_allclose(moved[layer], 3 * norms[layer], rtol=1e-6)
    np.testing.assert_allclose(moved[layer + 1], norms[layer + 1] / 3, rtol=1e-6)
    with pytest.raises(ValueError, match="hidden layer"):
        rescaling.rescale_layer(params, 2, 2.0)


def test_weight_decay_balances_the_layers_plain_gd_does_not():
    """Start with layer 0 scaled by 4 and layer 1 by 1/4; train by full-batch GD."""
    base = nets.mlp(WIDTHS, activation="relu", init="he")
    model = nets.Model(
        lambda key, hp: (rescaling.rescale_layer(base.init(key, hp)[0], 0, 4.0), {}), base.apply
    )

    def track(state, hp):
        p = state["params"]
        norms = rescaling.layer_norms(p)
        return {
            "imbalance": jnp.sum(rescaling.unit_imbalance(p, 0)),
            "norm_ratio": norms[0] / norms[1],
        }

    task = tasks.supervised(
        model,
        optimizer=optax.sgd(0.02),
        regularizers={"weight_decay": tasks.HALF_L2},
        track=track,
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 5)).astype(np.float32)
    y = (np.argmax(x[:, :3], axis=1)).astype(np.int32)
    res = train.sweep(
        task,
        tasks.split_data(x, y, x[:32], y[:32]),
        stream=streams.full_batch(),
        seeds=[0],
        hparams={"weight_decay": np.array([0.0, 0.05], np.float32)},
        num_steps=2000,
        eval_every=100,
        progress=False,
    )
    params0 = model.init(jax.random.fold_in(jax.random.key(0), 0), {})[0]
    start = float(jnp.sum(rescaling.unit_imbalance(params0, 0)))
    imb = np.asarray(res.history["imbalance"][:, 0])  # (2, T)
    ratio = np.asarray(res.history["norm_ratio"][:, 0])
    ratio0 = float(rescaling.layer_norms(params0)[0] / rescaling.layer_norms(params0)[1])
    assert start > 10 and ratio0 > 4
    # Plain GD learns (the loss falls) but keeps the imbalance (gradient flow conserves it).
    assert float(res.history["train_loss"][0, 0, -1]) < 0.5 * float(
        res.history["train_loss"][0, 0, 0]
    )
    assert abs(imb[0, -1] - start) < 0.05 * start
    # Decay (exp(-2 λ η t) = exp(-4) under gradient flow) removes most of it ...
    assert abs(imb[1, -1]) < 0.05 * start
    # ... and the layer norms move toward balance, far more than without decay.
    assert abs(np.log(ratio[1, -1])) < 0.5 * abs(np.log(ratio[0, -1]))
