import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jreg.experiments.implicit import spectral_norm as sn
from jreg.nn import models

pytestmark = pytest.mark.standard_promotion  # Adam


def test_bound_is_exact_for_one_linear_layer(key):
    params = models.mlp_init(key, (3, 4))
    x = jax.random.normal(jax.random.fold_in(key, 1), (5, 3))
    sigma = np.linalg.norm(np.asarray(params[0]["w"], np.float64), 2)
    np.testing.assert_allclose(sn.lipschitz_bound(params), sigma, rtol=1e-5)
    np.testing.assert_allclose(sn.max_jacobian_norm(params, x, activation="tanh"), sigma, rtol=1e-5)


def test_bound_dominates_jacobian_of_deep_net(key):
    params = models.mlp_init(key, (2, 16, 16, 2))
    params = jax.tree.map(lambda p: 3.0 * p, params)
    x = 2.0 * jax.random.normal(jax.random.fold_in(key, 1), (64, 2))
    sig = sn.layer_spectral_norms(params)
    np.testing.assert_allclose(sig, [np.linalg.norm(p["w"], 2) for p in params], rtol=1e-5)
    measured = sn.max_jacobian_norm(params, x, activation="tanh")
    assert 0.0 < float(measured) < float(jnp.prod(sig))


def test_spectral_norm_experiment_quick():
    lams, cs = (0.0, 1e-2, 1e-1), (0.5, 2.0)
    config = sn.get_config(quick=True) | {
        "num_epochs": 20,
        "eval_every": 10,
        "seeds": 2,
        "penalties": lams,
        "max_norms": cs,
    }
    num = sn.compute(config)
    pen, proj = num["penalty"], num["projection"]
    # The projection keeps every layer inside its ball (power iteration, 1% slack).
    sig = np.asarray(proj["layer_sigmas"])  # (H, S, L)
    assert sig.shape == (len(cs), 2, 3)
    assert np.all(sig <= np.asarray(cs)[:, None, None] * (1 + 1e-2))
    # The product of layer norms bounds the measured Jacobian norm for every model.
    for res in (pen, proj):
        bound, measured = np.asarray(res["bound"]), np.asarray(res["measured"])
        assert np.all(np.isfinite(bound)) and np.all(measured > 0)
        assert np.all(bound >= measured)
        # The power-iteration bound tracked during training matches the exact one at the end.
        np.testing.assert_allclose(res["bound_curve"][..., -1], bound, rtol=1e-3)
    assert num["bound_ge_measured_everywhere"] is True
    # A stronger penalty gives a smaller certified Lipschitz constant.
    assert np.all(np.diff(np.asarray(pen["bound"]).mean(axis=1)) < 0)
    assert np.all(np.asarray(pen["test_accuracy"]) > 0.6)
    fig = sn.figure(num, config)  # smoke check: draws from the numbers only
    assert len(fig.axes) == 4


def test_quick_run_on_two_host_devices_finishes():
    """Regression: an SVD inside the sharded training program deadlocked XLA:CPU with 2 devices."""
    import os
    import subprocess
    import sys

    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu"
    )
    script = (
        "import json, jax\n"
        "from jreg.experiments.implicit import spectral_norm as sn\n"
        "num = sn.compute(sn.get_config(quick=True))\n"
        "print(json.dumps([jax.device_count(), num['bound_ge_measured_everywhere']]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [2, True]
