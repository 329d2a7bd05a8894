"""Run the `augmentation` experiment (config: ``get_config`` in the library module).

Usage: ``python experiments/augmentation.py [--quick] [--seeds N] [--out DIR]``,
the same as ``jreg run augmentation``. The logic lives in
``jreg.experiments.augmentation`` so that tests and notebooks import the same code.
"""

import sys

from jreg.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "augmentation", *sys.argv[1:]]))
