"""Progress lines of `pyshim init` and `pyshim dynlib`: one line per phase on
stderr when it is a terminal (a real pseudo-terminal here), none with -q, and
none when stderr is not a terminal, so scripts and logs see only the result."""

import os
import pty
import shutil
import subprocess
from pathlib import Path

from conftest import pyshim_tool

PYTHON = Path("/usr/bin/python3.11")
JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")


def env_for(tmp_path):
    return {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": str(tmp_path)}


def on_a_terminal(argv, env):
    """Runs argv with stderr on a pseudo-terminal and stdout on a pipe;
    returns (exit status, stdout, the terminal's lines)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: every writer closed its end
            break
        if not chunk:
            break
        seen += chunk
    out = proc.communicate(timeout=300)[0]
    os.close(master)
    return proc.returncode, out.decode(), seen.decode().replace("\r\n", "\n").splitlines()


def test_init_says_what_it_does_on_a_terminal_only(stage, tmp_path):
    env = env_for(tmp_path)
    venv = tmp_path / "v"
    code, out, lines = on_a_terminal([stage.cli, "init", venv, "--python", PYTHON], env)
    assert code == 0, lines
    assert lines == [f"pyshim: creating {venv} with `{PYTHON} -m venv --without-pip`",
                     f"pyshim: installing pyshim into {venv}",
                     f"pyshim: starting {venv}/bin/python"]
    assert f"installed pyshim into {venv}" in out

    quiet = tmp_path / "quiet"
    code, out, lines = on_a_terminal([stage.cli, "init", quiet, "--python", PYTHON, "-q"], env)
    assert code == 0 and lines == []
    assert f"installed pyshim into {quiet}" in out

    piped = pyshim_tool(stage, "init", tmp_path / "piped", "--python", PYTHON, env=env)
    assert piped.returncode == 0
    assert piped.stderr == b""


def test_dynlib_says_what_it_does_on_a_terminal_only(stage, tmp_path):
    env = env_for(tmp_path)
    venv = tmp_path / "v"
    subprocess.run([str(PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True, env=env)
    site = next((venv / "lib").glob("python3.*/site-packages"))
    (site / "pkg").mkdir()
    shutil.copy(JEMALLOC, site / "pkg" / "libjm.so.2")
    shutil.copytree(venv, tmp_path / "copy", symlinks=True)

    code, out, lines = on_a_terminal([stage.cli, "dynlib", venv], env)
    assert code == 0, lines
    dynlib = venv / "share" / "venv" / "dynlib"
    assert lines == [
        f"pyshim: asking {venv}'s interpreter for its extension suffixes and site-packages",
        f"pyshim: reading the shared libraries in {site}",
        # libjm.so.2 by its file name, and by its SONAME libjemalloc.so.2
        f"pyshim: updating {dynlib} (2 changes)"]
    assert out.startswith(f"{dynlib} (created): 2 links")

    code, out, lines = on_a_terminal([stage.cli, "dynlib", venv, "-q"], env)
    assert code == 0 and lines == []
    assert out.startswith(f"{dynlib} is up to date")

    piped = pyshim_tool(stage, "dynlib", tmp_path / "copy", env=env)
    assert piped.returncode == 0
    assert piped.stderr == b""
