"""jreg.util.linalg.solve: jnp.linalg.solve's numbers, without batched LAPACK on CPU."""

import subprocess
import sys
import textwrap

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jreg.util import linalg


def _system(batch=(), n=6, k=None, seed=0):
    ka, kb = jax.random.split(jax.random.key(seed))
    a = jax.random.normal(ka, batch + (n, n)) + 4.0 * jnp.eye(n)
    b = jax.random.normal(kb, batch + (n,) + (() if k is None else (k,)))
    return a, b


@pytest.mark.parametrize("batch, k", [((), None), ((), 3), ((5,), None), ((2, 3), 4)])
def test_equals_jnp_linalg_solve(batch, k):
    a, b = _system(batch, k=k)
    # jnp needs a stack of vectors as (..., n, 1); jreg takes (..., n) when a is a stack
    ref = jnp.linalg.solve(a, b[..., None])[..., 0] if batch and k is None else None
    ref = jnp.linalg.solve(a, b) if ref is None else ref
    np.testing.assert_array_equal(linalg.solve(a, b), ref)
    if batch:  # under vmap too (the batch becomes a lax.map of one-matrix solves)
        vm = jax.jit(jax.vmap(linalg.solve))(
            a.reshape((-1,) + a.shape[-2:]), b.reshape(-1, *b.shape[len(batch) :])
        )
        np.testing.assert_array_equal(vm.reshape(b.shape), ref)


def test_gradients_forward_and_reverse():
    a, b = _system(k=2)
    a, b = a.astype(jnp.float32), b.astype(jnp.float32)
    check_grads(linalg.solve, (a, b), order=2, modes=("fwd", "rev"), atol=2e-2, rtol=2e-2)
    a, b = _system((4,))
    loss = lambda f: lambda a: jnp.sum(jax.vmap(f, (0, None))(a, b[0]) ** 2)
    chex.assert_trees_all_close(
        jax.grad(loss(linalg.solve))(a), jax.grad(loss(jnp.linalg.solve))(a), rtol=1e-5
    )


def test_bad_shapes_are_one_clear_error():
    with pytest.raises(ValueError, match="square"):
        linalg.solve(jnp.ones((3, 4)), jnp.ones(3))
    with pytest.raises(ValueError, match="matching a"):
        linalg.solve(jnp.ones((3, 3)), jnp.ones(4))


TWO_SOLVES = textwrap.dedent(
    """
    import sys
    from jreg.core.runtime import use_all_cpu_cores
    use_all_cpu_cores()
    import jax, jax.numpy as jnp
    from jreg.util import linalg
    solve = {"jreg": linalg.solve, "jnp": jnp.linalg.solve}[sys.argv[1]]
    a = jax.random.normal(jax.random.key(0), (64, 50, 50)) + 10 * jnp.eye(50)
    b = jnp.ones((64, 50))
    f = jax.jit(lambda a, b: (jax.vmap(solve)(a, b), jax.vmap(solve)(a + jnp.eye(50), 2 * b)))
    for i in range(50):
        jax.block_until_ready(f(a + i * 1e-6, b))
    print("finished")
    """
)


def test_two_batched_solves_in_one_program_finish():
    """The shape that hangs with jnp.linalg.solve on a 2-core CPU (jaxlib 0.10) finishes."""
    out = subprocess.run(
        [sys.executable, "-c", TWO_SOLVES, "jreg"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and "finished" in out.stdout, out.stderr[-2000:]
