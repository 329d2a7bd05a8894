"""Regularization techniques: pure functions on pytrees and optax gradient transforms.

* :mod:`jreg.regularizers.penalties` -- L1, L2, elastic net, weighted / anchored priors,
  EWC with the diagonal Fisher, attention entropy.
* :mod:`jreg.regularizers.spectral` -- power iteration, spectral-norm penalty and the
  spectral-norm constraint transform.
* :mod:`jreg.regularizers.activity` -- contractive (encoder Jacobian), WGAN-GP, R1.
* :mod:`jreg.regularizers.transforms` -- decoupled weight decay with masks, proximal L1.
* :mod:`jreg.regularizers.losses` -- label-smoothed cross-entropy and friends.

Nothing here imports the training core, the data loaders or the experiments.
"""
