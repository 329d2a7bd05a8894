"""jreg: regularization for deep learning as small, composable, tested JAX functions."""

from jreg import data, losses, metrics, models, penalties, schedules, train, transforms

__version__ = "0.2.0"

__all__ = [
    "data",
    "losses",
    "metrics",
    "models",
    "penalties",
    "schedules",
    "train",
    "transforms",
]
