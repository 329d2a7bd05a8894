"""Run the `batch_size` experiment (config: ``get_config`` in the library module).

Usage: ``python experiments/batch_size.py [--quick] [--seeds N] [--out DIR]``,
the same as ``jreg run batch_size``. The logic lives in
``jreg.experiments.batch_size`` so that tests and notebooks import the same code.
"""

import sys

from jreg.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "batch_size", *sys.argv[1:]]))
