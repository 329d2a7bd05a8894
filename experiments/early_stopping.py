"""Run the `early_stopping` experiment (config: ``get_config`` in the library module).

Usage: ``python experiments/early_stopping.py [--quick] [--seeds N] [--out DIR]``,
the same as ``jreg run early_stopping``. The logic lives in
``jreg.experiments.early_stopping`` so that tests and notebooks import the same code.
"""

import sys

from jreg.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "early_stopping", *sys.argv[1:]]))
