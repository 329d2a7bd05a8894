"""Training recipes on top of the core: task builders, width families, schedules.

* :mod:`jreg.tasks.builders` -- :func:`supervised` builds a :class:`jreg.core.train.Task`
  from a model, a loss, an optimizer and named penalties; :func:`split_data`. Re-exported
  here (``jreg.tasks.supervised(...)``).
* :mod:`jreg.tasks.widths` -- padded-width families swept bucket by bucket.
* :mod:`jreg.tasks.schedules` -- learning-rate schedules (optax schedules).
"""

from jreg.tasks.builders import CLASSIFICATION, HALF_L2, L1, split_data, supervised

__all__ = ["CLASSIFICATION", "HALF_L2", "L1", "split_data", "supervised"]
