"""Run the `contractive_autoencoder` experiment (config: ``get_config`` in the library module).

Usage: ``python experiments/contractive_autoencoder.py [--quick] [--seeds N] [--out DIR]``,
the same as ``jreg run contractive_autoencoder``. The logic lives in
``jreg.experiments.contractive_autoencoder`` so that tests and notebooks import the same code.
"""

import sys

from jreg.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "contractive_autoencoder", *sys.argv[1:]]))
