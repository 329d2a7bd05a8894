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
import numpy as np

import jreg
from jreg import experiments, runtime, train


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
    config = dict(module.get_config(quick=quick))
    if seeds is not None:
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
            raise ValueError(f"--seeds must be a positive integer, got {seeds!r}.")
        config["seeds"] = seeds
    config, applied = apply_overrides(config, overrides)
    if resume and (rec := finished(name, quick=quick, out=out, config=config)) is not None:
        return {**rec, "skipped": True}
    base = stem(name, quick)
    ckpt = os.path.join(out, ".checkpoints", base)
    main = runtime.is_main_process()  # only process 0 writes files
    if not resume and main:
        shutil.rmtree(ckpt, ignore_errors=True)
    if resume:
        _check_resumed_config(ckpt, config)
    if main:
        os.makedirs(ckpt, exist_ok=True)
        write_text(os.path.join(ckpt, "config.json"), json.dumps(to_json(config), sort_keys=True))
    start = time.perf_counter()
    with train.checkpointing(ckpt):
        numbers = module.compute(config, progress=progress and main)
    wall = time.perf_counter() - start
    headline = numbers.pop("headline")
    notes = numbers.pop("notes", [])
    fig = module.figure(numbers, config)
    if main:
        with atomic_path(os.path.join(out, f"{base}.png")) as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    fig.clear()
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
    if main:
        write_text(os.path.join(out, f"{base}.json"), json.dumps(record, indent=1))
        shutil.rmtree(ckpt, ignore_errors=True)
        with contextlib.suppress(OSError):  # the parent, once no experiment is left in it
            os.rmdir(os.path.dirname(ckpt))
        write_report(out)
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
