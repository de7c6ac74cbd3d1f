"""keras-layer-runner. Importing the package first drops the current directory from sys.path
when Python runs one of its modules with ``-m`` (``python -m runner``, ``python -m
runner.check``, ``python -m runner.sweep.report``, ...): ``-m`` puts that directory first, and in
a repository of configs a file named like a library (numpy.py, yaml.py, hydra/) would then be
imported as code. The package is imported before the module ``-m`` names, while ``sys.argv[0]``
is still ``-m``; a program that imports the runner as a library keeps its own sys.path.
Plugins the command line allows are still found there (runner.config.plugins)."""

import os as _os
import sys as _sys

if (
    _sys.argv[:1] == ["-m"]
    and _sys.path
    and _sys.path[0] in ("", _os.getcwd())
    and not _sys.flags.safe_path
):
    del _sys.path[0]
