"""Run the `continual_learning` experiment (config: ``get_config`` in the library module).

Usage: ``python experiments/continual_learning.py [--quick] [--seeds N] [--out DIR]``,
the same as ``jreg run continual_learning``. The logic lives in
``jreg.experiments.continual_learning`` so that tests and notebooks import the same code.
"""

import sys

from jreg.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "continual_learning", *sys.argv[1:]]))
