"""Where a sweep's configs run: device meshes, global arrays, host joins, memory chunks.

Internal to :mod:`jreg.core.train`. The flat config axis (H·S configs) is split into *chunks*
run one after another (each chunk one call of the same compiled program, sized to a
memory budget), and a chunk's configs are split over the devices of a 1-D mesh (axis
``"cfg"``) by ``shard_map``: each device trains its own block and nothing crosses
devices. Results come back to the host per device shard and are joined in NumPy; with
several processes, one ``process_allgather`` is the only exchange.
"""

from __future__ import annotations

import functools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from jreg.util import pytrees

CFG = jax.sharding.PartitionSpec("cfg")


def config_sharding(devices=None) -> jax.sharding.NamedSharding:
    """A ``NamedSharding`` that splits the sweep's config axis over ``devices`` (default all).

    With several processes (``jreg.core.runtime.initialize``, a TPU pod slice, GPU hosts)
    ``jax.devices()`` lists every process's devices and a sweep spreads its configs over
    all of them.
    """
    devices = np.asarray(jax.devices() if devices is None else devices)
    return jax.sharding.NamedSharding(jax.sharding.Mesh(devices.reshape(-1), ("cfg",)), CFG)


def mesh_for(sharding, num_configs: int) -> jax.sharding.Mesh | None:
    """The 1-D ``("cfg",)`` mesh the configs are split over, or None for one device."""
    if sharding is None:
        return None
    if isinstance(sharding, str):
        if sharding != "auto":
            raise ValueError(f"sharding must be 'auto', None or a Mesh, got {sharding!r}.")
        devices = jax.devices()
        if jax.process_count() == 1:  # every process must take part in a multi-host sweep
            devices = devices[: min(len(devices), num_configs)]
        if len(devices) < 2:
            return None
        sharding = config_sharding(devices)
    if isinstance(sharding, jax.sharding.NamedSharding):
        sharding = sharding.mesh
    if not isinstance(sharding, jax.sharding.Mesh):
        raise ValueError(
            "sharding must be 'auto', None, a jax.sharding.Mesh or a NamedSharding, got "
            f"{type(sharding).__name__}."
        )
    return jax.sharding.Mesh(np.asarray(sharding.devices).reshape(-1), ("cfg",))


def put(x, mesh, split: bool) -> jax.Array:
    """A host array as a global array: split over ``mesh``'s configs or replicated.

    Built per device from the host copy (``make_array_from_callback``), which also works
    when the mesh spans other processes' devices.
    """
    if mesh is None:
        return jnp.asarray(x)
    sharding = jax.sharding.NamedSharding(mesh, CFG if split else jax.sharding.PartitionSpec())
    if isinstance(x, jax.Array) and x.sharding == sharding:
        return x
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def host(x) -> np.ndarray:
    """The whole of a (config-sharded) array on the host, without a device collective."""
    if x.is_fully_addressable:
        out = np.empty(x.shape, x.dtype)
        for shard in x.addressable_shards:
            out[shard.index] = np.asarray(shard.data)
        return out
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def to_host(tree, num: int):
    """The first ``num`` configs of every leaf, on the host (keys as ``(key data, impl)``)."""

    def one(x):
        if x is None:
            return None
        if pytrees.is_key(x):
            return _HostKeys(host(jax.random.key_data(x))[:num], jax.random.key_impl(x))
        return host(x)[:num]

    return jax.tree.map(one, tree)


class _HostKeys:
    """Key data on the host, re-wrapped as typed keys by :func:`from_host`."""

    def __init__(self, data, impl):
        self.data, self.impl = data, impl


def join_on_host(parts: list, shape: tuple):
    """Concatenate host chunks along configs, reshape to ``shape``, put on the device."""

    def one(*xs):
        if xs[0] is None:
            return None
        if isinstance(xs[0], _HostKeys):
            data = np.concatenate([x.data for x in xs])
            return jax.random.wrap_key_data(data.reshape(shape + data.shape[1:]), impl=xs[0].impl)
        y = np.concatenate(xs)
        return jnp.asarray(y.reshape(shape + y.shape[1:]))

    return jax.tree.map(one, *parts, is_leaf=lambda x: isinstance(x, _HostKeys))


@functools.lru_cache(maxsize=8)
def concat_program(mesh):
    """Join history chunks along time, each device its own configs (no collective)."""
    concat = lambda *xs: jax.tree.map(lambda *ys: jnp.concatenate(ys, axis=1), *xs)
    if mesh is None:
        return jax.jit(concat)
    return jax.jit(jax.shard_map(concat, mesh=mesh, in_specs=CFG, out_specs=CFG, check_vma=False))


def available_memory() -> int:
    """Bytes a sweep may use: the device's limit (GPU/TPU), else half of free host RAM."""
    stats = jax.local_devices()[0].memory_stats() or {}
    if "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0)) * jax.local_device_count()
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        return info["MemAvailable"] // 2
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4


def program_bytes(lowered_fn, devices: int, per_device: int, history_bytes: float) -> float:
    """Peak bytes of one device running ``per_device`` configs (XLA's memory analysis)."""
    m = lowered_fn(per_device * devices).compile().memory_analysis()
    peak = m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
    return peak + m.temp_size_in_bytes + history_bytes * per_device


def chunk_size(num_configs: int, devices: int, budget, lowered_fn, history_bytes: float) -> int:
    """Configs per chunk so that one chunk fits in ``budget`` bytes (all local devices).

    Peak memory is affine in the configs per device; two compiles (1 and 2 per device)
    give its intercept (data, code) and slope (one config's state, optimizer state,
    activations and history). ``budget=None``: all configs in one chunk.
    """
    if budget is None:
        return num_configs
    if budget == "auto":
        budget = available_memory()
    if not isinstance(budget, (int, float)) or budget <= 0:
        raise ValueError(f"memory_budget must be a positive number of bytes, got {budget!r}.")
    local = max(1, devices // jax.process_count())
    per_device_budget = budget / local
    one = program_bytes(lowered_fn, devices, 1, history_bytes)
    two = program_bytes(lowered_fn, devices, 2, history_bytes)
    slope, base = max(two - one, 1.0), one - max(two - one, 1.0)
    fit = math.floor((per_device_budget - base) / slope)
    if fit < 1:
        raise ValueError(
            f"memory_budget={budget:.3g} bytes holds no config: one config per device needs "
            f"{one / 2**20:.1f} MiB ({base / 2**20:.1f} MiB shared data and code + "
            f"{slope / 2**20:.2f} MiB per config) on each of {local} devices."
        )
    return min(num_configs, fit * devices)
