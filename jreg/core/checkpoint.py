"""Checkpoints of a sweep's whole carry with orbax-checkpoint, for bit-identical resume.

A checkpoint holds everything the next segment of :func:`jreg.core.train.sweep` reads: the
loop carry (task state, best state, early-stopping counters, step), the history so far,
the number of segments done and a JSON description of the run (the config). PRNG keys
inside the state are stored as key data (``jax.random.key_data``) and re-wrapped on
restore. orbax writes each checkpoint into a temporary folder and renames it when
complete, so a run killed mid-write leaves the previous checkpoint as the latest one; a
half-written folder is never read. Ctrl-C during a save is held until the save is done
(orbax writes from helper threads that must not outlive an interrupted interpreter).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import signal
import threading
import warnings
from typing import Any

import jax
import numpy as np

from jreg.util import pytrees

PyTree = Any


def _manager(directory: str):
    import orbax.checkpoint as ocp  # heavy import, only when checkpointing

    options = ocp.CheckpointManagerOptions(max_to_keep=2, enable_async_checkpointing=False)
    return ocp, ocp.CheckpointManager(os.path.abspath(directory), options=options)


def _arrays(tree: PyTree) -> dict[str, jax.Array]:
    """The leaves by index, keys as key data; sharded arrays stay sharded (orbax writes
    each process's own shards: no host copy of what other processes hold)."""
    leaves = jax.tree.leaves(tree)
    return {
        f"{i:05d}": jax.random.key_data(x) if pytrees.is_key(x) else x for i, x in enumerate(leaves)
    }


@contextlib.contextmanager
def deferred_interrupt():
    """Hold SIGINT (Ctrl-C) inside the block and raise ``KeyboardInterrupt`` after it.

    orbax saves through helper threads and an asyncio loop; an interrupt that unwinds the
    main thread mid-save lets the interpreter shut down under them (``cannot schedule new
    futures after shutdown`` tracebacks after jreg's one-line message). Only the main
    thread receives signals, so elsewhere, or where SIGINT has no Python handler, this
    does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # a handler installed outside Python: leave it alone
        yield
        return
    received = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def save(directory: str, segment: int, tree: PyTree, config: dict) -> None:
    """Save ``tree`` (any pytree of arrays, keys allowed) after ``segment`` segments.

    Args:
      directory: checkpoint folder (created).
      segment: number of segments completed (the checkpoint's step number).
      tree: the carry and history.
      config: JSON-serialisable description of the run, checked on restore.
    """
    with deferred_interrupt():
        ocp, mngr = _manager(directory)
        if segment in mngr.all_steps():  # a damaged one that a resume skipped
            mngr.delete(segment)
        mngr.save(
            segment,
            args=ocp.args.Composite(
                leaves=ocp.args.StandardSave(_arrays(tree)), config=ocp.args.JsonSave(config)
            ),
            force=True,
        )
        mngr.wait_until_finished()
        mngr.close()


def restore(directory: str, like, config: dict) -> tuple[int, PyTree] | None:
    """Restore the latest complete checkpoint, or None if there is none.

    Args:
      directory: checkpoint folder.
      like: ``segments_done -> pytree`` of ``jax.ShapeDtypeStruct`` (with shardings) to
        restore into; key-typed leaves are re-wrapped as keys.
      config: the run's description; must equal the saved one.

    Returns:
      ``(segments_done, tree)`` of arrays laid out as ``like`` says (keys as typed keys).

    A checkpoint that cannot be read (truncated files, deleted parts) is skipped with a
    warning and the one before it is used.

    Raises:
      ValueError: the folder holds a checkpoint of a different run (naming what
        differs), or no checkpoint in it can be read (naming the folder and the fix).
    """
    if not os.path.isdir(directory):
        return None
    with deferred_interrupt():
        return _restore_latest(directory, like, config)


def _restore_latest(directory: str, like, config: dict) -> tuple[int, PyTree] | None:
    ocp, mngr = _manager(directory)
    try:
        steps = sorted(mngr.all_steps(), reverse=True)
        problems = []
        for step in steps:  # the latest readable one; a damaged one falls back
            try:
                tree = _restore_step(ocp, mngr, step, like, config, directory)
            except _DifferentRun:
                raise
            except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise many types
                problems.append(f"{step}: {type(e).__name__}")
                continue
            if problems:
                warnings.warn(
                    f"checkpoint {directory}/{problems[0].split(':')[0]} is unreadable; "
                    f"resumed from {directory}/{step} instead.",
                    stacklevel=3,
                )
            return step, tree
    finally:
        mngr.close()
    if problems:
        raise ValueError(
            f"every checkpoint in {directory} is unreadable ({', '.join(problems)}); delete "
            "the folder (or rerun without --resume) to start over."
        )
    return None


class _DifferentRun(ValueError):
    pass


def _restore_step(ocp, mngr, step, like, config, directory):
    saved = mngr.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]
    want = json.loads(json.dumps(config))
    if saved != want:
        diff = sorted(k for k in set(saved) | set(want) if saved.get(k) != want.get(k))
        raise _DifferentRun(
            f"checkpoint_dir {directory!r} holds a different run (differs in {diff}); "
            "use another folder or delete it."
        )
    leaves, treedef = jax.tree.flatten(like(step))
    key_shape = jax.random.key_data(jax.random.key(0)).shape
    abstract = {
        f"{i:05d}": jax.ShapeDtypeStruct(
            x.shape + (key_shape if pytrees.is_key(x) else ()),
            np.uint32 if pytrees.is_key(x) else x.dtype,
            sharding=getattr(x, "sharding", None),
        )
        for i, x in enumerate(leaves)
    }
    got = mngr.restore(step, args=ocp.args.Composite(leaves=ocp.args.StandardRestore(abstract)))[
        "leaves"
    ]
    out = [
        jax.random.wrap_key_data(got[f"{i:05d}"]) if pytrees.is_key(x) else got[f"{i:05d}"]
        for i, x in enumerate(leaves)
    ]
    return jax.tree.unflatten(treedef, out)


def fingerprint(fun, *args) -> str:
    """Digest of the program ``fun(*args)`` traces to: its jaxpr and constants' values.

    Covers what determines a run beyond its arguments: the task's code, its optimizer and
    constants, the stream. Object addresses in the printout are dropped.
    """
    traced = fun.trace(*args)
    digest = hashlib.sha256(re.sub(r" at 0x[0-9a-f]+", "", str(traced.jaxpr)).encode())
    for c in traced.jaxpr.consts:
        if hasattr(c, "shape"):
            arr = jax.random.key_data(c) if pytrees.is_key(c) else c
            digest.update(np.ascontiguousarray(np.asarray(arr)).tobytes())
        else:
            digest.update(repr(c).encode())
    return digest.hexdigest()[:16]


def data_digest(data) -> str:
    """Checksum of every data leaf's values, shapes and dtypes."""
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(data):
        arr = np.ascontiguousarray(np.asarray(leaf))
        digest.update(f"{arr.shape}{arr.dtype}".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()[:16]


def describe_run(task, stream, plan, static, hparams, seeds, data, digest, programs) -> dict:
    """JSON description of a run (what a checkpoint must match to be resumed).

    Args:
      task, stream, plan, static: the sweep's task, stream, loop plan, unswept hparams.
      hparams: swept values per config; seeds: seed per config (the chunk's configs).
      data: the data pytree (its shapes); digest: :func:`data_digest` of its values.
      programs: fingerprints of the compiled init and segment programs.
    """
    shapes = jax.tree.map(lambda a: [list(a.shape), str(a.dtype)], data)
    return json.loads(
        json.dumps(
            {
                "task": task.name,
                "stream": stream.name,
                "plan": dataclasses.asdict(plan),
                "static_hparams": dict(static),
                "hparams": {k: np.asarray(v).tolist() for k, v in hparams.items()},
                "seeds": np.asarray(seeds).tolist(),
                "data": jax.tree.leaves(shapes, is_leaf=lambda x: isinstance(x, list)),
                "data_values": digest,
                "programs (task code, optimizer, stream)": programs,
            },
            default=str,
        )
    )
