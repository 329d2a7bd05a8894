"""Run the `double_q` experiment (config: ``get_config`` in the library module).

Usage: ``python experiments/double_q.py [--quick] [--seeds N] [--out DIR]``,
the same as ``jreg run double_q``. The logic lives in
``jreg.experiments.double_q`` so that tests and notebooks import the same code.
"""

import sys

from jreg.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "double_q", *sys.argv[1:]]))
