"""Run the `spectral_norm` experiment (config: ``get_config`` in the library module).

Usage: ``python experiments/spectral_norm.py [--quick] [--seeds N] [--out DIR]``,
the same as ``jreg run spectral_norm``. The logic lives in
``jreg.experiments.spectral_norm`` so that tests and notebooks import the same code.
"""

import sys

from jreg.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "spectral_norm", *sys.argv[1:]]))
