"""Run the `epochwise_double_descent` experiment (config: ``get_config`` in the library module).

Usage: ``python experiments/epochwise_double_descent.py [--quick] [--seeds N] [--out DIR]``,
the same as ``jreg run epochwise_double_descent``. The logic lives in
``jreg.experiments.epochwise_double_descent`` so that tests and notebooks import the same code.
"""

import sys

from jreg.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "epochwise_double_descent", *sys.argv[1:]]))
