"""Reproductions of regularization results, one module per experiment, in three groups.

``classic/`` (the five results of the blog post), ``implicit/`` (implicit regularization and
pitfalls) and ``applications/`` (the survey's applications). Each module defines
``DESCRIPTION`` (one line), ``get_config(quick: bool) -> dict`` (the reference setup, or a
tiny one with ``quick``; :func:`jreg.experiments.kit.sized`), ``compute(config, run) ->
dict`` (``run``: a :class:`jreg.experiments.kit.Run` with the progress flag and the
checkpoint folder)
(every number; the keys ``"headline"`` (a few labelled numbers for the report table) and
``"notes"`` (sentences computed from the numbers, never written in advance) are moved
into the report) and ``figure(numbers, config) -> matplotlib Figure`` (draws only, no
training). :func:`jreg.experiments.runner.run_experiment` adds the bookkeeping: PNG,
JSON with the config / jax version / wall time, and a section of ``report.md``.
"""

import importlib

NAMES = (
    "augmentation",
    "weight_decay",
    "dropout",
    "label_smoothing",
    "early_stopping",
    "double_descent",
    "epochwise_double_descent",
    "max_margin",
    "weight_decay_pitfalls",
    "ghost_batch_norm",
    "spectral_norm",
    # the survey's applications (issues 9 and 10)
    "gan_regularizers",
    "contractive_autoencoder",
    "attention_entropy",
    "masked_lm",
    "drop_path",
    "double_q",
    "viral_escape",
    "map_priors",
    "continual_learning",
    "batch_size",
)

#: The five classic results (issue 3): what ``jreg reproduce`` runs by default.
CLASSIC = NAMES[:5]
#: Implicit regularization and pitfalls (issue 4): added by ``jreg reproduce --all``.
IMPLICIT = NAMES[5:11]
#: Applications of the survey (GANs, autoencoders, transformers, RL, ...): ``--all`` too.
APPLICATIONS = NAMES[11:]


def group(name: str) -> str:
    """The subpackage (``classic``, ``implicit``, ``applications``) of an experiment."""
    return "classic" if name in CLASSIC else "implicit" if name in IMPLICIT else "applications"


def available() -> tuple[str, ...]:
    """Names of the experiments that ``jreg run`` accepts."""
    return tuple(n for n in NAMES if importlib.util.find_spec(f"jreg.experiments.{group(n)}.{n}"))


def get(name: str):
    """Import an experiment module by name; unknown names raise a ValueError listing all."""
    if name not in available():
        raise ValueError(f"Unknown experiment {name!r}; available: {', '.join(available())}.")
    return importlib.import_module(f"jreg.experiments.{group(name)}.{name}")
