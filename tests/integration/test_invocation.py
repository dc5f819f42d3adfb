"""Issue 2, item 1: sys.executable is the absolute invoked path P, however the
launcher is reached, and sys.prefix / base_prefix / sys.path are what the
plain interpreter (or a plain venv, see test_interpreters.py) reports.

Each case also checks, from inside the interpreter, that argv[0] really was
P (/proc/self/cmdline), that the config was applied (jemalloc mapped), and
that a child started through sys.executable comes back through the shim."""

import json
import os
import shutil

import pytest

from conftest import (
    INFO,
    install_venv,
    interp_params,
    place_launcher,
    run,
    run_json,
    write_config,
)

SNIPPET = r"""
import json, os, subprocess, sys
def read(path):
    with open(path, 'rb') as f:
        return f.read()
child = subprocess.run([sys.executable, '-c',
    'import sys\nwith open("/proc/self/maps") as f: print(sys.executable, "libjemalloc" in f.read())'],
    stdout=subprocess.PIPE, check=True).stdout.decode().split()
print(json.dumps({
    'executable': sys.executable,
    'prefix': sys.prefix,
    'base_prefix': sys.base_prefix,
    'path': sys.path,
    'argv0': os.fsdecode(read('/proc/self/cmdline').split(b'\0')[0]),
    'jemalloc': b'libjemalloc' in read('/proc/self/maps'),
    'child_executable': child[0],
    'child_jemalloc': child[1] == 'True',
}))
"""

def _standalone(stage, root, interp, jemalloc, config_dir=None, mode="symlink"):
    launcher = root / "bin" / "python"
    place_launcher(stage, launcher, mode)
    write_config(config_dir or root, interp.path, preload=[jemalloc])
    return launcher


# Each case: (build the layout) -> (argv[0] to run, cwd, PATH, expected P).
def case_absolute(stage, root, interp, jemalloc):
    p = _standalone(stage, root, interp, jemalloc)
    return [str(p)], None, None, p


def case_config_beside(stage, root, interp, jemalloc):
    p = _standalone(stage, root, interp, jemalloc, config_dir=root / "bin")
    return [str(p)], None, None, p


def case_copy_restore_beside(stage, root, interp, jemalloc):
    p = _standalone(stage, root, interp, jemalloc, mode="copy-beside")
    assert not p.is_symlink()
    return [str(p)], None, None, p


def case_dot_relative(stage, root, interp, jemalloc):
    p = _standalone(stage, root, interp, jemalloc)
    return ["./python"], p.parent, None, p


def case_dir_relative(stage, root, interp, jemalloc):
    p = _standalone(stage, root, interp, jemalloc)
    return ["bin/python"], root, None, p


def case_bare_name_on_path(stage, root, interp, jemalloc):
    p = _standalone(stage, root, interp, jemalloc)
    return ["python"], None, f"{p.parent}:/usr/bin:/bin", p


def case_bare_name_relative_path_entry(stage, root, interp, jemalloc):
    p = _standalone(stage, root, interp, jemalloc)
    return ["python"], root, "bin:/usr/bin:/bin", p


def case_two_symlinks_config_at_first(stage, root, interp, jemalloc):
    middle = root / "b" / "bin" / "python"
    place_launcher(stage, middle)
    p = root / "a" / "bin" / "python"
    p.parent.mkdir(parents=True)
    p.symlink_to(middle)
    write_config(root / "a", interp.path, preload=[jemalloc])
    return [str(p)], None, None, p


def case_two_symlinks_config_at_hop(stage, root, interp, jemalloc):
    middle = root / "b" / "bin" / "python"
    place_launcher(stage, middle)
    write_config(root / "b" / "bin", interp.path, preload=[jemalloc])
    p = root / "a" / "bin" / "python"
    p.parent.mkdir(parents=True)
    p.symlink_to(os.path.relpath(middle, p.parent))  # a relative link, resolved against a/bin
    return [str(p)], None, None, p


CASES = [
    case_absolute,
    case_config_beside,
    case_copy_restore_beside,
    case_dot_relative,
    case_dir_relative,
    case_bare_name_on_path,
    case_bare_name_relative_path_entry,
    case_two_symlinks_config_at_first,
    case_two_symlinks_config_at_hop,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__[5:] for c in CASES])
@pytest.mark.parametrize("interp", interp_params(include_pypy=False))
def test_standalone_invocation(case, interp, stage, tmp_path, base_env, jemalloc):
    root = tmp_path / "root"
    root.mkdir()
    argv0, cwd, path, expected = case(stage, root, interp, jemalloc)
    env = dict(base_env)
    if path is not None:
        env["PATH"] = path
    # Through /bin/sh, as a user's shell or a build tool would run it: a bare
    # name is looked up in PATH by the shell, and argv[0] stays as typed.
    res = run(["/bin/sh", "-c", 'exec "$0" -c "$1"', argv0[0], SNIPPET], env, cwd=cwd)
    assert res.returncode == 0, res.stderr.decode()
    got = json.loads(res.stdout)
    plain = run_json([interp.path, "-c", INFO], base_env)
    assert got["executable"] == str(expected)
    assert got["argv0"] == str(expected)
    assert got["jemalloc"] is True
    assert got["child_executable"] == str(expected)
    assert got["child_jemalloc"] is True
    for key in ("prefix", "base_prefix", "path"):
        assert got[key] == plain[key], f"sys.{key}"
    assert res.stderr == b""


BASE_EXECUTABLE_PTH = "pyshim-base-executable.pth"


def _site_packages(venv_root):
    found = sorted(venv_root.glob("lib/python3.*/site-packages"))
    assert len(found) == 1, found
    return found[0]


def _nested_venv_works(outer, inner, base_env):
    """inner was made by `outer/bin/python -m venv`: it links (maybe through
    other venvs) to the outer launcher and works through the outer config."""
    link = inner / "bin" / "python"
    assert link.is_symlink()
    assert os.path.realpath(link) == os.path.realpath(outer.python)  # the shim binary
    res = run([link, "-c", SNIPPET], base_env)
    assert res.returncode == 0, res.stderr.decode()
    got = json.loads(res.stdout)
    assert got["executable"] == str(link)
    assert got["argv0"] == str(link)
    assert got["prefix"] == str(inner)
    assert got["base_prefix"] == outer.plain["base_prefix"]
    assert got["path"][-1] == str(_site_packages(inner)), got["path"]
    assert got["path"][:-1] == [p for p in outer.plain["path"] if "site-packages" not in p]
    assert got["jemalloc"] is True
    assert got["child_executable"] == str(link)
    assert got["child_jemalloc"] is True
    assert res.stderr == b""


@pytest.mark.parametrize("interp", interp_params(include_pypy=False))
def test_nested_venv_from_shim_venv(interp, stage, tmp_path, base_env, jemalloc):
    """A venv made with an installed shim venv's python (DESIGN.md 3.2: "a
    nested venv made from a shim venv links to the outer shim") works through
    the outer config. In 3.11+ this relies on the .pth that `pyshim install`
    writes (sys._base_executable = the launcher, not the pyshim binary)."""
    outer = install_venv(stage, interp, tmp_path / "outer", base_env, "--preload", jemalloc)
    assert (_site_packages(outer.root) / BASE_EXECUTABLE_PTH).is_file()
    base = run_json(
        [outer.python, "-c", "import json, sys; print(json.dumps(sys._base_executable))"],
        base_env)
    assert base == str(outer.python)
    inner = tmp_path / "inner"
    res = run([outer.python, "-m", "venv", "--without-pip", inner], base_env)
    assert res.returncode == 0, res.stderr.decode()
    # the inner venv links to the outer launcher, not to the pyshim binary
    assert (inner / "bin" / "python").resolve(strict=True) == stage.shim
    chain = [os.readlink(inner / "bin" / "python")]
    if not os.path.isabs(chain[0]):  # python -> python3.X -> outer launcher
        chain.append(os.readlink(inner / "bin" / chain[0]))
    assert chain[-1] == str(outer.python), chain
    _nested_venv_works(outer, inner, base_env)


@pytest.mark.parametrize("interp", interp_params(include_pypy=False))
def test_venv_nested_two_deep_from_shim_venv(request, interp, stage, tmp_path, base_env,
                                             jemalloc):
    """outer (installed) -> inner (python -m venv) -> inner2 (python -m venv
    from inner): inner2 should work through the outer config too."""
    if interp.version >= (3, 11):
        request.node.add_marker(pytest.mark.xfail(strict=True, reason=(
            "pyshim bug: only `pyshim install` writes pyshim-base-executable.pth, so in a venv "
            "made by `outer/bin/python -m venv inner` (3.11+) sys._base_executable is the "
            "realpath, <prefix>/bin/pyshim; `inner/bin/python -m venv inner2` then links "
            "inner2/bin/python -> pyshim (in inner2/bin) and inner2's python exits 125 "
            "'no pyshim.toml found'")))
    outer = install_venv(stage, interp, tmp_path / "outer", base_env, "--preload", jemalloc)
    inner = tmp_path / "inner"
    res = run([outer.python, "-m", "venv", "--without-pip", inner], base_env)
    assert res.returncode == 0, res.stderr.decode()
    inner2 = tmp_path / "inner2"
    res = run([inner / "bin" / "python", "-m", "venv", "--without-pip", inner2], base_env)
    assert res.returncode == 0, res.stderr.decode()
    _nested_venv_works(outer, inner2, base_env)


@pytest.mark.parametrize("interp", interp_params(include_pypy=False))
def test_venv_made_with_real_interpreter_from_shim_venv_is_plain(interp, stage, tmp_path,
                                                                 base_env, jemalloc):
    """From inside an installed shim venv, a venv made with the *real*
    interpreter's path is an ordinary venv: the same links, pyvenv.cfg and
    sys values as one made outside any shim, no pyshim files, no preload."""
    outer = install_venv(stage, interp, tmp_path / "outer", base_env, "--preload", jemalloc)
    made_inside = tmp_path / "inside" / "venv"
    made_outside = tmp_path / "outside" / "venv"
    code = ("import subprocess, sys; "
            "subprocess.run([sys.argv[1], '-m', 'venv', '--without-pip', sys.argv[2]], check=True)")
    res = run([outer.python, "-c", code, interp.path, made_inside], base_env)
    assert res.returncode == 0, res.stderr.decode()
    res = run([interp.path, "-m", "venv", "--without-pip", made_outside], base_env)
    assert res.returncode == 0, res.stderr.decode()

    def bin_links(root):
        return {p.name: os.readlink(p) for p in (root / "bin").iterdir() if p.is_symlink()}

    def cfg(root):
        lines = (root / "pyvenv.cfg").read_text().splitlines()
        return [line.replace(str(root), "VENV") for line in lines]

    assert bin_links(made_inside) == bin_links(made_outside)
    assert all("pyshim" not in target for target in bin_links(made_inside).values())
    assert cfg(made_inside) == cfg(made_outside)
    assert sorted(p.name for p in _site_packages(made_inside).iterdir()) == sorted(
        p.name for p in _site_packages(made_outside).iterdir())
    assert not (_site_packages(made_inside) / BASE_EXECUTABLE_PTH).exists()

    report = ("import json, sys; maps = open('/proc/self/maps').read(); print(json.dumps({"
              "'executable': sys.executable, 'base_executable': sys._base_executable, "
              "'prefix': sys.prefix, 'base_prefix': sys.base_prefix, 'path': sys.path, "
              "'jemalloc': 'libjemalloc' in maps, 'pyshim': 'pyshim' in maps}))")

    def norm(root, got):
        return json.loads(json.dumps(got).replace(str(root), "VENV"))

    inside = run_json([made_inside / "bin" / "python", "-c", report], base_env)
    outside = run_json([made_outside / "bin" / "python", "-c", report], base_env)
    assert norm(made_inside, inside) == norm(made_outside, outside)
    assert inside["executable"] == str(made_inside / "bin" / "python")
    assert inside["jemalloc"] is False and inside["pyshim"] is False


def test_pyshim_config_env_var(py, stage, tmp_path, base_env, jemalloc):
    """$PYSHIM_CONFIG wins over a pyshim.toml beside the launcher."""
    p = tmp_path / "bin" / "python"
    place_launcher(stage, p)
    write_config(tmp_path, "/nonexistent/python")  # would be exit 127
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cfg = write_config(elsewhere, py.path, preload=[jemalloc])
    env = dict(base_env, PYSHIM_CONFIG=str(cfg))
    got = json.loads(run([p, "-c", SNIPPET], env).stdout)
    assert got["executable"] == str(p)
    assert got["jemalloc"] is True and got["child_jemalloc"] is True


def test_relative_paths_in_config(py, stage, tmp_path, base_env, testlibs):
    """interpreter and library_path relative to the config file's folder."""
    root = tmp_path / "root"
    p = root / "bin" / "python"
    place_launcher(stage, p)
    (root / "real").mkdir()
    (root / "real" / "python").symlink_to(py.path)
    shutil.copytree(testlibs.libdir, root / "dynlib")
    (root / "pyshim.toml").write_text(
        'interpreter = "real/python"\nlibrary_path = ["./dynlib"]\n'
    )
    res = run(
        [p, "-c", "import ctypes, sys; print(sys.executable); "
         "print(ctypes.CDLL('libpyshimtest.so').pyshimtest_answer())"],
        base_env,
        cwd="/",
    )
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.decode().split() == [str(p), "42"]


@pytest.mark.parametrize("position,expected", [
    (None, 42),  # default: prepend, the configured dir wins
    ("prepend", 42),
    ("append", 7),  # the caller's dir wins
])
def test_library_path_position(py, stage, tmp_path, base_env, testlibs, position, expected):
    """Two dirs hold a libpyshimtest.so answering 42 (configured) and 7
    (caller's LD_LIBRARY_PATH): which one ctypes loads shows the order."""
    p = tmp_path / "bin" / "python"
    place_launcher(stage, p)
    write_config(tmp_path, py.path, library_path=[testlibs.libdir], position=position)
    env = dict(base_env, LD_LIBRARY_PATH=str(testlibs.altdir))
    res = run(
        [p, "-c", "import ctypes, os; print(ctypes.CDLL('libpyshimtest.so').pyshimtest_answer()); "
         "print(os.environ['LD_LIBRARY_PATH'])"],
        env,
    )
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.decode().split() == [str(expected), str(testlibs.altdir)]


@pytest.mark.parametrize("argv0", ["python", "bin/python", "absolute"])
def test_fexecve_falls_back_to_argv0(py, stage, tmp_path, base_env, jemalloc, argv0):
    """Started with fexecve() the kernel reports AT_EXECFN as /dev/fd/N, which
    is no use as P: the launcher takes argv[0], searching PATH for a bare
    name like execvp did, or making a relative one absolute."""
    root = tmp_path / "root"
    p = _standalone(stage, root, py, jemalloc)
    arg0 = str(p) if argv0 == "absolute" else argv0
    launch = (
        "import os, sys\n"
        f"fd = os.open({str(p)!r}, os.O_RDONLY)\n"
        f"os.execve(fd, [{arg0!r}, '-c', sys.argv[1]], dict(os.environ))\n"
    )
    env = dict(base_env, PATH=f"{p.parent}:/usr/bin:/bin")
    res = run([py.path, "-c", launch, SNIPPET], env, cwd=root)
    assert res.returncode == 0, res.stderr.decode()
    got = json.loads(res.stdout)
    assert got["executable"] == str(p)
    assert got["argv0"] == str(p)
    assert got["jemalloc"] is True and got["child_executable"] == str(p)
