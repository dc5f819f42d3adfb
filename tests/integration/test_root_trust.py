"""Root runs no code that someone else controls, in any command (README,
"Running tool mode on a venv someone else can write").

Each test is a way root's tool command used to run a second user's code as
root: the second user (`nobody`, via setpriv) plants a library or an
interpreter that appends its real uid to a marker file; root runs the
command; the marker must never say 0. Where the command still runs the
program (as nobody), the marker also proves that it did run."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import pyshim_tool, run

PYTHON = Path("/usr/bin/python3.11")
NOBODY = 65534

# A library that stands in for libz.so.1 (which /usr/bin/python3.11 needs):
# the loader takes it from the first LD_LIBRARY_PATH folder that has one, and
# its constructor records who loaded it. Python runs fine without zlib's
# functions until something calls them (lazy binding).
MARKER_LIB = r"""
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void mark(void) {
  FILE* f = fopen("%s", "a");
  if (f) { fprintf(f, "%%d\n", (int)getuid()); fclose(f); }
}
"""

# An interpreter a second user controls: records its uid, then runs Python.
MARKER_INTERPRETER = """#!/bin/sh
id -u >> {marker}
exec {python} "$@"
"""


@pytest.fixture(autouse=True)
def needs_root():
    if os.geteuid() != 0:
        pytest.skip("these tests run pyshim as root against a second user (setpriv)")
    for tool in ("setpriv", "gcc"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (Debian packages util-linux, gcc)")


@pytest.fixture
def env(tmp_path):
    return {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": str(tmp_path)}


@pytest.fixture
def place():
    """A folder in /tmp that nobody can enter but only root can write (pytest's
    own tmp folders are root's, mode 0700: nobody could not run anything in
    them). Removed after the test."""
    path = Path(tempfile.mkdtemp(prefix="pyshim-root-trust-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def marker(place):
    """The marker file, in a sticky folder anyone can write."""
    drop = place / "drop"
    drop.mkdir()
    drop.chmod(0o1777)
    return drop / "uids"


def uids(marker: Path):
    return marker.read_text().split() if marker.exists() else []


def as_nobody(*argv, env, **kw):
    res = run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv], env,
              **kw)
    assert res.returncode == 0, res.stderr.decode()
    return res


def chown_tree(path: Path, uid: int):
    for p in [path, *path.rglob("*")]:
        os.lchown(p, uid, uid)


def nobodys_layer(place: Path, marker: Path, env) -> Path:
    """A venv of nobody's with a library planted in its share/venv/dynlib."""
    layer = place / "layer"
    subprocess.run([str(PYTHON), "-m", "venv", "--without-pip", str(layer)], check=True, env=env)
    source = place / "marker.c"
    source.write_text(MARKER_LIB % marker)
    dynlib = layer / "share" / "venv" / "dynlib"
    dynlib.mkdir(parents=True)
    subprocess.run(["gcc", "-shared", "-fPIC", "-Wl,-soname,libz.so.1", "-o",
                    str(dynlib / "libz.so.1"), str(source)], check=True)
    chown_tree(layer, NOBODY)
    return layer


@pytest.mark.parametrize("command", ["init", "install", "dynlib"])
def test_a_layers_library_never_loads_as_root(command, stage, place, marker, env):
    """Root layers its venv on a venv nobody owns: `init --layer`, a re-run
    `install --layer` and `dynlib` ask the venv's interpreter (through the
    launcher, with the layer's share/venv/dynlib on LD_LIBRARY_PATH) as
    nobody, never as root."""
    layer = nobodys_layer(place, marker, env)
    top = place / "top"
    if command == "init":
        res = pyshim_tool(stage, "init", top, "--python", PYTHON, "--layer", layer, env=env)
    else:
        subprocess.run([str(PYTHON), "-m", "venv", "--without-pip", str(top)], check=True, env=env)
        res = pyshim_tool(stage, "install", top, "--layer", layer, env=env)
        if command == "dynlib":
            assert res.returncode == 0, res.stderr.decode()
            marker.unlink()
            res = pyshim_tool(stage, "dynlib", top, env=env)
    assert "0" not in uids(marker), "a library of nobody's layer ran as root"
    assert res.returncode == 0, res.stderr.decode()
    # It did run (the library is on the path), as nobody.
    assert uids(marker) and set(uids(marker)) == {str(NOBODY)}, uids(marker)


def test_a_failing_query_as_nobody_says_why_it_did_not_run_as_root(stage, tmp_path, place, marker,
                                                                    env):
    """The venv in a folder nobody cannot enter: the query fails as nobody and
    the message says why it was not run as root, naming the layer's path."""
    layer = nobodys_layer(place, marker, env)
    top = tmp_path / "top"  # pytest's: root's, mode 0700
    subprocess.run([str(PYTHON), "-m", "venv", "--without-pip", str(top)], check=True, env=env)
    res = pyshim_tool(stage, "install", top, "--layer", layer, env=env)
    assert "0" not in uids(marker)
    assert res.returncode != 0
    err = res.stderr.decode()
    assert f"as uid {NOBODY}" in err, err
    assert (f"not run as root: the library folder {layer}/share/venv/dynlib: {layer} is owned "
            f"by uid {NOBODY}") in err, err


def nobodys_interpreter(place: Path, marker: Path, env) -> Path:
    folder = place / "nobodys"
    folder.mkdir()
    os.chown(folder, NOBODY, NOBODY)
    evil = folder / "python3"
    as_nobody("/bin/sh", "-c", f"cat > {evil} && chmod 755 {evil}", env=env,
              input=MARKER_INTERPRETER.format(marker=marker, python=PYTHON).encode())
    return evil


def test_reinstall_never_byte_compiles_the_hook_with_the_owners_interpreter_as_root(
        stage, place, marker, env):
    """Root made the venv and gave its folder to nobody (a CI cache, a
    volume): nobody points pyshim.toml's interpreter at a program of theirs.
    Root's re-run of install with a startup hook must not run it as root to
    byte-compile the hook module (site-packages is still root's)."""
    venv = place / "venv"
    subprocess.run([str(PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True, env=env)
    res = pyshim_tool(stage, "install", venv, env=env)
    assert res.returncode == 0, res.stderr.decode()
    os.chown(venv, NOBODY, NOBODY)
    evil = nobodys_interpreter(place, marker, env)
    config = venv / "pyshim.toml"
    text = config.read_text().replace(str(PYTHON), str(evil))
    assert str(evil) in text
    # nobody owns the folder, so may replace the file root wrote.
    as_nobody("/bin/sh", "-c", f"cat > {venv}/new.toml && mv -f {venv}/new.toml {config}",
              env=env, input=text.encode())
    site = next((venv / "lib").glob("python3.*/site-packages"))
    assert site.stat().st_uid == 0

    res = pyshim_tool(stage, "install", venv, "--startup", "json:dumps", env=env)
    assert "0" not in uids(marker), "root ran nobody's interpreter to byte-compile the hook"
    assert res.returncode == 0, res.stderr.decode()
    assert (site / "_pyshim_startup.py").exists()
    assert not list(site.glob("__pycache__/_pyshim_startup.*")), "compiled by whom?"


def test_install_as_root_still_byte_compiles_the_hook_in_a_root_only_venv(stage, place, env):
    """The other side of the rule: where only root can change anything, root
    compiles the hook module (every start then reads cached bytecode)."""
    venv = place / "venv"
    subprocess.run([str(PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True, env=env)
    res = pyshim_tool(stage, "install", venv, "--startup", "json:dumps", env=env)
    assert res.returncode == 0, res.stderr.decode()
    site = next((venv / "lib").glob("python3.*/site-packages"))
    assert list(site.glob("__pycache__/_pyshim_startup.*"))


def test_doctors_round_trip_runs_as_nobody_when_nobody_can_plant_code(stage, place, marker, env):
    """Root's doctor on a shim venv whose site-packages nobody can write (a
    .pth there runs in every start): the round trip runs as nobody, and
    doctor says so and why."""
    venv = place / "venv"
    subprocess.run([str(PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True, env=env)
    res = pyshim_tool(stage, "install", venv, env=env)
    assert res.returncode == 0, res.stderr.decode()
    site = next((venv / "lib").glob("python3.*/site-packages"))
    os.chown(site, NOBODY, NOBODY)
    as_nobody("/bin/sh", "-c", f"cat > {site}/planted.pth", env=env,
              input=f"import os; open('{marker}', 'a').write('%d\\n' % os.getuid())\n".encode())

    res = pyshim_tool(stage, "doctor", venv / "bin" / "python", env=env)
    assert "0" not in uids(marker), "doctor ran nobody's .pth as root"
    out = res.stdout.decode()
    assert f"the round trip runs as uid {NOBODY}, gid {NOBODY}, not as root" in out, out
    assert f"{site} is owned by uid {NOBODY}" in out, out
    assert uids(marker) and set(uids(marker)) == {str(NOBODY)}, uids(marker)


def test_doctor_runs_a_root_only_venv_as_root(stage, place, marker, env):
    venv = place / "venv"
    subprocess.run([str(PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True, env=env)
    res = pyshim_tool(stage, "install", venv, env=env)
    assert res.returncode == 0, res.stderr.decode()
    site = next((venv / "lib").glob("python3.*/site-packages"))
    (site / "planted.pth").write_text(
        f"import os; open('{marker}', 'a').write('%d\\n' % os.getuid())\n")
    res = pyshim_tool(stage, "doctor", venv / "bin" / "python", env=env)
    assert res.returncode == 0, res.stdout.decode()
    assert b"not as root" not in res.stdout
    assert set(uids(marker)) == {"0"}


def test_init_as_root_refuses_an_interpreter_someone_else_can_change(stage, place, marker, env):
    """`init --python PY` runs `PY -m venv` before there is a venv (or an
    owner) to run it as: as root, a PY nobody can change is refused, naming
    why, and nothing is created."""
    evil = nobodys_interpreter(place, marker, env)
    venv = place / "venv"
    res = pyshim_tool(stage, "init", venv, "--python", evil, env=env)
    assert "0" not in uids(marker), "root ran nobody's interpreter"
    assert res.returncode == 2
    err = res.stderr.decode()
    assert f"the interpreter {evil}: {evil.parent} is owned by uid {NOBODY}" in err, err
    assert not venv.exists()
