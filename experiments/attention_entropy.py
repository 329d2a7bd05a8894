"""Run the `attention_entropy` experiment (config: ``get_config`` in the library module).

Usage: ``python experiments/attention_entropy.py [--quick] [--seeds N] [--out DIR]``,
the same as ``jreg run attention_entropy``. The logic lives in
``jreg.experiments.attention_entropy`` so that tests and notebooks import the same code.
"""

import sys

from jreg.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "attention_entropy", *sys.argv[1:]]))
