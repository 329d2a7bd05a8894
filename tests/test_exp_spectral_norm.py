import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jreg import models
from jreg.experiments import spectral_norm as sn
from jreg.experiments.runner import run_experiment

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


def test_spectral_norm_experiment_quick(tmp_path):
    lams, cs = (0.0, 1e-2, 1e-1), (0.5, 2.0)
    rec = run_experiment(
        "spectral_norm",
        quick=True,
        out=str(tmp_path),
        progress=False,
        overrides={
            "num_epochs": 20,
            "eval_every": 10,
            "seeds": 2,
            "penalties": lams,
            "max_norms": cs,
        },
    )
    assert (tmp_path / "spectral_norm.png").stat().st_size > 1000
    pen, proj = rec["numbers"]["penalty"], rec["numbers"]["projection"]
    # The projection keeps every layer inside its ball (power iteration, 1% slack).
    sig = np.asarray(proj["layer_sigmas"])  # (H, S, L)
    assert sig.shape == (len(cs), 2, 3)
    assert np.all(sig <= np.asarray(cs)[:, None, None] * (1 + 1e-2))
    # The product of layer norms bounds the measured Jacobian norm for every model.
    for res in (pen, proj):
        bound, measured = np.asarray(res["bound"]), np.asarray(res["measured"])
        assert np.all(np.isfinite(bound)) and np.all(measured > 0)
        assert np.all(bound >= measured)
    assert rec["numbers"]["bound_ge_measured_everywhere"] is True
    # A stronger penalty gives a smaller certified Lipschitz constant.
    assert np.all(np.diff(np.asarray(pen["bound"]).mean(axis=1)) < 0)
    assert np.all(np.asarray(pen["test_accuracy"]) > 0.6)


def test_quick_run_on_two_host_devices_finishes(tmp_path):
    """Regression: an SVD inside the sharded training program deadlocked XLA:CPU with 2 devices."""
    import os
    import subprocess
    import sys

    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu"
    )
    cmd = [sys.executable, "-m", "jreg.cli", "run", "spectral_norm", "--quick"]
    cmd += ["--out", str(tmp_path), "--no-progress"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    rec = json.loads((tmp_path / "spectral_norm.json").read_text())
    assert len(rec["devices"]) == 2
    assert rec["headline"]["bound ≥ measured for every model"] is True
