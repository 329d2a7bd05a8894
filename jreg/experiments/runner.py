"""Run an experiment: ``<out>/<stem>.png``, ``<stem>.json``, and ``report.md`` regenerated.

``<stem>`` is the experiment's name, with ``-quick`` for ``--quick`` runs so quick and
full-size results never overwrite each other. Every file is written atomically
(temporary file + ``os.replace``): an interrupted run leaves the old complete file or
the new complete one. ``report.md`` is rebuilt from the JSON files in ``out`` after every
experiment (an index table, then one section per experiment), never appended to.

Configs and their checks live in :mod:`jreg.experiments.configs`.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time

import jax
import numpy as np

import jreg
from jreg import experiments
from jreg.core import runtime
from jreg.experiments import kit
from jreg.experiments.configs import prepare_config


def to_json(x):
    """Convert numpy/jax containers to plain JSON types."""
    if isinstance(x, dict):
        return {str(k): to_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_json(v) for v in x]
    if isinstance(x, (jax.Array, np.ndarray, np.generic)):
        arr = np.asarray(x)
        return to_json(arr.tolist()) if arr.ndim else to_json(arr.item())
    if isinstance(x, float) and not np.isfinite(x):
        return str(x)
    return x


def _fmt(v) -> str:
    if isinstance(v, float):
        v = f"{v:.4g}"
    # A table cell must not end at a '|' nor span lines (a newline ends the table row).
    return " ".join(str(v).split()).replace("|", "\\|")


class WriteError(OSError):
    """An output file could not be written (disk full, permissions); one-line message."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    The file gets the mode a plain ``open`` would give (``0o666 & ~umask``; ``mkstemp``
    alone makes it 0600). The temporary name carries this process's id
    (``.tmp-<pid>-...``) so :func:`clean_stale_tmp` can remove what a killed run left.

    Raises:
      WriteError: the file could not be written (the message names it and the reason).
    """
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(
            dir=folder, prefix=f".tmp-{os.getpid()}-", suffix=os.path.basename(path)
        )
        os.close(fd)
    except OSError as e:
        raise WriteError(f"could not write {path}: {e.strerror or e}.") from None
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as e:
        if isinstance(e, WriteError):
            raise
        raise WriteError(f"could not write {path}: {e.strerror or e}.") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


_TMP = re.compile(r"\.tmp-(\d+)-")


def clean_stale_tmp(out: str, *, older_than_s: float = 3600.0) -> list[str]:
    """Remove ``.tmp-*`` files a killed run left in ``out``; returns the names removed.

    A ``.tmp-<pid>-*`` file is stale when no process ``pid`` runs; an untagged ``.tmp-*``
    file (older jreg) when it is older than ``older_than_s``.
    """
    removed = []
    for name in os.listdir(out):
        path = os.path.join(out, name)
        if not name.startswith(".tmp-") or not os.path.isfile(path):
            continue
        m = _TMP.match(name)
        if m:
            pid = int(m.group(1))
            if pid == os.getpid():
                continue
            try:
                os.kill(pid, 0)
                continue  # that run is alive: its file is not stale
            except ProcessLookupError:
                pass
            except PermissionError:
                continue  # alive, another user's
        elif time.time() - os.path.getmtime(path) < older_than_s:
            continue
        with contextlib.suppress(OSError):
            os.remove(path)
            removed.append(name)
    return removed


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def check_out_dir(out: str) -> str:
    """Create ``out`` if needed and check it is a writable folder, before any training."""
    if not out:
        raise ValueError("--out must name a folder, got an empty string.")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out!r} is a file, not a folder.")
    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise ValueError(f"--out {out!r} is not writable: {e.strerror}.") from None
    return out


def _git_commit() -> str | None:
    here = os.path.dirname(os.path.abspath(jreg.__file__))
    try:
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def stem(name: str, quick: bool) -> str:
    """File stem of an experiment's outputs: ``name`` or ``name-quick``."""
    return f"{name}-quick" if quick else name


def run_experiment(
    name: str,
    *,
    quick: bool = False,
    seeds: int | None = None,
    out: str = "results",
    progress: bool = True,
    overrides: list[str] | dict | None = None,
    resume: bool = False,
) -> dict:
    """Run one experiment by name; write its figure and JSON, then regenerate the report.

    Args:
      name: one of :func:`jreg.experiments.available`.
      quick: tiny sizes for smoke tests (seconds), else the reference setup.
      seeds: number of seeds (default from the config, >= 5 at full size).
      out: output folder (created; checked writable before training).
      progress: show progress bars.
      overrides: config overrides (``["key=value"]`` or a dict), type-checked.
      resume: continue from the checkpoints an interrupted run left in
        ``out/.checkpoints/<stem>`` (without it, a fresh run; checkpoints are removed
        after a run completes); an experiment whose JSON in ``out`` already holds this
        config is not run again (its record is returned, with ``"skipped": True``).

    Returns:
      The JSON record that was written (config, overrides, numbers, headline, version...).
    """
    module = experiments.get(name)
    check_out_dir(out)
    main = runtime.is_main_process()  # only process 0 writes files
    if main:
        clean_stale_tmp(out)
    config, applied = prepare_config(name, quick=quick, seeds=seeds, overrides=overrides)
    if resume and (rec := finished(name, quick=quick, out=out, config=config)) is not None:
        return {**rec, "skipped": True}
    base = stem(name, quick)
    ckpt = os.path.join(out, ".checkpoints", base)
    if not resume and main:
        shutil.rmtree(ckpt, ignore_errors=True)
    if resume:
        _check_resumed_config(ckpt, config)
    if main:
        os.makedirs(ckpt, exist_ok=True)
        write_text(os.path.join(ckpt, "config.json"), json.dumps(to_json(config), sort_keys=True))
    runtime.reset_peak_memory()
    start = time.perf_counter()
    numbers = module.compute(config, kit.Run(progress=progress and main, checkpoint_dir=ckpt))
    wall = time.perf_counter() - start
    headline = numbers.pop("headline")
    notes = numbers.pop("notes", [])
    record = {
        "name": name,
        "description": module.DESCRIPTION,
        "quick": quick,
        "config": to_json(config),
        "overrides": to_json(applied),
        "headline": to_json(headline),
        "numbers": to_json(numbers),
        "notes": notes,
        "wall_time_s": round(wall, 2),
        "peak_rss_mib": runtime.peak_memory_mib(),
        "jreg_version": jreg.__version__,
        "git_commit": _git_commit(),
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "platform": platform.platform(),
    }
    if not main:
        return record
    # The numbers first: a figure that fails (or a full disk) must not lose them.
    json_path = os.path.join(out, f"{base}.json")
    write_text(json_path, json.dumps(record, indent=1))
    shutil.rmtree(ckpt, ignore_errors=True)
    with contextlib.suppress(OSError):  # the parent, once no experiment is left in it
        os.rmdir(os.path.dirname(ckpt))
    figure_error = None
    try:
        fig = module.figure(numbers, config)
        try:
            with atomic_path(os.path.join(out, f"{base}.png")) as tmp:
                fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        finally:
            fig.clear()
    except Exception as e:  # noqa: BLE001 - reported in one line below, numbers are safe
        figure_error = e if isinstance(e, WriteError) else f"{type(e).__name__}: {e}"
    write_report(out)
    if figure_error is not None:
        raise WriteError(
            f"the figure of {name} failed ({figure_error}); the numbers are in {json_path}."
        )
    return record


def _check_resumed_config(ckpt: str, config: dict) -> None:
    """Refuse to resume checkpoints written with another config (naming the keys)."""
    path = os.path.join(ckpt, "config.json")
    if not os.path.exists(path):
        return
    with open(path) as f:
        saved = json.load(f)
    now = json.loads(json.dumps(to_json(config), sort_keys=True))
    diff = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if diff:
        shown = "; ".join(f"{k}: {saved.get(k)!r} then, {now.get(k)!r} now" for k in diff[:4])
        raise ValueError(
            f"--resume: the checkpoints in {ckpt} were written with another config ({shown}); "
            "rerun with the same --set/--seeds, or without --resume to start over."
        )


def finished(name: str, *, quick: bool, out: str, config: dict) -> dict | None:
    """The JSON record of ``name`` already in ``out`` for this exact config, if any."""
    path = os.path.join(out, f"{stem(name, quick)}.json")
    try:
        with open(path) as f:
            rec = json.load(f)
    except (OSError, json.JSONDecodeError):
        return None
    same = rec.get("config") == json.loads(json.dumps(to_json(config)))
    return rec if same and rec.get("jreg_version") == jreg.__version__ else None


def write_report(out: str) -> str:
    """Rebuild ``out/report.md`` from the experiment JSON files in ``out`` (atomically).

    Returns:
      The report's text: an index table, then one section per JSON file, in the order of
      :data:`jreg.experiments.NAMES` (full-size before quick runs).
    """
    records = []
    for fname in os.listdir(out):
        if fname.endswith(".json") and not fname.startswith("."):
            try:
                with open(os.path.join(out, fname)) as f:
                    rec = json.load(f)
            except (OSError, json.JSONDecodeError):
                continue
            if isinstance(rec, dict) and {"name", "headline"} <= set(rec):
                records.append(rec)
    order = {n: i for i, n in enumerate(experiments.NAMES)}
    records.sort(key=lambda r: (order.get(r["name"], len(order)), r.get("quick", False)))
    lines = [
        "# jreg results",
        "",
        "| experiment | size | wall time (s) | peak RSS (MiB) | commit |",
        "|---|---|---|---|---|",
    ]
    for r in records:
        base = stem(r["name"], r.get("quick", False))
        size = "quick" if r.get("quick") else "full"
        commit = (r.get("git_commit") or "?")[:10]
        rss = r.get("peak_rss_mib")
        rss = "?" if rss is None else f"{rss:.0f}"
        lines.append(
            f"| [{r['name']}](#{base}) | {size} | {r['wall_time_s']:.1f} | {rss} | {commit} |"
        )
    lines.append("")
    for r in records:
        base = stem(r["name"], r.get("quick", False))
        lines += [f'<a id="{base}"></a>', f"## {base}", "", r.get("description", ""), ""]
        lines += [f"![{base}]({base}.png)", "", "| quantity | value |", "|---|---|"]
        lines += [f"| {_fmt(k)} | {_fmt(v)} |" for k, v in r["headline"].items()]
        lines += [f"| wall time (s) | {r['wall_time_s']:.1f} |", ""]
        lines += [f"- {' '.join(str(note).split())}" for note in r.get("notes", [])] + [""]
    text = "\n".join(lines)
    write_text(os.path.join(out, "report.md"), text)
    return text
