"""The preload and the restore library: jemalloc preloaded and the test
library found by bare name in the parent and in spawn / forkserver /
ProcessPoolExecutor(spawn) workers; /bin/sh children (from the parent and
from a spawn worker) get neither jemalloc nor the restore library, and
exactly the caller's LD_PRELOAD / LD_LIBRARY_PATH (unset, empty or set); no
bookkeeping variable reaches any child. All of it under no flag, -I, -E, -S
and -I -S.

The full caller x flag grid runs on Debian's python3.11; an older CPython
(whose getpath and multiprocessing differ) runs every flag once.

A restore library whose path the loader cannot carry in LD_PRELOAD (space,
colon, tab, '$') is preloaded by descriptor and still restores. A caller
environment holding LD_PRELOAD twice gets the preload all the same, and the
value the loader would have used back."""

import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import (
    LAUNCH_REPORT,
    CALLER_VARIANTS,
    caller_env,
    check_probe,
    default_interp,
    install_venv,
    make_probe_venv,
    place_launcher,
    probe_parts,
    run_json,
    second_interp,
    write_config,
)

FLAGS = {
    "noflag": ([], {"isolated": False, "ignore_environment": False, "no_site": False}),
    "-I": (["-I"], {"isolated": True, "ignore_environment": True, "no_user_site": True,
                    "no_site": False}),
    "-E": (["-E"], {"isolated": False, "ignore_environment": True, "no_site": False}),
    "-S": (["-S"], {"isolated": False, "ignore_environment": False, "no_site": True}),
    "-I -S": (["-I", "-S"], {"isolated": True, "ignore_environment": True, "no_site": True}),
}


def _run(interp, flag, variant, stage, tmp_path, base_env, jemalloc, testlibs):
    venv = make_probe_venv(stage, interp, tmp_path / "venv", base_env, jemalloc, testlibs)
    env = caller_env(variant, base_env, tmp_path, testlibs, jemalloc)
    # PYTHON* variables that -E / -I must ignore: if the flags were lost on
    # the way, PYTHONPATH would show up in sys.path (checked below).
    env["PYTHONPATH"] = str(tmp_path / "pythonpath-marker")
    argv, expected_flags = FLAGS[flag]
    result = check_probe(venv.python, env, jemalloc=jemalloc, restore=stage.restore,
                         parts=probe_parts(interp, tmp_path), interp_args=argv,
                         expect_flags=expected_flags)
    for name in ("parent", "spawn", "forkserver", "pool"):
        if name in result:
            in_path = env["PYTHONPATH"] in result[name]["path"]
            assert in_path == (not expected_flags["ignore_environment"]), name


@pytest.mark.parametrize("variant", CALLER_VARIANTS)
@pytest.mark.parametrize("flag", list(FLAGS))
def test_preload_and_restore(flag, variant, stage, tmp_path, base_env, jemalloc, testlibs):
    _run(default_interp(), flag, variant, stage, tmp_path, base_env, jemalloc, testlibs)


@pytest.mark.parametrize("flag", list(FLAGS))
def test_preload_and_restore_older_cpython(flag, stage, tmp_path, base_env, jemalloc, testlibs):
    interp = second_interp()
    if interp is None:
        pytest.skip("no CPython 3.8-3.10 under /root/.pyenv/versions")
    _run(interp, flag, "set", stage, tmp_path, base_env, jemalloc, testlibs)


# --------------------------------------------------------------------------
# A restore library whose path the loader would split (the README): it is
# preloaded as /proc/self/fd/N, and the restore library closes that fd.

FD_CHECK = r"""
import json, os, subprocess, sys
with open("/proc/self/environ", "rb") as f:
    environ = f.read().split(b"\0")
with open("/proc/self/maps") as f:
    fields = [line.rstrip("\n").split(None, 5) for line in f]
fds = {}
for fd in os.listdir("/proc/self/fd"):
    try:
        fds[fd] = os.readlink("/proc/self/fd/" + fd)
    except OSError:
        pass
report = {
    "executable": sys.executable,
    "exec_preload": [e[len(b"LD_PRELOAD="):].decode() for e in environ
                     if e.startswith(b"LD_PRELOAD=")],
    "mapped": sorted({f[5] for f in fields if len(f) == 6 and f[5].startswith("/")}),
    "fds": fds,
    "ld_preload": os.environ.get("LD_PRELOAD"),
    "pyshim_vars": sorted(k for k in os.environ if k.startswith("PYSHIM_")),
}
if len(sys.argv) > 1:  # the parent: a Python child through sys.executable, and a shell
    child = subprocess.run([sys.executable, "-c", sys.argv[1]], capture_output=True, text=True)
    report["child"] = [child.returncode, child.stdout, child.stderr]
    sh = subprocess.run(["/bin/sh", "-c", 'printf "%s\\n" "${LD_PRELOAD-<unset>}"; '
                         'grep -c libpyshim-restore /proc/$$/maps'], capture_output=True, text=True)
    report["sh"] = [sh.stdout.splitlines(), sh.stderr]
print(json.dumps(report))
"""


def _check_fd_preload(report, *, launcher, restore, jemalloc, caller_preload):
    assert report["executable"] == str(launcher)
    # exec'd with the configured preload first, then the restore library by
    # descriptor (its own path would be split by the loader), then the caller's
    [exec_preload] = report["exec_preload"]
    entries = exec_preload.split(":")
    assert entries[0] == str(jemalloc), exec_preload
    assert re.fullmatch(r"/proc/self/fd/\d+", entries[1]), exec_preload
    assert entries[2:] == ([caller_preload] if caller_preload else []), exec_preload
    # the loader mapped the real file, and jemalloc
    assert str(restore) in report["mapped"], report["mapped"]
    assert os.path.realpath(jemalloc) in report["mapped"], report["mapped"]
    # the restore library ran (LD_PRELOAD is the caller's again, no
    # bookkeeping left) and closed the descriptor it was loaded from
    assert report["ld_preload"] == caller_preload
    assert report["pyshim_vars"] == []
    assert str(restore) not in report["fds"].values(), report["fds"]


@pytest.mark.parametrize("caller", ["unset", "set"])
@pytest.mark.parametrize("dirname", ["My Projects", "colon:dir", "tab\tdir", "dollar$ORIGIN"],
                         ids=["space", "colon", "tab", "dollar"])
def test_restore_library_path_the_loader_would_split(dirname, caller, stage, tmp_path, base_env,
                                                     jemalloc, testlibs):
    """A launcher copy in a folder named with a character the loader splits
    LD_PRELOAD on (or expands), its restore library beside it in
    lib/pyshim/: it launches, in the interpreter and in a Python child."""
    py = default_interp()
    root = tmp_path / dirname
    launcher = root / "bin" / "python"
    place_launcher(stage, launcher, "copy")
    restore = root / "lib" / "pyshim" / stage.restore.name
    write_config(root, py.path, preload=[jemalloc])
    env = dict(base_env)
    caller_preload = str(testlibs.caller) if caller == "set" else None
    if caller_preload:
        env["LD_PRELOAD"] = caller_preload
    report = run_json([launcher, "-c", FD_CHECK, FD_CHECK], env)
    _check_fd_preload(report, launcher=launcher, restore=restore, jemalloc=jemalloc,
                      caller_preload=caller_preload)
    rc, out, err = report["child"]
    assert rc == 0 and err == "", err
    _check_fd_preload(json.loads(out), launcher=launcher, restore=restore, jemalloc=jemalloc,
                      caller_preload=caller_preload)
    # a non-Python child: the caller's LD_PRELOAD, no restore library mapped
    assert report["sh"] == [[caller_preload or "<unset>", "0"], ""]


def test_installed_venv_under_a_folder_with_a_space(stage, tmp_path, base_env, jemalloc):
    """`pyshim install` into ~/My Projects/venv (an ordinary place): the
    venv's own restore library copy has a space in its path."""
    py = default_interp()
    venv = install_venv(stage, py, tmp_path / "My Projects" / "venv", base_env,
                        "--preload", jemalloc)
    restore = venv.root / "lib" / "pyshim" / stage.restore.name
    report = run_json([venv.python, "-c", FD_CHECK, FD_CHECK], base_env)
    _check_fd_preload(report, launcher=venv.python, restore=restore, jemalloc=jemalloc,
                      caller_preload=None)
    rc, out, err = report["child"]
    assert rc == 0 and err == "", err
    _check_fd_preload(json.loads(out), launcher=venv.python, restore=restore, jemalloc=jemalloc,
                      caller_preload=None)
    assert report["sh"] == [["<unset>", "0"], ""]


# --------------------------------------------------------------------------
# A caller environment holding the same variable twice (only a raw execve
# makes one): the loader reads the last entry, so must the launcher.

RAWEXEC = r"""
#include <unistd.h>
#include <string.h>
/* rawexec VAR=x VAR=y ... -- PROGRAM ARGS: execve with exactly this env,
   duplicates included (no shell or libc call would keep them). */
int main(int argc, char **argv) {
  int i = 1;
  for (; i < argc && strcmp(argv[i], "--") != 0; ++i) {}
  argv[i] = NULL;
  execve(argv[i + 1], argv + i + 1, argv + 1);
  return 127;
}
"""


def test_duplicate_caller_variables_do_not_defeat_the_preload(init_venv, tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found (Debian package gcc): cannot build the raw execve helper")
    src = tmp_path / "rawexec.c"
    src.write_text(RAWEXEC)
    rawexec = tmp_path / "rawexec"
    subprocess.run(["gcc", "-O2", "-o", str(rawexec), str(src)], check=True)
    libz = "/lib/x86_64-linux-gnu/libz.so.1"
    libm = "/lib/x86_64-linux-gnu/libm.so.6"
    res = subprocess.run(
        [str(rawexec), "PATH=/usr/bin:/bin", f"LD_PRELOAD={libz}", f"LD_PRELOAD={libm}", "--",
         str(init_venv / "bin/python"), "-c", LAUNCH_REPORT], capture_output=True, text=True,
        timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[1] == "True True", "jemalloc and the restore library must be loaded"
    assert lines[2] == "[]", "no bookkeeping variable may leak into the interpreter"
    # The loader's view of the caller's value (the last entry) is restored.
    assert lines[3] == libm
