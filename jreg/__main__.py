"""``python -m jreg``: the same front door as the ``jreg`` command."""

import sys

from jreg.cli import main

sys.exit(main())
