"""`python run_debian_tool.py MODULE ARGS...`: run Debian's MODULE (e.g.
`build`, from python3-build) as `python -m MODULE ARGS...` with this
interpreter, which need not be Debian's.

Debian's /usr/lib/python3/dist-packages is put at the *end* of sys.path of
this process only. PYTHONPATH would do the former but not the latter: it is
inherited by the build backend of `python -m build`, where Debian's own
setuptools then shadows the one pip installed into the isolated build
environment (and breaks it on non-Debian interpreters).

With NO_VIRTUALENV=1 the virtualenv package is hidden, so that `build` makes
its isolated environment with the venv module instead."""

import os
import runpy
import sys

sys.path.append("/usr/lib/python3/dist-packages")
if os.environ.get("NO_VIRTUALENV") == "1":
    sys.modules["virtualenv"] = None  # import virtualenv -> ModuleNotFoundError
module = sys.argv[1]
sys.argv = [module] + sys.argv[2:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
