"""A linear solve that cannot deadlock XLA:CPU's thread pool (jaxlib 0.10's batched LAPACK).

jaxlib 0.10 runs a *batched* LAPACK call (``jnp.linalg.solve`` of a (B, n, n) stack, or one
``vmap``-ed over configs) by splitting the batch over XLA:CPU's intra-op thread pool and
waiting for the pieces. When one jitted program holds two such calls that XLA runs at the
same time, each can occupy a pool thread while waiting for work queued behind the other:
on a 2-core machine the program never returns. Measured on this repository's machine
(jax 0.10.2, 2 cores): ``jit`` of two independent ``jnp.linalg.solve`` of (64, 50, 50)
stacks hangs on its first call, with or without ``--xla_cpu_multi_thread_eigen=false`` and
even with an ``optimization_barrier`` between them; (16, 50, 50) and (64, 20, 20) finish.
Two batched ``jnp.linalg.cholesky`` of (64, 50, 50) hang the same way; batched SVD, eigh and
triangular solves of that size finished.

:func:`solve` calls LAPACK one matrix at a time instead: under ``vmap`` (or for stacked
inputs) the batch becomes a ``lax.map`` of unbatched solves, which never waits on the pool.
Each matrix is solved by the same LAPACK routine (``getrf`` + ``getrs``), so results
equal ``jnp.linalg.solve``'s; gradients follow from ``lax.custom_linear_solve``, as in
``jnp.linalg.solve``. On GPU and TPU it is ``jnp.linalg.solve`` itself.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


@jax.custom_batching.custom_vmap
def _one_at_a_time(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.linalg.solve(a, b)


@_one_at_a_time.def_vmap
def _one_at_a_time_vmap(axis_size, in_batched, a, b):
    a_batched, b_batched = in_batched
    a = a if a_batched else jnp.broadcast_to(a, (axis_size,) + a.shape)
    b = b if b_batched else jnp.broadcast_to(b, (axis_size,) + b.shape)
    return jax.lax.map(lambda ab: _one_at_a_time(*ab), (a, b)), True


def solve(a: jax.Array, b: jax.Array) -> jax.Array:
    """``x`` with ``a @ x = b``, as ``jnp.linalg.solve``, one LAPACK call per matrix on CPU.

    Args:
      a: (..., n, n) square matrices.
      b: (..., n) or (..., n, k) right-hand sides, with the same leading dims as ``a``.

    Returns:
      (..., n) or (..., n, k): the solutions, equal to ``jnp.linalg.solve(a, b)``.

    Differentiable (forward and reverse mode) and ``vmap``-able; see the module docstring
    for why batched LAPACK is avoided on CPU (reference: jaxlib's ``lapack_kernels.cc``).
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"solve needs square matrices a (..., n, n), got {a.shape}.")
    n, lead = a.shape[-1], a.shape[:-2]
    vector = b.shape == lead + (n,)
    if not vector and (b.ndim != a.ndim or b.shape[:-2] != lead or b.shape[-2] != n):
        raise ValueError(
            f"b must be (..., {n}) or (..., {n}, k) matching a {a.shape}; got {b.shape}."
        )
    if jax.default_backend() != "cpu":
        return jnp.linalg.solve(a, b)
    if lead:  # a stack: one matrix at a time
        flat = jax.lax.map(
            lambda ab: solve(*ab), (a.reshape((-1, n, n)), b.reshape((-1,) + b.shape[len(lead) :]))
        )
        return flat.reshape(b.shape)
    frozen = jax.lax.stop_gradient(a)
    return jax.lax.custom_linear_solve(
        lambda x: jnp.dot(a, x, precision=jax.lax.Precision.HIGHEST),
        b,
        solve=lambda _, y: _one_at_a_time(frozen, y),
        transpose_solve=lambda _, y: _one_at_a_time(frozen.T, y),
    )
