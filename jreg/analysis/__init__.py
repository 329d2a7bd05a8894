"""Analysis of trained models and reference solvers (techniques' layer; never the core).

* :mod:`jreg.analysis.metrics` -- accuracy, calibration (ECE, reliability), sparsity, modes.
* :mod:`jreg.analysis.probes` -- PCA-basis energy, decision grids, margins, Hessian
  eigenvalue; re-exported here (``jreg.analysis.pca_basis``).
* :mod:`jreg.analysis.svm`, :mod:`jreg.analysis.linear` -- max-margin SVM, ridge / lasso /
  MAP solutions; :mod:`jreg.analysis.rl` -- Q-learning targets;
  :mod:`jreg.analysis.rescaling` -- ReLU layer rescaling.
"""

from jreg.analysis.probes import (
    cumulative_energy,
    decision_grid,
    gd_pc_decay,
    margins,
    mean_abs_logit_gap,
    pc_energy,
    pca_basis,
    top_hessian_eigenvalue,
)

__all__ = [
    "cumulative_energy",
    "decision_grid",
    "gd_pc_decay",
    "margins",
    "mean_abs_logit_gap",
    "pc_energy",
    "pca_basis",
    "top_hessian_eigenvalue",
]
