"""The training core: one swept loop for every setting (it knows no technique or dataset).

* :mod:`jreg.core.train` -- :class:`~jreg.core.train.Task`, :func:`~jreg.core.train.sweep`,
  :func:`~jreg.core.train.fit`, :func:`~jreg.core.train.grid`.
* :mod:`jreg.core.streams` -- pure batch streams ``(data, key, step) -> batch``.
* :mod:`jreg.core.checkpoint` -- orbax checkpoints that know their run.
* :mod:`jreg.core.runtime` -- devices, compilation cache, several processes, memory.

Imports only :mod:`jreg.util`.
"""
