"""A user's plugin loader: loads every plugins/*.py by path and registers it
in sys.modules, the way applications load plugins from a folder."""
import importlib.util
import os
import sys
from pathlib import Path

PLUGINS = Path(__file__).resolve().parent / "plugins"


def load_plugins():
    log = os.environ.get("HOOK_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"load_plugins pid={os.getpid()} executable={sys.executable} "
                    f"argv={sys.argv!r}\n")
    for path in sorted(PLUGINS.glob("*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[path.stem] = module


def second():
    log = os.environ.get("HOOK_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"second pid={os.getpid()}\n")


def broken():
    raise ValueError("plugin registry unreachable")
