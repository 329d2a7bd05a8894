"""Run the `gan_regularizers` experiment (config: ``get_config`` in the library module).

Usage: ``python experiments/gan_regularizers.py [--quick] [--seeds N] [--out DIR]``,
the same as ``jreg run gan_regularizers``. The logic lives in
``jreg.experiments.gan_regularizers`` so that tests and notebooks import the same code.
"""

import sys

from jreg.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "gan_regularizers", *sys.argv[1:]]))
