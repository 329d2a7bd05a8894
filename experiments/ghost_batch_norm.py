"""Run the `ghost_batch_norm` experiment (config: ``get_config`` in the library module).

Usage: ``python experiments/ghost_batch_norm.py [--quick] [--seeds N] [--out DIR]``,
the same as ``jreg run ghost_batch_norm``. The logic lives in
``jreg.experiments.ghost_batch_norm`` so that tests and notebooks import the same code.
"""

import sys

from jreg.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "ghost_batch_norm", *sys.argv[1:]]))
