"""Process set-up in one place: device layout, XLA flags, compilation cache, processes.

Used by the CLI, the notebooks, the benchmarks and ``python -m jreg``. Importing jreg
changes no global state; a program calls :func:`setup` once, before JAX starts its
backends (the first ``jax.devices()`` or array), to lay out the devices:

* **CPU**: one XLA host device per core (``--xla_force_host_platform_device_count``).
  :func:`jreg.core.train.sweep` runs its configs as a ``shard_map`` over these devices in
  which nothing communicates, and assembles results on the host from each device's
  shard, so no program ever holds a collective (all-gather, all-reduce, ...): an XLA:CPU
  collective waits on the shared Eigen thread pool and can wedge it on a busy machine.
  Measurements and the alternatives tried: ``docs/performance.md``.
* **GPU / TPU**: JAX's own devices, untouched.
* **Several hosts** (a TPU pod slice, GPU hosts, CPU processes): :func:`initialize`
  wraps ``jax.distributed.initialize``; a sweep then spreads its configs over every
  process's devices and only process 0 draws progress bars and writes files
  (:func:`is_main_process`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import os
import platform
import tempfile

_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def _jax_started() -> bool:
    """True once JAX has initialised a backend (XLA flags can no longer change)."""
    import sys

    if "jax" not in sys.modules:
        return False
    from jax._src import xla_bridge

    return bool(getattr(xla_bridge, "_backends", None))


def cpu_cores() -> int:
    """CPU cores this process may run on (``sched_getaffinity``, else ``os.cpu_count``)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def use_all_cpu_cores(environ=os.environ) -> int:
    """Expose one XLA host device per CPU core (CPU platform only; before JAX starts).

    XLA:CPU runs one program mostly on one thread; with one host device per core a sweep
    keeps every core busy (double-descent sweep 52 s on 2 devices vs 84 s on 1,
    ``docs/performance.md``). A ``--xla_force_host_platform_device_count`` already in
    ``XLA_FLAGS`` wins.

    Returns:
      The number of host devices requested (or already set).
    """
    flags = environ.get("XLA_FLAGS", "")
    if _DEVICE_COUNT_FLAG in flags:
        return int(flags.split(_DEVICE_COUNT_FLAG + "=")[1].split()[0])
    n = cpu_cores()
    environ["XLA_FLAGS"] = f"{flags} {_DEVICE_COUNT_FLAG}={n}".strip()
    return n


def cache_dir(path: str | None = None) -> str:
    """The persistent compilation cache folder: ``path``, ``$JREG_CACHE_DIR`` or default.

    Raises:
      ValueError: the folder cannot be created or written (one line naming it).
    """
    path = (
        path
        or os.environ.get("JREG_CACHE_DIR")
        or os.path.join(os.path.expanduser("~"), ".cache", "jreg", "jax")
    )
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise ValueError(
            f"compilation cache folder {path!r} is not writable ({e.strerror}); set "
            "JREG_CACHE_DIR to a writable folder."
        ) from None
    return path


def enable_compilation_cache(path: str | None = None) -> str:
    """Turn on JAX's persistent compilation cache, so a rerun does not recompile.

    Args:
      path: cache folder; default ``$JREG_CACHE_DIR`` or ``~/.cache/jreg/jax``.

    Returns:
      The folder used.

    Raises:
      ValueError: the folder is not writable.
    """
    import jax

    path = cache_dir(path)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return path


def setup(*, cache: bool | str = True, all_cores: bool = True) -> dict:
    """Set up this process for jreg's sweeps (call once, before JAX starts its backends).

    Args:
      cache: turn on the persistent compilation cache (True: default folder; a str: that
        folder; False: off).
      all_cores: on CPU, one XLA host device per core (no effect on GPU / TPU devices).

    Returns:
      ``{"backend", "devices", "process_index", "process_count", "cache_dir"}``.

    Raises:
      ValueError: the cache folder is not writable.
    """
    if all_cores and not _jax_started():
        use_all_cpu_cores()
    folder = enable_compilation_cache(cache if isinstance(cache, str) else None) if cache else None
    return describe() | {"cache_dir": folder}


def describe() -> dict:
    """Backend, device count and process index / count of this process."""
    import jax

    return {
        "backend": jax.default_backend(),
        "devices": jax.device_count(),
        "local_devices": jax.local_device_count(),
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
    }


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    timeout_s: int = 120,
    **kwargs,
) -> None:
    """``jax.distributed.initialize`` with a bounded wait and CPU collectives that work.

    On a TPU pod slice or a managed cluster (SLURM, ...) call it with no arguments; on
    CPU processes or GPU hosts of your own pass the coordinator ``host:port``, the
    process count and this process's id. Call before anything else touches JAX.

    Raises:
      ValueError: bad arguments, or the coordinator was not reached in ``timeout_s``
        (one line naming the address), instead of waiting for ever.
    """
    import jax

    if num_processes is not None and (num_processes < 1 or int(num_processes) != num_processes):
        raise ValueError(f"num_processes must be a positive integer, got {num_processes!r}.")
    if process_id is not None and num_processes is not None:
        if not 0 <= process_id < num_processes:
            raise ValueError(f"process_id must lie in [0, {num_processes}), got {process_id}.")
    # Cross-process CPU collectives (the result exchange of a multi-process sweep).
    with contextlib.suppress(Exception):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if coordinator_address and process_id not in (None, 0):
        # JAX's client aborts the whole process (no exception) when it cannot reach the
        # coordinator; find out first, within the same time limit.
        _wait_for(coordinator_address, timeout_s)
    try:
        jax.distributed.initialize(
            coordinator_address,
            num_processes,
            process_id,
            initialization_timeout=timeout_s,
            **kwargs,
        )
    except Exception as e:  # noqa: BLE001 - the runtime's errors carry no stable type
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"could not join the jax.distributed run at {coordinator_address!r} within "
            f"{timeout_s} s: {first[:200]}"
        ) from None


def _wait_for(address: str, timeout_s: float) -> None:
    """Return once ``host:port`` accepts a TCP connection; ValueError after ``timeout_s``."""
    import socket
    import time

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"coordinator_address must be 'host:port', got {address!r}.")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
                return
        except OSError as e:
            if time.monotonic() >= deadline:
                raise ValueError(
                    f"could not join the jax.distributed run at {address!r} within "
                    f"{timeout_s} s: no coordinator answers there ({e.strerror or e}); start "
                    "process 0 first, or check the address."
                ) from None
            time.sleep(0.5)


def is_main_process() -> bool:
    """True on process 0 (the one that draws progress bars and writes files)."""
    import jax

    return jax.process_index() == 0


def reset_peak_memory() -> None:
    """Start a new peak-resident-memory window (Linux; elsewhere nothing happens)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM, the kernel's peak RSS of this process


def peak_memory_mib() -> float | None:
    """Peak resident memory of this process since :func:`reset_peak_memory` (MiB).

    Linux's ``VmHWM``; elsewhere ``ru_maxrss`` (peak since the start); None if unknown.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    try:
        import resource

        scale = 1024 * 1024 if platform.system() == "Darwin" else 1024
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale, 1)
    except (ImportError, OSError):
        return None


def release_memory() -> None:
    """Drop compiled programs and hand freed heap back to the OS (between experiments).

    Every experiment builds its own tasks, so the programs cached by
    :func:`jreg.core.train.sweep` and JAX's jit caches are never reused by the next one; kept,
    they made ``jreg reproduce --all`` grow by ~25-250 MiB per experiment. The
    persistent compilation cache still serves reruns.
    """
    import jax

    from jreg.core import train

    train.clear_cache()
    jax.clear_caches()
    trim_memory()


def trim_memory() -> None:
    """Collect Python's reference cycles and return glibc's freed arenas to the OS (RSS)."""
    gc.collect()
    libc = ctypes.util.find_library("c")
    if libc and platform.system() == "Linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(libc).malloc_trim(0)
