"""Run the `map_priors` experiment (config: ``get_config`` in the library module).

Usage: ``python experiments/map_priors.py [--quick] [--seeds N] [--out DIR]``,
the same as ``jreg run map_priors``. The logic lives in
``jreg.experiments.map_priors`` so that tests and notebooks import the same code.
"""

import sys

from jreg.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "map_priors", *sys.argv[1:]]))
