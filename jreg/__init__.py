"""jreg: regularization for deep learning as small, composable, tested JAX functions.

Layers (each imports only the ones above it in this list):

* :mod:`jreg.util` -- checks and pytree helpers.
* :mod:`jreg.regularizers`, :mod:`jreg.nn`, :mod:`jreg.analysis` -- the techniques, pure
  functions on pytrees; :mod:`jreg.data` -- offline datasets; :mod:`jreg.core` -- the
  swept training loop, checkpoints and runtime.
* :mod:`jreg.tasks` -- task builders on the core.
* :mod:`jreg.experiments` -- one module per result, on :mod:`jreg.experiments.kit`.
* :mod:`jreg.cli` -- the ``jreg`` command (also ``python -m jreg``).
"""

__version__ = "0.3.0"
