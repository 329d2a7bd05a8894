"""Run the `viral_escape` experiment (config: ``get_config`` in the library module).

Usage: ``python experiments/viral_escape.py [--quick] [--seeds N] [--out DIR]``,
the same as ``jreg run viral_escape``. The logic lives in
``jreg.experiments.viral_escape`` so that tests and notebooks import the same code.
"""

import sys

from jreg.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "viral_escape", *sys.argv[1:]]))
