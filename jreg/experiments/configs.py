"""Experiment configs: ``--set`` overrides parsed with the defaults' types, and every value
checked in the config's own terms before anything trains (one clear ``ValueError``).

Configs are plain dicts returned by ``get_config(quick)`` (big_vision's "configs are
code"); :func:`prepare_config` builds the config a run uses (defaults, ``--seeds``,
overrides) and checks it. We chose plain dicts over ml_collections' ``ConfigDict``: one
less dependency, and the same checks (unknown key, wrong type) in a few lines.
"""

from __future__ import annotations

import ast

import numpy as np

from jreg import experiments
from jreg.util import checks


def _parse_sets(sets: list[str] | dict | None) -> dict:
    """``["key=value", ...]`` (Python literals, else strings) or a dict -> ``{key: value}``."""
    items = dict(sets) if isinstance(sets, dict) else {}
    for item in sets if isinstance(sets, list) else []:
        if "=" not in item:
            raise ValueError(f"--set needs key=value, got {item!r}.")
        key, raw = item.split("=", 1)
        if key.strip() in items:
            raise ValueError(f"--set {key.strip()} is given twice; give it once.")
        try:
            items[key.strip()] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            items[key.strip()] = raw
    return items


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
    items = _parse_sets(sets)
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


#: Tuple-valued keys whose length is fixed (what their entries mean).
FIXED_LENGTH = {
    "lr": "(lr0, a, tau) of the power-law schedule",
    "betas": "(b1, b2) of Adam",
    "strength_range": "(smallest, largest)",
}
#: MLP layer sizes: any depth, but the input and output sizes are the data's.
MLP_WIDTHS = ("widths", "dead_widths", "adam_widths")


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _entries(v) -> list:
    return list(v) if isinstance(v, (tuple, list)) else [v]


def _divisors_near(total: int, value: int) -> str:
    divs = [d for d in range(1, total + 1) if total % d == 0]
    lo = max((d for d in divs if d < value), default=None)
    hi = min((d for d in divs if d > value), default=None)
    return " or ".join(str(d) for d in (lo, hi) if d is not None)


def check_config(config: dict, defaults: dict, module=None) -> None:
    """Check a config's values in its own terms before training (one ``ValueError`` line).

    Common keys are checked by name (``seed``/``*_seed``: an int in [0, 2**32);
    ``seeds``, ``num_*``, ``n_*``, ``*_epochs``, ``*_steps``, ``*batch_size``,
    ``*eval_every``: positive ints; ``eval_every`` divides ``num_epochs`` (or
    ``num_steps``); a batch size is at most the training-set size; learning rates > 0;
    rates, ``epsilons``, label noise in [0, 1)). Tuples keep the default's length where
    it is fixed (:data:`FIXED_LENGTH`, an experiment's ``FIXED_LENGTH``), MLP ``widths``
    keep the data's input and output sizes. An experiment may add ``check_config(config)``.

    Args:
      config: the config to run (defaults with ``--seeds`` / ``--set`` applied).
      defaults: the experiment's ``get_config(quick)``, for shapes.
      module: the experiment module (for its ``FIXED_LENGTH`` and ``check_config``).
    """
    fixed = {**FIXED_LENGTH, **getattr(module, "FIXED_LENGTH", {})}
    for key, value in config.items():
        default = defaults.get(key)
        if key == "seed" or key.endswith("_seed"):
            checks.check_seed(key, value)
            continue
        if isinstance(default, tuple) and key in fixed and len(value) != len(default):
            raise ValueError(
                f"{key} takes {len(default)} values {fixed[key]}, got {len(value)}: {value!r}."
            )
        if key in MLP_WIDTHS and key not in fixed and isinstance(default, tuple):
            if len(value) < 2 or not all(_is_int(w) and w >= 1 for w in value):
                raise ValueError(f"{key} must be >= 2 positive int layer sizes, got {value!r}.")
            if value[0] != default[0] or value[-1] != default[-1]:
                raise ValueError(
                    f"{key} must start with the input size {default[0]} and end with the "
                    f"output size {default[-1]} (the data's); got {value!r}."
                )
        counts = (
            key in ("seeds", "batch_size", "eval_every", "width", "depth", "hidden")
            or key.startswith(("num_", "n_"))
            or key.endswith(("_seeds", "_epochs", "_steps", "batch_size", "eval_every"))
        )
        if counts and _is_int(default) and not (_is_int(value) and value >= 1):
            raise ValueError(f"{key} must be a positive integer, got {value!r}.")
        if key == "batch_sizes" or key.endswith("batch_size"):
            prefix = key[: -len("batch_sizes" if key == "batch_sizes" else "batch_size")]
            n_key = next(
                (k for k in (prefix + "n_train", prefix + "n", "n_train") if k in config), None
            )
            for b in _entries(value):
                if not (_is_int(b) and b >= 1):
                    raise ValueError(f"{key} must hold positive integers, got {value!r}.")
                if n_key is not None and b > config[n_key]:
                    raise ValueError(
                        f"{key}={b} exceeds {n_key}={config[n_key]}: a batch is drawn from "
                        "the training set without replacement."
                    )
        if key == "eval_every" or key.endswith("_eval_every"):
            prefix = key[: -len("eval_every")]
            cands = ("num_epochs", "epochs", "num_steps", "steps")
            total_key = next((prefix + c for c in cands if prefix + c in config), None)
            if total_key is not None and _is_int(value) and value >= 1:
                total = config[total_key]
                unit = "epochs" if "epoch" in total_key else "steps"
                if _is_int(total) and total >= 1 and total % value:
                    raise ValueError(
                        f"{key}={value} must divide {total_key}={total} (one evaluation every "
                        f"{key} {unit}); e.g. {key}={_divisors_near(total, value)}."
                    )
        lr_like = key in ("lr", "learning_rate", "learning_rates") or key.endswith(
            ("_lr", "_lrs", "_learning_rate")
        )
        if lr_like and default is not None:
            vals = _entries(value)
            if not all(isinstance(v, (int, float)) and np.isfinite(v) and v > 0 for v in vals):
                raise ValueError(f"{key} must be finite and > 0, got {value!r}.")
        rate_like = (
            key.endswith(("_rate", "_rates"))
            or key in ("rates", "epsilons", "label_noise", "label_flip")
        ) and not lr_like
        if rate_like and default is not None:
            vals = _entries(value)
            if not all(isinstance(v, (int, float)) and 0 <= v < 1 for v in vals):
                raise ValueError(f"{key} must lie in [0, 1), got {value!r}.")
    extra = getattr(module, "check_config", None)
    if extra is not None:
        extra(config)


def prepare_config(
    name: str, *, quick: bool = False, seeds: int | None = None, overrides=None
) -> tuple[dict, dict]:
    """The config an experiment will run: defaults, ``--seeds``, ``--set``, all checked.

    Returns:
      ``(config, {key: value} of the overrides applied)``.

    Raises:
      ValueError: one line naming the bad value (before any training).
    """
    module = experiments.get(name)
    defaults = dict(module.get_config(quick=quick))
    config = dict(defaults)
    if seeds is not None:
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
            raise ValueError(f"--seeds must be a positive integer, got {seeds!r}.")
        if overrides and "seeds" in _parse_sets(overrides):
            raise ValueError(
                f"--seeds {seeds} and --set seeds={_parse_sets(overrides)['seeds']!r} both "
                "set the number of seeds; give one of them."
            )
        config["seeds"] = seeds
    config, applied = apply_overrides(config, overrides)
    check_config(config, defaults, module)
    return config, applied
