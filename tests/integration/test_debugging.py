"""Debugging through the shim, as the README's "Debugging through the shim"
section says: strace -f, gdb (which follows the exec), pgrep -f and the
process name, and what `ldd` says about a launcher."""

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import pyshim_tool, run

PYTHON = Path("/usr/bin/python3.11")


@pytest.fixture(scope="module")
def venv(stage, tmp_path_factory):
    root = tmp_path_factory.mktemp("dbg") / "venv"
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
    res = pyshim_tool(stage, "init", root, "--python", PYTHON, "--preload", "jemalloc", env=env)
    assert res.returncode == 0, res.stderr.decode()
    return root


@pytest.fixture
def env(tmp_path):
    return {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": str(tmp_path)}


def test_ldd_says_not_dynamic_and_show_says_what_it_runs(venv, stage, env):
    res = run(["ldd", venv / "bin" / "python"], env)
    assert b"not a dynamic executable" in res.stdout + res.stderr
    res = pyshim_tool(stage, "show", venv / "bin" / "python", env=env)
    assert res.returncode == 0
    assert f"interpreter:     {PYTHON}".encode() in res.stdout


def test_strace_follows_the_launcher_into_the_interpreter(venv, env, tmp_path, strace):
    trace = tmp_path / "trace"
    res = run([strace, "-f", "-qq", "-s", "4096", "-o", trace, "-e", "trace=execve",
               venv / "bin" / "python", "-c", "pass"], env)
    assert res.returncode == 0
    execs = [line for line in trace.read_text().splitlines() if "execve(" in line]
    assert f'execve("{venv}/bin/python"' in execs[0]
    assert f'execve("{PYTHON}", ["{venv}/bin/python"' in execs[1], execs


def test_gdb_follows_the_exec_and_shows_the_interpreters_stack(venv, env):
    if shutil.which("gdb") is None:
        pytest.skip("gdb not installed (Debian package gdb)")
    res = run(["gdb", "-nx", "-batch", "-ex", "run", "-ex", "info inferiors",
               "--args", venv / "bin" / "python", "-c", "import os; os.abort()"],
              env, timeout=120)
    out = res.stdout.decode(errors="replace")
    assert "is executing new program: " + str(PYTHON) in out, out
    assert "SIGABRT" in out, out


def test_pgrep_finds_the_interpreter_by_the_venv_path(venv, env):
    proc = subprocess.Popen([str(venv / "bin" / "python"), "-c", "import time; time.sleep(30)"],
                            env=env)
    try:
        for _ in range(100):
            found = run(["pgrep", "-f", f"{venv}/bin/python -c import time"], env)
            if found.returncode == 0:
                break
            time.sleep(0.05)
        assert found.stdout.split() == [str(proc.pid).encode()]
        # The process is the interpreter itself (same pid), named as a plain
        # venv's interpreter is: after the name it was started by.
        comm = Path(f"/proc/{proc.pid}/comm").read_text().strip()
        assert comm == "python", comm
        assert Path(f"/proc/{proc.pid}/exe").resolve() == PYTHON.resolve()
    finally:
        proc.kill()
        proc.wait()
