import jax
import jax.numpy as jnp
import numpy as np

from jreg import analysis


def test_top_hessian_eigenvalue_of_a_quadratic():
    # L(θ) = ½ θᵀ A θ over a pytree: the Hessian is A, whose top eigenvalue is exact.
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    eig = np.array([5.0, 2.0, 1.0, 0.5, 0.1, 0.0])
    a = jnp.asarray(q @ np.diag(eig) @ q.T, jnp.float32)

    def loss(p):
        theta = jnp.concatenate([p["w"].reshape(-1), p["b"]])
        return 0.5 * theta @ a @ theta

    params = {"w": jnp.ones((2, 2)), "b": jnp.zeros(2)}
    lam = analysis.top_hessian_eigenvalue(loss, params, jax.random.key(0), num_iters=60)
    np.testing.assert_allclose(float(lam), np.linalg.eigvalsh(np.asarray(a)).max(), rtol=1e-4)
    # jit/vmap-friendly: a batch of keys gives the same value
    keys = jax.random.split(jax.random.key(1), 3)
    lams = jax.jit(jax.vmap(lambda k: analysis.top_hessian_eigenvalue(loss, params, k, 60)))(keys)
    np.testing.assert_allclose(np.asarray(lams), 5.0, rtol=1e-4)
