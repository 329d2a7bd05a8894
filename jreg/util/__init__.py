"""The foundation every layer may import: argument checks, pytree helpers, a safe solve.

* :mod:`jreg.util.checks` -- one-line ``ValueError`` checks of user input.
* :mod:`jreg.util.pytrees` -- masked leaves, key detection, safe norms on pytrees.
* :mod:`jreg.util.linalg` -- ``solve`` with one LAPACK call per matrix on CPU (no deadlock).
"""
