"""What an interpreter of a derived environment, its multiprocessing spawn
worker and their /bin/sh children see (tests/integration/test_derived.py).

As a script: `python probe.py [--out FILE]` prints (or writes) one JSON
object. As a module (a build backend imports it): collect() returns it.

    {"parent": PY, "spawn": PY, "sh": SH, "spawn_sh": SH}

PY (a Python process): executable, realpath (of sys.executable),
    base_executable (sys._base_executable, None if absent), prefix,
    base_prefix, pid, ppid, mapped (watched files in /proc/self/maps),
    env (the watched variables, see _watched_env).
SH (a `/bin/sh -c` child of that process, default environment): env from
    /proc/$$/environ (what the shell was given), mapped from grep over the
    shell's /proc/$$/maps, grep_mapped from grep over grep's own
    /proc/self/maps.

Runs on CPython 3.8+ with the standard library only. The maps and /bin/sh
readers are tests/integration/probe.py's, loaded by path (no sys.path entry
needed, and none added: a build backend imports this file as `probe`).
"""

import importlib.util
import json
import os
import sys

# Mapped files that matter: the preloads the tests configure, the restore
# library, and the harmless library a test's caller may preload itself.
WATCHED = ("libjemalloc", "libtcmalloc", "libpyshim-restore", "libpyshimcaller")


def _load_shared_probe():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "probe.py")
    spec = importlib.util.spec_from_file_location("pyshim_shared_probe", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_shared = _load_shared_probe()


def _watched_env(env):
    """The loader variables (absent when unset), pyshim's own variables and
    the tests' ITEST_* markers (set through a config's [env])."""
    return {
        k: v for k, v in env.items()
        if k in ("LD_PRELOAD", "LD_LIBRARY_PATH") or k.startswith(("PYSHIM_", "ITEST_"))
    }


def py_report():
    with open("/proc/self/maps") as f:
        mapped = _shared.watched_mapped(f.read().splitlines(), WATCHED)
    return {
        "executable": sys.executable,
        "realpath": os.path.realpath(sys.executable),
        "base_executable": getattr(sys, "_base_executable", None),
        "prefix": sys.prefix,
        "base_prefix": sys.base_prefix,
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "mapped": mapped,
        "env": _watched_env(dict(os.environ)),
    }


def sh_report():
    mapped, grep_mapped, env = _shared.sh_child(WATCHED)
    return {"mapped": mapped, "grep_mapped": grep_mapped, "env": _watched_env(env)}


def _worker():
    return py_report(), sh_report()


def collect():
    import multiprocessing

    result = {"parent": py_report(), "sh": sh_report()}
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        result["spawn"], result["spawn_sh"] = pool.apply(_worker)
    return result


def main(argv):
    text = json.dumps(collect())
    if argv[:1] == ["--out"]:
        with open(argv[1], "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
