"""A small setuptools project for `python -m build`: every time a build
backend process runs this file, it writes what probe.collect() reports (the
backend process, a spawn worker and their /bin/sh children) to a new JSON file
in $PROBE_REPORTS, for test_derived.py to check. $PROBE_DIR holds probe.py."""

import json
import os
import sys
import tempfile

from setuptools import setup
from setuptools.command.install import install

sys.path.insert(0, os.environ["PROBE_DIR"])
import probe  # noqa: E402  (after the path is known)


class Install(install):
    """Debian's setuptools wheel (python3-setuptools-whl, the only one offline)
    is patched to read the options `install_layout` and `prefix_option` of
    Debian's distutils `install` command; other CPythons (pyenv) do not have
    them and bdist_wheel fails with AttributeError. Define them, unset."""

    def initialize_options(self):
        super().initialize_options()
        self.install_layout = None
        self.prefix_option = None


report = probe.collect()
report["hook"] = sys.argv[1:]
fd, path = tempfile.mkstemp(suffix=".json", dir=os.environ["PROBE_REPORTS"])
with os.fdopen(fd, "w") as f:
    json.dump(report, f)

setup(name="derived-demo", version="0.1", py_modules=["derived_demo"], cmdclass={"install": Install})
