"""Streams of training batches: pure ``(data, key, step) -> batch`` functions.

A :class:`Stream` says which batch a task trains on at global step ``t``. It is pure: the
same ``(data, key, t)`` always gives the same batch, so a sweep can resume from a
checkpoint at any step and get bit-identical batches. Streams are written in two parts
so that per-epoch work (a permutation of ``N`` examples) runs once per epoch instead of
once per step: ``prepare(data, key, block)`` computes what a block of ``block_size(data)``
consecutive steps shares, ``take(data, prepared, i)`` returns the ``i``-th batch of the
block, and ``stream(data, key, t) == take(data, prepare(data, key, t // b), t % b)``.

The streams here:

* :func:`epochs` — shuffled minibatches, a fresh permutation every epoch
  (``permutation(fold_in(key, epoch), N)``, the remainder dropped);
* :func:`full_batch` — the whole training split every step;
* :func:`generated` — batches drawn from ``fold_in(key, step)`` by a function
  (GAN latents, synthetic data, transitions of a simulated environment);
* :func:`task_sequence` — continual learning: task ``t // steps_per_task`` is live,
  its batches come from an inner stream, and the batch says which task it is.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jreg.util import checks

PyTree = Any


@dataclasses.dataclass(frozen=True)
class Stream:
    """A pure batch stream ``(data, key, step) -> batch`` split into prepare / take.

    Attributes:
      prepare: ``(data, key, block) -> prepared`` (``block`` an int32 scalar, may be traced).
      take: ``(data, prepared, i) -> batch`` for ``0 <= i < block_size(data)``.
      block_size: ``data -> int``, steps that share one ``prepare`` (static).
      name: short description, recorded in checkpoints and results.
    """

    prepare: Callable[[PyTree, jax.Array, jax.Array], PyTree]
    take: Callable[[PyTree, PyTree, jax.Array], PyTree]
    block_size: Callable[[PyTree], int]
    name: str

    def __call__(self, data: PyTree, key: jax.Array, step) -> PyTree:
        """The batch at global step ``step`` (int scalar)."""
        b = self.block_size(data)
        step = jnp.asarray(step, jnp.int32)
        return self.take(data, self.prepare(data, key, step // b), step % b)


def num_examples(split: PyTree) -> int:
    """Leading size N shared by every array of a data split; a clear error otherwise."""
    sizes = {int(jnp.shape(a)[0]) for a in jax.tree.leaves(split) if jnp.ndim(a) > 0}
    if len(sizes) != 1:
        raise ValueError(f"every array of a data split needs the same leading size; got {sizes}.")
    n = sizes.pop()
    if n == 0:
        raise ValueError("the training split is empty (0 examples).")
    return n


def shuffle(key: jax.Array, n: int) -> jax.Array:
    """A uniformly random permutation of ``arange(n)``, fast on XLA:CPU: (n,) int32.

    The algorithm of ``jax.random.permutation`` (sort by random keys, repeated for enough
    rounds that ties, which a stable sort leaves in order, do not bias the result;
    Knuth, TAOCP vol. 2, 3.4.2), but each round sorts ONE uint32 array: the high
    ``32 - k`` bits are random and the low ``k = ceil(log2 n)`` bits carry the index.
    XLA:CPU sorts a single unsigned array with its fast path and a key/value pair with a
    comparator call per comparison; for n = 4,000 one shuffle takes ~0.17 ms instead of
    ~1.4 ms (``docs/performance.md``). Rounds: ``ceil(3 ln n / ((32 - k) ln 2))``, the
    criterion ``jax.random`` uses for its 32-bit keys. Falls back to
    ``jax.random.permutation`` for n > 2**24 (too few random bits left). Draws differ
    from ``jax.random.permutation(key, n)``.

    Args:
      key: a PRNG key.
      n: length (static int >= 1).
    """
    checks.check_positive_int("n", n)
    k = max(1, math.ceil(math.log2(n)))
    if k > 24:
        return jax.random.permutation(key, n)
    rounds = max(1, math.ceil(3 * math.log(max(n, 2)) / ((32 - k) * math.log(2))))
    low = jnp.uint32((1 << k) - 1)
    idx = jnp.arange(n, dtype=jnp.uint32)
    for r in range(rounds):
        bits = jax.random.bits(jax.random.fold_in(key, r), (n,), jnp.uint32)
        idx = jnp.sort((bits & ~low) | idx) & low
    return idx.astype(jnp.int32)


@functools.cache
def epochs(batch_size: int, *, split: str = "train", permutation: Callable | None = None) -> Stream:
    """Shuffled minibatches of ``data[split]``: one permutation per epoch.

    Epoch ``e`` uses ``permutation(fold_in(key, e), N)`` (default :func:`shuffle`) and its
    first ``(N // B) * B`` entries as ``N // B`` batches; the remainder is dropped. Every
    leaf of ``data[split]`` (arrays with leading axis N) is gathered with the same indices.
    Calls with equal arguments return the same (cached) stream, so repeated sweeps reuse
    their compiled programs.

    Args:
      batch_size: B, at most N.
      split: key of the training split in ``data``.
      permutation: ``(key, N) -> (N,) int`` permutation; ``jax.random.permutation``
        gives the batch order of jreg 0.1 (slower on CPU, see :func:`shuffle`).

    Returns:
      A :class:`Stream` with ``block_size = N // B`` (one epoch per block).
    """
    checks.check_positive_int("batch_size", batch_size)
    permute = shuffle if permutation is None else permutation

    def block_size(data):
        n = num_examples(data[split])
        if batch_size > n:
            raise ValueError(f"batch_size={batch_size} exceeds the {n} training examples.")
        return n // batch_size

    def prepare(data, key, epoch):
        n = num_examples(data[split])
        perm = permute(jax.random.fold_in(key, epoch), n)
        spe = n // batch_size
        return perm[: spe * batch_size].reshape(spe, batch_size)

    def take(data, idx, i):
        return jax.tree.map(lambda a: a[idx[i]], data[split])

    extra = "" if permutation is None else f", {getattr(permutation, '__name__', 'perm')}"
    return Stream(prepare, take, block_size, f"epochs(batch_size={batch_size}{extra})")


@functools.cache
def full_batch(*, split: str = "train") -> Stream:
    """The whole ``data[split]`` at every step (full-batch gradient descent)."""
    return Stream(
        prepare=lambda data, key, step: None,
        take=lambda data, prepared, i: data[split],
        block_size=lambda data: 1,
        name="full_batch",
    )


def generated(fn: Callable[[jax.Array, jax.Array], PyTree], *, name: str = "") -> Stream:
    """Batches drawn from the key and the step: ``batch_t = fn(fold_in(key, t), t)``.

    For data that is sampled rather than stored: GAN latents and real samples of a
    known distribution, synthetic regression data, transitions of an environment
    sampled from a generative model. ``data`` is not read (pass ``{}`` or evaluation
    data).

    Args:
      fn: ``(key, step) -> batch`` (pure).
      name: description for checkpoints; defaults to the function's name.
    """
    return Stream(
        prepare=lambda data, key, step: fn(jax.random.fold_in(key, step), step),
        take=lambda data, prepared, i: prepared,
        block_size=lambda data: 1,
        name=f"generated({name or getattr(fn, '__name__', 'fn')})",
    )


def task_sequence(inner: Stream, *, steps_per_task: int, split: str = "tasks") -> Stream:
    """Continual learning: tasks ``0, 1, ...`` one after another, ``steps_per_task`` each.

    ``data[split]`` holds every task's training data stacked on a leading task axis
    (e.g. ``{"x": (T, N, d), "y": (T, N)}``). At step ``t`` task ``k = t //
    steps_per_task`` is live: the batch is ``inner``'s batch from task ``k``'s data
    (inner keys ``fold_in(key, k)``, inner steps counted from the task's start), with two
    entries added: ``"task"`` (k, int32) and ``"task_step"`` (steps since the task
    started, 0 at a switch), so a task's ``step`` can update anchors or Fisher
    information when a new task begins. After the last task the last one stays live.

    Args:
      inner: stream over one task's data, read as ``{"train": task_data}``; its block
        size must divide ``steps_per_task``.
      steps_per_task: training steps per task.
      split: key of the stacked task data in ``data``.
    """
    checks.check_positive_int("steps_per_task", steps_per_task)

    def task_data(data, k):
        return {"train": jax.tree.map(lambda a: a[k], data[split])}

    def block_size(data):
        first = task_data(data, 0)
        b = inner.block_size(first)
        if steps_per_task % b:
            raise ValueError(
                f"steps_per_task={steps_per_task} must be a multiple of the inner stream's "
                f"block size {b} ({inner.name})."
            )
        return b

    def prepare(data, key, block):
        b = block_size(data)
        num_tasks = jax.tree.leaves(data[split])[0].shape[0]
        blocks_per_task = steps_per_task // b
        k = jnp.minimum(block // blocks_per_task, num_tasks - 1)
        local = block - k * blocks_per_task
        one = task_data(data, k)
        return k, local * b, inner.prepare(one, jax.random.fold_in(key, k), local)

    def take(data, prepared, i):
        k, start, inner_prepared = prepared
        batch = inner.take(task_data(data, k), inner_prepared, i)
        return {**batch, "task": k.astype(jnp.int32), "task_step": (start + i).astype(jnp.int32)}

    return Stream(prepare, take, block_size, f"task_sequence({inner.name}, {steps_per_task})")
