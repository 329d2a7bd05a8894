import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jreg.regularizers import losses as L

K = 4


@pytest.fixture
def batch(key):
    logits = jax.random.normal(key, (6, K)) * 2.0
    labels = jnp.array([0, 1, 2, 3, 1, 0])
    return logits, labels


def _reference(logits, labels, eps):
    z = np.asarray(logits, np.float64)
    logp = z - z.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    y = np.full(z.shape, eps / (K - 1))
    y[np.arange(len(labels)), np.asarray(labels)] = 1 - eps
    return -(y * logp).sum(1)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5])
def test_smoothed_loss_closed_form_and_optax(batch, eps, maybe_jit):
    logits, labels = batch
    per = maybe_jit(lambda z, y: L.per_example_cross_entropy(z, y, label_smoothing=eps))
    np.testing.assert_allclose(per(logits, labels), _reference(logits, labels, eps), rtol=1e-5)
    mean = maybe_jit(lambda z, y: L.cross_entropy(z, y, label_smoothing=eps))(logits, labels)
    np.testing.assert_allclose(mean, _reference(logits, labels, eps).mean(), rtol=1e-5)
    onehot = jax.nn.one_hot(labels, K)
    ref = optax.softmax_cross_entropy(logits, optax.smooth_labels(onehot, eps * K / (K - 1)))
    np.testing.assert_allclose(mean, ref.mean(), rtol=1e-5)


def test_unsmoothed_matches_optax_integer_labels(batch):
    logits, labels = batch
    ref = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    np.testing.assert_allclose(L.per_example_cross_entropy(logits, labels), ref, rtol=1e-5)


def test_traced_smoothing_under_vmap(batch):
    logits, labels = batch
    eps = jnp.array([0.0, 0.1, 0.5])
    out = jax.jit(jax.vmap(lambda e: L.cross_entropy(logits, labels, label_smoothing=e)))(eps)
    ref = [_reference(logits, labels, float(e)).mean() for e in eps]
    np.testing.assert_allclose(out, ref, rtol=1e-5)


def test_smoothed_targets(maybe_jit):
    y = maybe_jit(lambda lab: L.smoothed_targets(lab, 3, 0.3))(jnp.array([2, 0]))
    np.testing.assert_allclose(y, [[0.15, 0.15, 0.7], [0.7, 0.15, 0.15]], rtol=1e-6)
    np.testing.assert_allclose(y.sum(1), 1.0, rtol=1e-6)


def test_bf16_logits_give_float32_loss(batch):
    logits, labels = batch
    out = L.cross_entropy(logits.astype(jnp.bfloat16), labels, label_smoothing=0.1)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, _reference(logits, labels, 0.1).mean(), rtol=2e-2)


def test_bad_inputs(batch):
    logits, labels = batch
    with pytest.raises(ValueError, match=r"label_smoothing must lie in \[0, 1\)"):
        L.cross_entropy(logits, labels, label_smoothing=1.0)
    with pytest.raises(ValueError, match=r"label_smoothing must lie in \[0, 1\)"):
        L.smoothed_targets(labels, K, -0.1)
    with pytest.raises(ValueError, match=r"outside \[0, 4\)"):
        L.cross_entropy(logits, labels.at[0].set(4))
    with pytest.raises(ValueError, match="negative label"):
        L.cross_entropy(logits, labels.at[0].set(-1))
    with pytest.raises(TypeError, match="integer class labels"):
        L.cross_entropy(logits, labels.astype(jnp.float32))
    with pytest.raises(ValueError, match=r"logits must have shape \(N, K\)"):
        L.cross_entropy(logits[0], labels)
    with pytest.raises(ValueError, match=r"labels must have shape \(N,\)"):
        L.cross_entropy(logits, labels[:3])
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        L.smoothed_targets(jnp.array([0]), 1, 0.1)


@pytest.mark.parametrize("num_classes", [2, 4, 10])
@pytest.mark.parametrize("eps", [0.05, 0.2, 0.6])
def test_smoothing_is_cross_entropy_plus_kl_from_uniform(num_classes, eps):
    """ε/(K−1) smoothing: LS = (1 − c)·CE + c·KL(u‖p) + c·log K with c = εK/(K − 1).

    With q_y = 1 − ε and q_k = ε/(K − 1) elsewhere, −Σ_k q_k log p_k = −(1 − ε − ε/(K−1))
    log p_y − ε/(K−1) Σ_k log p_k, and −Σ_k log p_k = K·(KL(u‖p) + log K). So smoothing is
    a KL(uniform ‖ p) penalty of weight c on a CE whose weight drops to 1 − c; written as
    CE + c·(KL(u‖p) − CE) + c·log K. (At ε = (K − 1)/K, c = 1: the target is uniform.)
    """
    k1, k2 = jax.random.split(jax.random.key(num_classes))
    logits = jax.random.normal(k1, (64, num_classes), jnp.float32) * 3.0
    labels = jax.random.randint(k2, (64,), 0, num_classes)
    smoothed = L.per_example_cross_entropy(logits, labels, label_smoothing=eps)
    ce = L.per_example_cross_entropy(logits, labels)
    logp = jax.nn.log_softmax(logits, axis=-1)
    kl_uniform = jnp.sum((1.0 / num_classes) * (-jnp.log(num_classes) - logp), axis=-1)
    c = eps * num_classes / (num_classes - 1)
    np.testing.assert_allclose(
        smoothed, (1 - c) * ce + c * kl_uniform + c * np.log(num_classes), rtol=1e-5, atol=1e-5
    )
    # The KL term is a penalty: it is >= 0 and 0 only for the uniform prediction.
    assert np.all(np.asarray(kl_uniform) >= -1e-6)
