"""Model pieces: pure MLP layers, dropout / drop-path / batch norm, model adapters, transformer.

* :mod:`jreg.nn.models` -- pure-function MLPs, dropout (and MC dropout), drop-path, batch
  norm and ghost batch norm.
* :mod:`jreg.nn.nets` -- the :class:`~jreg.nn.nets.Model` interface with adapters for pure
  functions, flax linen and flax nnx; padded, batch-norm and residual MLPs.
* :mod:`jreg.nn.transformer` -- a small flax transformer with attention-entropy hooks.
"""
