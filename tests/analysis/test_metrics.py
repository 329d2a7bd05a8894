import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jreg.analysis import metrics as M


@pytest.fixture
def calib():
    rng = np.random.default_rng(0)
    z = np.exp(2.0 * rng.standard_normal((103, 4)))
    probs = jnp.asarray(z / z.sum(1, keepdims=True), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 4, 103), jnp.int32)
    return probs, labels


def _reference_bins(probs, labels, num_bins, binning):
    """Plain-numpy reliability statistics with explicit loops."""
    p = np.asarray(probs, np.float64)
    y = np.asarray(labels)
    conf = np.asarray(probs).max(1).astype(np.float64)
    correct = (p.argmax(1) == y).astype(np.float64)
    n = len(y)
    members = [[] for _ in range(num_bins)]
    if binning == "uniform":
        edges = np.linspace(0.0, 1.0, num_bins + 1)
        for i in range(n):
            for m in range(num_bins):
                last = m == num_bins - 1
                if edges[m] <= conf[i] < edges[m + 1] or (last and conf[i] == edges[m + 1]):
                    members[m].append(i)
                    break
    else:
        order = np.argsort(conf, kind="stable")
        for m, chunk in enumerate(np.array_split(order, num_bins)):
            members[m] = list(chunk)
    count = np.array([len(b) for b in members])
    mean_conf = np.array([conf[b].mean() if b else 0.0 for b in members])
    mean_acc = np.array([correct[b].mean() if b else 0.0 for b in members])
    ece = 0.0
    for m in range(num_bins):
        ece += count[m] / n * abs(mean_conf[m] - mean_acc[m])
    return count, mean_conf, mean_acc, ece


@pytest.mark.parametrize(("binning", "num_bins"), [("uniform", 15), ("quantile", 7)])
def test_ece_and_curve_match_numpy_reference(calib, binning, num_bins, maybe_jit):
    probs, labels = calib
    count, conf, acc, ece = _reference_bins(probs, labels, num_bins, binning)
    kw = dict(num_bins=num_bins, binning=binning)
    curve = maybe_jit(functools.partial(M.reliability_curve, **kw))(probs, labels)
    np.testing.assert_array_equal(curve.count, count)
    np.testing.assert_allclose(curve.confidence, conf, atol=1e-6)
    np.testing.assert_allclose(curve.accuracy, acc, atol=1e-6)
    assert curve.edges.shape == (num_bins + 1,)
    out = maybe_jit(functools.partial(M.expected_calibration_error, **kw))(probs, labels)
    np.testing.assert_allclose(out, ece, rtol=1e-5, atol=1e-7)


def test_quantile_bins_balanced_and_edges_sorted(calib):
    probs, labels = calib
    curve = M.reliability_curve(probs, labels, num_bins=10)
    assert set(np.asarray(curve.count).tolist()) == {10, 11}
    assert int(curve.count.sum()) == 103
    edges = np.asarray(curve.edges)
    assert edges[0] == 0.0 and edges[-1] == 1.0 and np.all(np.diff(edges) >= 0)


def test_empty_bins_are_zero():
    probs = jnp.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    labels = jnp.array([0, 1, 1])
    curve = M.reliability_curve(probs, labels, num_bins=4, binning="uniform")
    np.testing.assert_array_equal(curve.count, [0, 0, 1, 2])
    np.testing.assert_allclose(curve.confidence, [0, 0, 0.7, 0.85], rtol=1e-6)
    np.testing.assert_allclose(curve.accuracy, [0, 0, 1, 0.5])
    # ECE = 1/3 * 0.3 + 2/3 * 0.35
    ece = M.expected_calibration_error(probs, labels, num_bins=4, binning="uniform")
    np.testing.assert_allclose(ece, 0.1 + 0.7 / 3, rtol=1e-6)
    quantile = M.reliability_curve(probs, labels, num_bins=5)  # N < M
    np.testing.assert_array_equal(quantile.count, [1, 1, 1, 0, 0])


def test_accuracy(maybe_jit):
    logits = jnp.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.5], [0.2, 0.1]])
    labels = jnp.array([0, 1, 1, 1])
    np.testing.assert_allclose(maybe_jit(M.accuracy)(logits, labels), 0.5)


def test_confidence_of_wrong():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
    np.testing.assert_allclose(M.confidence_of_wrong(probs, np.array([0, 1, 0])), [0.6, 0.7])
    with pytest.raises(TypeError, match="outside jit"):
        jax.jit(M.confidence_of_wrong)(probs, np.array([0, 1, 0]))


def test_calibration_bad_inputs(calib):
    probs, labels = calib
    with pytest.raises(ValueError, match="available: quantile, uniform"):
        M.expected_calibration_error(probs, labels, binning="equal")
    with pytest.raises(ValueError, match="sum to 1"):
        M.expected_calibration_error(probs * 2, labels)
    with pytest.raises(ValueError, match="non-negative"):
        M.reliability_curve(probs - 0.5, labels)
    with pytest.raises(ValueError, match="NaN"):
        M.reliability_curve(probs.at[0, 0].set(jnp.nan), labels)
    with pytest.raises(ValueError, match=r"labels must have shape \(N,\)"):
        M.reliability_curve(probs, labels[:5])
    with pytest.raises(ValueError, match="num_bins must be a positive integer"):
        M.reliability_curve(probs, labels, num_bins=0)
    with pytest.raises(ValueError, match=r"outside \[0, 4\)"):
        M.accuracy(probs, labels.at[0].set(9))


def test_weight_sparsity_and_zeros(maybe_jit):
    params = {"w": jnp.array([[0.0, 1e-4], [0.5, -2.0]]), "b": jnp.array([0.0, 1.0])}
    np.testing.assert_allclose(maybe_jit(M.weight_sparsity)(params), 3 / 6)
    np.testing.assert_allclose(M.weight_sparsity(params, tol=1.0), 4 / 6)
    np.testing.assert_allclose(M.weight_sparsity(params, mask={"w": True, "b": False}), 2 / 4)
    assert int(maybe_jit(M.count_zeros)(params)) == 2
    assert int(M.count_zeros(params, mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p))) == 1
    with pytest.raises(ValueError, match="tol must be >= 0"):
        M.weight_sparsity(params, tol=-1.0)
    with pytest.raises(ValueError, match="selects no parameters"):
        M.weight_sparsity(params, mask={"w": False, "b": False})


def test_mode_coverage_hand_computed(maybe_jit):
    """Modes at (0,0), (10,0), (0,10); σ = 1, so high quality means distance < 3."""
    centers = jnp.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    samples = jnp.array(
        [
            [0.5, 0.0],  # mode 0, distance 0.5: high quality
            [0.0, -2.9],  # mode 0, distance 2.9: high quality
            [9.0, 1.0],  # mode 1, distance √2: high quality
            [5.0, 5.0],  # distance √50 to every mode: low quality
            [0.0, 6.5],  # nearest is mode 2 at distance 3.5: low quality
        ]
    )
    out = maybe_jit(M.mode_coverage)(samples, centers, 1.0)
    np.testing.assert_allclose(out["counts"], [2.0, 1.0, 0.0])
    assert float(out["modes"]) == 2.0  # mode 2 is nearest only to a low-quality sample
    np.testing.assert_allclose(out["high_quality"], 3 / 5)
    # p = (2/3, 1/3, 0): KL = 2/3 log(3·2/3) + 1/3 log(3·1/3) = 2/3 log 2.
    np.testing.assert_allclose(out["kl"], 2 / 3 * np.log(2.0), rtol=1e-6)
    even = M.mode_coverage(centers, centers, 1.0)
    assert float(even["modes"]) == 3.0 and abs(float(even["kl"])) < 1e-6
    assert np.isnan(float(M.mode_coverage(samples[3:4], centers, 1.0)["kl"]))
    with pytest.raises(ValueError, match="std must be finite and > 0"):
        M.mode_coverage(samples, centers, 0.0)


def test_margins_closed_form():
    from jreg import analysis

    logits = np.array([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0], [1.0, 1.0, 0.0]], np.float32)
    labels = np.array([0, 2, 1], np.int32)
    # z_y - max_{k != y} z_k: 2 - 0.5, 1 - 3, 1 - 1 (a tie is a zero margin)
    np.testing.assert_allclose(np.asarray(analysis.margins(logits, labels)), [1.5, -2.0, 0.0])
    with pytest.raises(ValueError, match="outside"):
        analysis.margins(logits, np.array([0, 3, 1], np.int32))
