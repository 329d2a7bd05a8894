import jax
import numpy as np
import pytest

from jreg.experiments.implicit import weight_decay_pitfalls as wdp
from jreg.experiments.implicit.weight_decay_pitfalls import batch_norm

pytestmark = pytest.mark.standard_promotion  # part (c) uses Adam


def test_weight_decay_pitfalls_quick():
    config = wdp.get_config(quick=True) | {
        "seeds": 2,
        "dead_n": 160,
        "dead_epochs": 20,
        "dead_decays": (0.0, 0.1),
        "n_train": 500,
        "n_test": 200,
        "bn_epochs": 3,
        "adam_epochs": 4,
        "adam_lams": (0.1, 1.0),
        "regime_lrs": (0.1, 0.3),
        "regime_bias_inits": (0.0, 0.1),
        "regime_decays": (0.0, 0.1),
        "rescale_decays": (0.0, 0.1),
    }
    num = wdp.compute(config)

    # (a) dead units are counted on the whole training set; strong decay kills units, and
    # (the measured finding, against the folklore) exempting biases does not protect them.
    dead = num["dead"]
    only = np.asarray(dead["weights only"]["dead_total_final"])  # (H, S)
    both = np.asarray(dead["weights + biases"]["dead_total_final"])
    assert only.shape == both.shape == (2, 2)
    assert np.all((only >= 0) & (only <= 128)) and np.all((both >= 0) & (both <= 128))
    assert only[1].mean() > only[0].mean()
    assert only[1].mean() >= both[1].mean()

    # (b) batch norm makes the layer before it scale invariant, and the penalty shrinks ‖W‖
    # (raising the effective learning rate η/‖W‖²).
    bn = num["batch_norm"]
    for diffs in (bn["max_abs_logit_diff"]["init"], bn["max_abs_logit_diff"]["trained"]):
        assert set(diffs) == {"c=0.1", "c=10"}
        assert max(diffs.values()) < 1e-4
    assert abs(bn["cos_grad_w"]) < 1e-4
    w_norm = np.asarray(bn["w_norm"])[:, :, -1]  # (no penalty, L2) x seeds
    assert np.all(w_norm[1] < w_norm[0])
    assert np.all(np.asarray(bn["eff_lr"])[1, :, -1] > np.asarray(bn["eff_lr"])[0, :, -1])
    assert np.all(np.asarray(bn["test_accuracy"])[:, :, -1] > 0.15)  # running stats; chance 0.1

    # (c) the same λ gives different weight norms in the loss (Adam+L2) and decoupled (AdamW).
    l2 = np.asarray(num["adam"]["Adam + L2 in loss"]["w_norm"])
    aw = np.asarray(num["adam"]["AdamW"]["w_norm"])
    assert np.all(np.isfinite(l2)) and np.all(np.isfinite(aw))
    assert np.all(np.abs(l2.mean(1) - aw.mean(1)) > 0.1 * aw.mean(1))
    assert l2.mean(1)[-1] < aw.mean(1)[-1]
    # (a') the regime sweep: paired differences for every (lr, bias init, λ) cell.
    regime = num["bias_regime"]
    dead = np.asarray(regime["dead"])  # (2, R, B, K, S, T)
    assert dead.shape[:5] == (2, 2, 2, 2, 2)
    assert np.all((dead >= 0) & (dead <= 128))
    np.testing.assert_array_equal(dead[0, :, :, 0], dead[1, :, :, 0])  # λ = 0: same training

    # (d) ReLU rescaling leaves the function unchanged to float precision; without decay the
    # layer imbalance Δ is conserved, with decay it shrinks like (1 − ηλ)^{2t}.
    resc = num["rescaling"]
    assert max(resc["invariance"].values()) < 1e-5
    delta = np.asarray(resc["imbalance"])[..., -1, 0]  # (C, K, S), first hidden layer
    d0 = np.asarray(resc["imbalance_init"])[:, None, :, 0]
    pred = np.asarray(resc["imbalance_predicted"])[..., -1, 0]
    # (c0 = 4: a large Δ_0, so the O(η²) drift is small beside it)
    np.testing.assert_allclose(delta[-1, 0] / d0[-1, 0], 1.0, atol=0.05)
    np.testing.assert_allclose(delta[-1, 1] / d0[-1, 0], pred[-1, 1] / d0[-1, 0], atol=0.05)
    assert np.all(pred[-1, 1] / d0[-1, 0] < 0.9)  # the decay visibly shrinks the imbalance
    ratio = np.asarray(resc["ratio"])[-1, :, :, -1, 0]  # c0 = 4: (K, S) at the end
    assert np.all(ratio[1] < ratio[0])  # decay moves the layers toward balance

    assert len(num["notes"]) >= 5 and all(isinstance(n, str) for n in num["notes"])
    fig = wdp.figure(num, config)  # smoke check: draws from the numbers only
    assert len(fig.axes) == 12


def test_dead_units_counts_by_hand():
    params = [
        {
            "w": np.array([[1.0, -1.0, 0.0]], np.float32),
            "b": np.array([0.0, -0.5, -1.0], np.float32),
        },
        {"w": np.ones((3, 2), np.float32), "b": np.zeros(2, np.float32)},
    ]
    x = np.array([[1.0], [0.2]], np.float32)
    # unit 0 active, unit 1: -x - 0.5 < 0 for x >= 0, unit 2: constant -1.
    assert wdp.dead_units(params, x).tolist() == [2]
    assert wdp.near_dead_units(params, x).tolist() == [2]


@pytest.mark.parametrize(("bias_decay", "mask"), [(0.0, "default"), (1.0, None)])
def test_bias_switch_equals_sgdw_with_mask(bias_decay, mask):
    from jreg.regularizers import transforms

    mask = transforms.default_decay_mask if mask == "default" else mask
    params = [{"w": np.array([[1.0, -2.0]], np.float32), "b": np.array([0.5, -1.0], np.float32)}]
    grads = jax.tree.map(lambda a: 0.1 * np.ones_like(a), params)
    ref_tx = transforms.sgdw(0.1, 0.3, mask=mask)
    tx = wdp.sgdw_bias_switch(0.1, np.float32(0.3), np.float32(bias_decay))
    p_ref, p_new = params, params
    s_ref, s_new = ref_tx.init(params), tx.init(params)
    for _ in range(3):  # several steps, compared leaf by leaf
        u_ref, s_ref = ref_tx.update(grads, s_ref, p_ref)
        u_new, s_new = tx.update(grads, s_new, p_new)
        p_ref = jax.tree.map(lambda a, b: a + b, p_ref, u_ref)
        p_new = jax.tree.map(lambda a, b: a + b, p_new, u_new)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), p_new, p_ref)
    moved_bias = not np.allclose(p_new[0]["b"], params[0]["b"] - 3 * 0.1 * 0.1)
    assert moved_bias == (bias_decay == 1.0)


def test_bn_scale_invariance_by_hand():
    params, _ = batch_norm.model(5, 4, 3).init(jax.random.key(0), {})
    x = jax.random.normal(jax.random.key(1), (16, 5))
    out = wdp.scale_invariance(params, x, (0.1, 10.0))
    assert max(out.values()) < 1e-5
