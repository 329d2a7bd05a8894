"""Timing helpers shared by the benchmarks: compile time, best-of timings, matmul peaks.

Import after :func:`jreg.core.runtime.use_all_cpu_cores` (importing this starts JAX).
``COMPILE_SECONDS[0]`` accumulates tracing + lowering + XLA compilation seconds from
``jax.monitoring``; a benchmark zeroes it before the call it measures.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

#: jax.monitoring events whose durations add up to the compile time.
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
COMPILE_SECONDS = [0.0]


def _on_event(event: str, duration: float, **kw) -> None:
    if event in COMPILE_EVENTS:
        COMPILE_SECONDS[0] += duration


jax.monitoring.register_event_duration_secs_listener(_on_event)


def best_seconds(fn, reps: int) -> float:
    """Fastest of ``reps`` timed calls of ``fn`` after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def matmul_gflops_jax(n: int = 2048, reps: int = 20) -> float:
    """Best of ``reps`` timed nxn float32 matmuls (the machine's practical peak)."""
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    return 2 * n**3 / best_seconds(lambda: f(a).block_until_ready(), reps) / 1e9


def small_matmul_gflops_jax(m: int = 100, k: int = 300, n: int = 300, reps: int = 50) -> float:
    """Best of ``reps`` timed (m x k) @ (k x n) float32 matmuls, 20 per call."""
    a, b = jnp.ones((m, k), jnp.float32), jnp.ones((k, n), jnp.float32)

    def body(i, acc):
        return acc + (a + i.astype(jnp.float32)) @ b

    f = jax.jit(lambda: jax.lax.fori_loop(0, 20, body, jnp.zeros((m, n), jnp.float32)))
    return 20 * 2 * m * k * n / best_seconds(lambda: f().block_until_ready(), reps) / 1e9


def batched_matmul_gflops_jax(s: int, m: int, k: int, n: int, reps: int = 50) -> float:
    """Best of ``reps`` timed batched (s, m, k) @ (s, k, n) float32 matmuls, 20 per call.

    The batch axis is split over every device, as a sweep splits its configs (``s`` a
    multiple of the device count), so on CPU each host device runs its own block.
    """
    mesh = jax.sharding.Mesh(jax.devices(), ("s",))
    split = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("s"))
    a = jax.device_put(jnp.ones((s, m, k), jnp.float32), split)
    b = jax.device_put(jnp.ones((s, k, n), jnp.float32), split)

    def body(i, acc):
        return acc + jnp.matmul(a + i.astype(jnp.float32), b)

    f = jax.jit(
        lambda: jax.lax.fori_loop(0, 20, body, jnp.zeros((s, m, n), jnp.float32)),
        out_shardings=split,
    )
    return 20 * 2 * s * m * k * n / best_seconds(lambda: f().block_until_ready(), reps) / 1e9


def small_matmul_gflops_torch(
    torch, m: int = 100, k: int = 300, n: int = 300, s: int = 0, reps: int = 50
) -> float:
    """The same loop as :func:`small_matmul_gflops_jax` (``s > 0``: batched, as
    :func:`batched_matmul_gflops_jax`) in PyTorch eager, on its device: how fast another
    library's kernels (MKL / oneDNN on CPU) run the same shape in the same run."""
    dev = torch_device(torch)
    shape = (s,) if s else ()
    a, b = torch.ones(shape + (m, k), device=dev), torch.ones(shape + (k, n), device=dev)

    def run():
        acc = torch.zeros(shape + (m, n), device=dev)
        for i in range(20):
            acc = acc + torch.matmul(a + float(i), b)
        torch_sync(torch)

    return 20 * 2 * max(s, 1) * m * k * n / best_seconds(run, reps) / 1e9


def torch_device(torch) -> str:
    """``"cuda"`` when PyTorch sees a GPU, else ``"cpu"`` (the torch arms run there)."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def torch_sync(torch) -> None:
    """Wait for queued GPU work (a no-op on CPU), so wall times are complete."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def matmul_gflops_torch(torch, n: int = 2048, reps: int = 20) -> float:
    """Same measurement in PyTorch, on its device."""
    a = torch.ones((n, n), device=torch_device(torch))

    def run():
        a @ a
        torch_sync(torch)

    return 2 * n**3 / best_seconds(run, reps) / 1e9
