"""Run the `dropout` experiment (config: ``get_config`` in the library module).

Usage: ``python experiments/dropout.py [--quick] [--seeds N] [--out DIR]``,
the same as ``jreg run dropout``. The logic lives in
``jreg.experiments.dropout`` so that tests and notebooks import the same code.
"""

import sys

from jreg.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "dropout", *sys.argv[1:]]))
