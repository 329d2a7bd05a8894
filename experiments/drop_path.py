"""Run the `drop_path` experiment (config: ``get_config`` in the library module).

Usage: ``python experiments/drop_path.py [--quick] [--seeds N] [--out DIR]``,
the same as ``jreg run drop_path``. The logic lives in
``jreg.experiments.drop_path`` so that tests and notebooks import the same code.
"""

import sys

from jreg.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "drop_path", *sys.argv[1:]]))
