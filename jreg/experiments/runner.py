"""Run an experiment: ``<out>/<stem>.png``, ``<stem>.json``, and ``report.md`` regenerated.

``<stem>`` is the experiment's name, with ``-quick`` for ``--quick`` runs so quick and
full-size results never overwrite each other. Every file is written atomically
(temporary file + ``os.replace``): an interrupted run leaves the old complete file or
the new complete one. ``report.md`` is rebuilt from the JSON files in ``out`` after every
experiment (an index table, then one section per experiment), never appended to.

Configs are plain dicts returned by ``get_config(quick)`` (big_vision's "configs are
code"): derived values are computed in code and ``--set key=value`` overrides are parsed
with the type of the default (:func:`apply_overrides`). We chose this over
ml_collections' ``ConfigDict``: one less dependency, and the same checks (unknown key,
wrong type) in a few lines.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time

import jax
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import jreg  # noqa: E402
from jreg import experiments, train  # noqa: E402


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


def mean_std(x, fmt: str = ".4f", std_fmt: str | None = None) -> str:
    """``"mean ± std"`` over every entry of ``x`` (e.g. seeds), for headline tables.

    Args:
      x: array-like of any shape.
      fmt: format spec of the mean (and of the std unless ``std_fmt`` is given).
      std_fmt: format spec of the standard deviation.
    """
    x = np.asarray(x, np.float64)
    if x.size == 1:  # one seed: no spread to show
        return f"{x.mean():{fmt}}"
    return f"{x.mean():{fmt}} ± {x.std():{std_fmt or fmt}}"


def _fmt(v) -> str:
    if isinstance(v, float):
        v = f"{v:.4g}"
    return str(v).replace("|", "\\|")  # a table cell must not end at a '|'


@contextlib.contextmanager
def atomic_path(path: str):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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


def apply_overrides(config: dict, sets: list[str] | dict | None) -> tuple[dict, dict]:
    """Apply ``key=value`` overrides, each parsed with the type of the config's default.

    Args:
      config: the experiment's config.
      sets: ``["key=value", ...]`` (values as Python literals: ``0.1``, ``(1, 2)``,
        ``True``, strings without quotes) or a dict of already-typed values.

    Returns:
      ``(new config, {key: value})``.

    Raises:
      ValueError: an unknown key or a value of the wrong type (listing the valid keys).
    """
    items = dict(sets) if isinstance(sets, dict) else {}
    for item in sets if isinstance(sets, list) else []:
        if "=" not in item:
            raise ValueError(f"--set needs key=value, got {item!r}.")
        key, raw = item.split("=", 1)
        try:
            items[key.strip()] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            items[key.strip()] = raw
    out = dict(config)
    for key, value in items.items():
        if key not in config:
            valid = ", ".join(sorted(config))
            raise ValueError(f"unknown config key {key!r}; valid keys: {valid}.")
        default = config[key]
        if isinstance(default, bool) or isinstance(value, bool):
            ok = isinstance(value, bool) and isinstance(default, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float))
            value = float(value) if ok else value
        elif isinstance(default, (tuple, list)):
            ok = isinstance(value, (tuple, list))
            value = tuple(value) if ok and isinstance(default, tuple) else value
        else:
            ok = default is None or isinstance(value, type(default))
        if not ok:
            raise ValueError(
                f"config key {key!r} takes a {type(default).__name__} (default {default!r}), "
                f"got {value!r}; valid keys: {', '.join(sorted(config))}."
            )
        out[key] = value
    return out, items


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


def release_memory() -> None:
    """Drop compiled programs between experiments and hand freed heap back to the OS.

    Every experiment builds its own tasks, so the sweep programs cached by
    :func:`jreg.train.sweep` (and JAX's own jit caches) are never reused by the next one;
    kept, they made ``jreg reproduce --all`` grow by ~25-250 MiB per experiment (peak
    ~3 GiB). Measured on ``weight_decay --quick`` run three times: 784 MiB -> 610 MiB
    after ``malloc_trim`` alone -> 316 MiB after also clearing the caches
    (``docs/performance.md``). The persistent compilation cache still serves reruns.
    """
    import ctypes
    import ctypes.util
    import gc

    train._compiled.cache_clear()
    jax.clear_caches()
    gc.collect()
    libc = ctypes.util.find_library("c")
    if libc and platform.system() == "Linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(libc).malloc_trim(0)


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
        after a run completes).

    Returns:
      The JSON record that was written (config, overrides, numbers, headline, version...).
    """
    module = experiments.get(name)
    check_out_dir(out)
    config = dict(module.get_config(quick=quick))
    if seeds is not None:
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
            raise ValueError(f"--seeds must be a positive integer, got {seeds!r}.")
        config["seeds"] = seeds
    config, applied = apply_overrides(config, overrides)
    base = stem(name, quick)
    ckpt = os.path.join(out, ".checkpoints", base)
    if not resume:
        shutil.rmtree(ckpt, ignore_errors=True)
    start = time.perf_counter()
    with train.checkpointing(ckpt):
        numbers = module.compute(config, progress=progress)
    wall = time.perf_counter() - start
    headline = numbers.pop("headline")
    notes = numbers.pop("notes", [])
    fig = module.figure(numbers, config)
    with atomic_path(os.path.join(out, f"{base}.png")) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
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
        "jreg_version": jreg.__version__,
        "git_commit": _git_commit(),
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "platform": platform.platform(),
    }
    write_text(os.path.join(out, f"{base}.json"), json.dumps(record, indent=1))
    shutil.rmtree(ckpt, ignore_errors=True)
    write_report(out)
    return record


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
        "| experiment | size | wall time (s) | commit |",
        "|---|---|---|---|",
    ]
    for r in records:
        base = stem(r["name"], r.get("quick", False))
        size = "quick" if r.get("quick") else "full"
        commit = (r.get("git_commit") or "?")[:10]
        lines.append(f"| [{r['name']}](#{base}) | {size} | {r['wall_time_s']:.1f} | {commit} |")
    lines.append("")
    for r in records:
        base = stem(r["name"], r.get("quick", False))
        lines += [f'<a id="{base}"></a>', f"## {base}", "", r.get("description", ""), ""]
        lines += [f"![{base}]({base}.png)", "", "| quantity | value |", "|---|---|"]
        lines += [f"| {_fmt(k)} | {_fmt(v)} |" for k, v in r["headline"].items()]
        lines += [f"| wall time (s) | {r['wall_time_s']:.1f} |", ""]
        lines += [f"- {note}" for note in r.get("notes", [])] + [""]
    text = "\n".join(lines)
    write_text(os.path.join(out, "report.md"), text)
    return text
