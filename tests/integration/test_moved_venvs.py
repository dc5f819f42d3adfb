"""Moved and copied shim venvs (README, "Two executables, and what a venv
holds": moved and copied venvs): `mv a b`
(or `cp -a a b`) keeps b/bin/python working, and every environment derived
from b (python -m venv from b/bin/python: its interpreter is b's base
launcher) uses b's restore library and b's config, never a's, whether a is
gone or still there. Checked in what the processes report: /proc/self/maps of
the derived interpreter and of a multiprocessing spawn worker, and the
[env] variable of the config that was used."""

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import run

PYTHON = Path("/usr/bin/python3.11")

# The restore libraries mapped in the derived interpreter and in a spawn
# worker, and MARK from the config's [env].
REPORT = r"""
import multiprocessing as mp, os
def maps():
    return sorted({l.split(None, 5)[5].strip() for l in open('/proc/self/maps')
                   if 'libpyshim-restore' in l})
def worker(q):
    q.put((maps(), os.environ.get('MARK', '<unset>')))
if __name__ == '__main__':
    ctx = mp.get_context('spawn')
    q = ctx.Queue()
    p = ctx.Process(target=worker, args=(q,))
    p.start()
    child = q.get(timeout=60)
    p.join()
    print(maps(), os.environ.get('MARK', '<unset>'), child[0], child[1])
"""


@pytest.fixture
def env(tmp_path):
    return {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": str(tmp_path)}


def set_mark(venv: Path, mark: str):
    """A hand edit of the venv's config: its [env] gets MARK."""
    (venv / "pyshim.toml").write_text(f'interpreter = "{PYTHON}"\n[env]\nMARK = "{mark}"\n')


def installed(stage, root: Path, env) -> Path:
    subprocess.run([str(PYTHON), "-m", "venv", "--without-pip", str(root)], check=True, env=env)
    res = run([stage.cli, "install", root], env)
    assert res.returncode == 0, res.stderr.decode()
    return root


def report(python: Path, env, tmp_path):
    script = tmp_path / "report.py"
    script.write_text(REPORT)
    res = run([python, script], env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr.decode()
    return res.stdout.decode()


def expected(venv: Path, mark: str) -> str:
    lib = [str(venv / "lib/pyshim/libpyshim-restore.so")]
    return f"{lib} {mark} {lib} {mark}\n"


@pytest.mark.parametrize("how", ["mv", "cp -a then rm", "cp -a, origin kept"])
def test_a_venv_derived_from_a_moved_venv_uses_the_moved_venvs_own_files(
        stage, tmp_path, env, how):
    a = installed(stage, tmp_path / "a", env)
    b = tmp_path / "b"
    if how == "mv":
        a.rename(b)
    else:
        subprocess.run(["cp", "-a", str(a), str(b)], check=True)
        if how == "cp -a then rm":
            shutil.rmtree(a)
        else:
            set_mark(a, "from-a")
    set_mark(b, "from-b")
    assert report(b / "bin/python", env, tmp_path) == expected(b, "from-b")

    derived = tmp_path / "derived"
    res = run([b / "bin/python", "-m", "venv", "--without-pip", derived], env)
    assert res.returncode == 0, res.stderr.decode()
    # The derived venv's interpreter runs through b's base launcher.
    assert (derived / "bin/python").resolve().parent == b / ".pyshim/base/bin"
    assert report(derived / "bin/python", env, tmp_path) == expected(b, "from-b")

    # An edit of b's config reaches the derived venv at its next launch.
    text = (b / "pyshim.toml").read_text().replace('"from-b"', '"edited-b"')
    (b / "pyshim.toml").write_text(text)
    assert report(derived / "bin/python", env, tmp_path) == expected(b, "edited-b")


def test_the_base_launcher_of_an_unmoved_venv_still_uses_its_stamp(stage, tmp_path, env):
    """Control: nothing moved, the base launcher's venv config is the stamped
    file unchanged, so the stamp is used (no TOML parsed)."""
    a = installed(stage, tmp_path / "a", env)
    base = next((a / ".pyshim/base/bin").glob("python3.*"))
    res = run([base, "-c", "pass"], {**env, "PYSHIM_LOG": "debug"})
    assert res.returncode == 0, res.stderr.decode()
    err = res.stderr.decode()
    assert f"config {a}/pyshim.toml (stamped in the launcher: not parsed)" in err, err
    # its own ../lib/pyshim/, the first place a launcher looks: .pyshim/base/lib
    # links to the venv's lib/, so that is the venv's copy
    assert f"restore library {a}/.pyshim/base/lib/pyshim/libpyshim-restore.so" in err, err
    assert (a / ".pyshim/base/lib/pyshim").resolve() == a / "lib/pyshim"


@pytest.mark.parametrize("how", ["mv", "cp -a then rm"])
def test_a_copies_venv_derived_from_a_moved_venv_uses_its_restore_library(
        stage, tmp_path, env, how):
    """`python -m venv --copies` from a moved shim venv: the derived launcher
    is a copy of b's base launcher, stamped with a's paths, and a is gone. It
    finds b's restore library through its pyvenv.cfg's `home` (b's base
    launcher folder) instead of exiting 125 at every launch."""
    a = installed(stage, tmp_path / "a", env)
    b = tmp_path / "b"
    if how == "mv":
        a.rename(b)
    else:
        subprocess.run(["cp", "-a", str(a), str(b)], check=True)
        shutil.rmtree(a)
    derived = tmp_path / "derived"
    res = run([b / "bin/python", "-m", "venv", "--copies", "--without-pip", derived], env)
    assert res.returncode == 0, res.stderr.decode()
    # A copy of the launcher, not a link into b.
    assert not (derived / "bin/python").resolve().is_relative_to(b)
    lib = [str(b / "lib/pyshim/libpyshim-restore.so")]
    out = report(derived / "bin/python", env, tmp_path)
    assert out.startswith(f"{lib} <unset> {lib} <unset>"), out
