"""Run the `max_margin` experiment (config: ``get_config`` in the library module).

Usage: ``python experiments/max_margin.py [--quick] [--seeds N] [--out DIR]``,
the same as ``jreg run max_margin``. The logic lives in
``jreg.experiments.max_margin`` so that tests and notebooks import the same code.
"""

import sys

from jreg.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "max_margin", *sys.argv[1:]]))
