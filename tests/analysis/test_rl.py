import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jreg.analysis import rl

rlax = pytest.importorskip("rlax")


def _transitions(key, n=64, a=5, b=7):
    ks = jax.random.split(key, 6)
    q_tm1 = jax.random.normal(ks[0], (n, a))
    a_tm1 = jax.random.randint(ks[1], (n,), 0, a)
    r_t = jax.random.normal(ks[2], (n,))
    discount_t = jnp.where(jax.random.uniform(ks[3], (n,)) < 0.3, 0.0, 0.9)
    q_t = jax.random.normal(ks[4], (n, b))
    q_t2 = jax.random.normal(ks[5], (n, b))
    return q_tm1, a_tm1, r_t, discount_t, q_t, q_t2


def test_q_learning_matches_rlax(key, maybe_jit):
    q_tm1, a_tm1, r_t, d_t, q_t, _ = _transitions(key)
    ours = maybe_jit(jax.vmap(rl.q_learning))(q_tm1, a_tm1, r_t, d_t, q_t)
    want = jax.vmap(rlax.q_learning)(q_tm1, a_tm1, r_t, d_t, q_t)
    np.testing.assert_allclose(ours, want, rtol=1e-6, atol=1e-6)
    target = jax.vmap(rl.q_learning_target)(r_t, d_t, q_t)
    np.testing.assert_allclose(target, r_t + d_t * q_t.max(-1), rtol=1e-6, atol=1e-6)


def test_double_q_learning_matches_rlax(key, maybe_jit):
    q_tm1, a_tm1, r_t, d_t, q_val, q_sel = _transitions(key)
    ours = maybe_jit(jax.vmap(rl.double_q_learning))(q_tm1, a_tm1, r_t, d_t, q_val, q_sel)
    want = jax.vmap(rlax.double_q_learning)(q_tm1, a_tm1, r_t, d_t, q_val, q_sel)
    np.testing.assert_allclose(ours, want, rtol=1e-6, atol=1e-6)
    # With ties in the selector both take the first maximal index.
    sel = jnp.array([1.0, 3.0, 3.0, 0.0])
    val = jnp.array([10.0, 20.0, 30.0, 40.0])
    args = (jnp.zeros(2), jnp.int32(1), jnp.float32(0.5), jnp.float32(1.0), val, sel)
    assert float(rl.double_q_learning(*args)) == float(rlax.double_q_learning(*args)) == 20.5


def test_double_q_random_ties(key):
    q_tm1, a_tm1, r_t, d_t, q_val, q_sel = _transitions(key)
    keys = jax.random.split(key, q_tm1.shape[0])
    # No ties in continuous random values: the key changes nothing.
    ours = jax.vmap(lambda *a: rl.double_q_learning(*a[:-1], key=a[-1]))(
        q_tm1, a_tm1, r_t, d_t, q_val, q_sel, keys
    )
    np.testing.assert_allclose(
        ours, jax.vmap(rlax.double_q_learning)(q_tm1, a_tm1, r_t, d_t, q_val, q_sel)
    )
    # Ties: each tied entry of q_t_value is read equally often.
    sel, val = jnp.array([3.0, 1.0, 3.0]), jnp.array([10.0, 20.0, 30.0])
    targets = jax.vmap(lambda k: rl.double_q_learning_target(0.0, 1.0, val, sel, key=k))(
        jax.random.split(key, 4000)
    )
    assert set(np.unique(np.asarray(targets))) == {10.0, 30.0}
    assert abs(float(jnp.mean(targets == 10.0)) - 0.5) < 0.03


def test_double_q_with_one_table_is_q_learning(key):
    q_tm1, a_tm1, r_t, d_t, q_t, _ = _transitions(key)
    dq = jax.vmap(rl.double_q_learning)(q_tm1, a_tm1, r_t, d_t, q_t, q_t)
    np.testing.assert_allclose(dq, jax.vmap(rl.q_learning)(q_tm1, a_tm1, r_t, d_t, q_t))


def test_targets_stop_gradients():
    q = jnp.array([1.0, 2.0])
    grad = jax.grad(lambda q: rl.q_learning(q, 0, 1.0, 0.9, q))(q)
    np.testing.assert_allclose(grad, [-1.0, 0.0])  # only through q_tm1[a]
    grad = jax.grad(lambda q: rl.double_q_learning(q, 1, 1.0, 0.9, q, q))(q)
    np.testing.assert_allclose(grad, [0.0, -1.0])


def test_argmax_random_tie_is_uniform_over_ties(key):
    q = jnp.array([0.0, 2.0, -1.0, 2.0, 2.0])
    keys = jax.random.split(key, 6000)
    picks = np.asarray(jax.vmap(rl.argmax_random_tie, in_axes=(0, None))(keys, q))
    counts = np.bincount(picks, minlength=5)
    assert counts[0] == counts[2] == 0
    np.testing.assert_allclose(counts[[1, 3, 4]] / 6000, 1 / 3, atol=0.03)
    assert int(rl.argmax_random_tie(key, jnp.array([0.0, 5.0, 1.0]))) == 1


def test_epsilon_greedy_probabilities(key):
    q = jnp.array([0.0, 1.0, 0.5, -2.0])
    keys = jax.random.split(key, 20000)
    acts = np.asarray(jax.vmap(rl.epsilon_greedy, in_axes=(0, None, None))(keys, q, 0.2))
    freq = np.bincount(acts, minlength=4) / acts.size
    np.testing.assert_allclose(freq, [0.05, 0.85, 0.05, 0.05], atol=0.01)
    greedy = jax.vmap(rl.epsilon_greedy, in_axes=(0, None, None))(keys[:50], q, 0.0)
    assert np.all(np.asarray(greedy) == 1)
