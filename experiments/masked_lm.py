"""Run the `masked_lm` experiment (config: ``get_config`` in the library module).

Usage: ``python experiments/masked_lm.py [--quick] [--seeds N] [--out DIR]``,
the same as ``jreg run masked_lm``. The logic lives in
``jreg.experiments.masked_lm`` so that tests and notebooks import the same code.
"""

import sys

from jreg.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "masked_lm", *sys.argv[1:]]))
