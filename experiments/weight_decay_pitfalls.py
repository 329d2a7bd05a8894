"""Run the `weight_decay_pitfalls` experiment (config: ``get_config`` in the library module).

Usage: ``python experiments/weight_decay_pitfalls.py [--quick] [--seeds N] [--out DIR]``,
the same as ``jreg run weight_decay_pitfalls``. The logic lives in
``jreg.experiments.weight_decay_pitfalls`` so that tests and notebooks import the same code.
"""

import sys

from jreg.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "weight_decay_pitfalls", *sys.argv[1:]]))
