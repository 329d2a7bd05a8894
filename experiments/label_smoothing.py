"""Run the `label_smoothing` experiment (config: ``get_config`` in the library module).

Usage: ``python experiments/label_smoothing.py [--quick] [--seeds N] [--out DIR]``,
the same as ``jreg run label_smoothing``. The logic lives in
``jreg.experiments.label_smoothing`` so that tests and notebooks import the same code.
"""

import sys

from jreg.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "label_smoothing", *sys.argv[1:]]))
