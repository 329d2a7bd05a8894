"""The foundation every layer may import: argument checks and pytree helpers.

* :mod:`jreg.util.checks` -- one-line ``ValueError`` checks of user input.
* :mod:`jreg.util.pytrees` -- masked leaves, key detection, safe norms on pytrees.
"""
