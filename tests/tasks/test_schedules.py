import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jreg.tasks import schedules as S


def test_power_law_formula(maybe_jit):
    sched = S.power_law(0.1, 0.75, 20.0)
    steps = jnp.arange(6) * 7
    out = maybe_jit(jax.vmap(sched))(steps)
    ref = 0.1 / (1 + np.arange(6) * 7 / 20.0) ** 0.75
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    assert float(sched(0)) == pytest.approx(0.1)


def test_offset_reproduces_reference_numpy_optimizer():
    # reference: t += 1; lr = lr0 / (1 + t / tau) ** a  -> first update uses t = 1
    lr0, a, tau = 0.05, 0.5, 3.0
    ref, t = [], 0
    for _ in range(5):
        t += 1
        ref.append(lr0 / np.power(1 + t / tau, a))
    sched = S.power_law(lr0, a, tau, offset=1)
    np.testing.assert_allclose([sched(c) for c in range(5)], ref, rtol=1e-6)


def test_power_law_in_optax_uses_count_from_zero():
    sched = S.power_law(0.5, 1.0, 2.0)
    opt = optax.sgd(sched)
    params = jnp.zeros(())
    state = opt.init(params)
    lrs = []
    for _ in range(3):
        updates, state = opt.update(jnp.ones(()), state, params)
        lrs.append(-float(updates))
    np.testing.assert_allclose(lrs, [0.5, 0.5 / 1.5, 0.5 / 2.0], rtol=1e-6)


def test_power_law_vmapped_hparams():
    lr0 = jnp.array([0.1, 0.2, 0.4])
    out = jax.jit(jax.vmap(lambda lr: S.power_law(lr, 0.5, 10.0)(jnp.int32(30))))(lr0)
    np.testing.assert_allclose(out, np.array([0.1, 0.2, 0.4]) / 2.0, rtol=1e-6)
    a, tau = jnp.array([0.0, 1.0]), jnp.array([1.0, 5.0])
    out = jax.vmap(lambda a_, t_: S.power_law(1.0, a_, t_)(5))(a, tau)
    np.testing.assert_allclose(out, [1.0, 0.5], rtol=1e-6)


def test_constant_and_bad_inputs():
    assert float(S.constant(0.3)(17)) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="lr0 must be >= 0"):
        S.power_law(-0.1, 1.0, 1.0)
    with pytest.raises(ValueError, match="a must be >= 0"):
        S.power_law(0.1, -1.0, 1.0)
    with pytest.raises(ValueError, match="tau must be finite and > 0"):
        S.power_law(0.1, 1.0, 0.0)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        S.constant(-1.0)
