"""How the launcher is invoked: sys.executable is the absolute invoked path
P, however the launcher is reached (a path, a bare name on PATH, links, a
script's #! line), and sys.prefix / base_prefix / sys.path are what the
plain interpreter (or a plain venv, see test_interpreters.py) reports.

Each case also checks, from inside the interpreter, that argv[0] really was
P (/proc/self/cmdline), that the config was applied (jemalloc mapped), and
that a child started through sys.executable comes back through the shim."""

import json
import os
import re
import shutil

import pytest

from conftest import (
    BASE_EXECUTABLE_PTH,
    INFO,
    LAUNCH_REPORT,
    assert_self_contained_venv,
    install_venv,
    interp_params,
    main_launcher_name,
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


def _site_packages(venv_root):
    found = sorted(venv_root.glob("lib/python3.*/site-packages"))
    assert len(found) == 1, found
    return found[0]


def _base_launcher(outer):
    return outer.root / ".pyshim" / "base" / "bin" / main_launcher_name(outer.interp)


def _nested_venv_works(outer, inner, base_env, copies=False):
    """inner was made by `outer/bin/python -m venv` (maybe through other
    venvs made that way): its python leads to the outer venv's base launcher
    (with --copies: is a copy of it) and works through the outer config."""
    link = inner / "bin" / "python"
    if copies:
        assert not link.is_symlink()
        assert link.read_bytes() == _base_launcher(outer).read_bytes()
    else:
        assert link.is_symlink()
        assert os.path.realpath(link) == str(_base_launcher(outer))
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
    """A venv made with an installed shim venv's python (the README: made
    from sys._base_executable, which the venv's .pth points at the base
    launcher) links to the outer venv's base launcher, a stamped copy of its
    own, and works through the outer config."""
    outer = install_venv(stage, interp, tmp_path / "outer", base_env, "--preload", jemalloc)
    base = _base_launcher(outer)
    assert_self_contained_venv(stage, outer.root, main_launcher_name(interp))
    got = run_json(
        [outer.python, "-c", "import json, sys; print(json.dumps(sys._base_executable))"],
        base_env)
    assert got == str(base)
    inner = tmp_path / "inner"
    res = run([outer.python, "-m", "venv", "--without-pip", inner], base_env)
    assert res.returncode == 0, res.stderr.decode()
    # the inner venv links to the outer base launcher: not to the outer
    # venv's own bin/python3.X, not to the prefix's launcher
    assert (inner / "bin" / "python").resolve(strict=True) == base
    chain = [os.readlink(inner / "bin" / "python")]
    while not os.path.isabs(chain[-1]):  # python -> python3.X -> the base launcher
        chain.append(os.readlink(inner / "bin" / chain[-1]))
    assert chain[-1] == str(base), chain
    assert not (_site_packages(inner) / BASE_EXECUTABLE_PTH).exists()
    _nested_venv_works(outer, inner, base_env)


@pytest.mark.parametrize("interp", interp_params(include_pypy=False))
def test_nested_copies_venv_from_shim_venv(interp, stage, tmp_path, base_env, jemalloc):
    """`outer/bin/python -m venv --copies inner`: every inner interpreter is
    a copy of the base launcher, stamp included, so it needs no link back
    to find the outer config."""
    outer = install_venv(stage, interp, tmp_path / "outer", base_env, "--preload", jemalloc)
    inner = tmp_path / "inner"
    res = run([outer.python, "-m", "venv", "--copies", "--without-pip", inner], base_env)
    assert res.returncode == 0, res.stderr.decode()
    main = inner / "bin" / main_launcher_name(interp)
    assert not main.is_symlink() and main.read_bytes() == _base_launcher(outer).read_bytes()
    _nested_venv_works(outer, inner, base_env, copies=True)


@pytest.mark.parametrize("interp", interp_params(include_pypy=False))
def test_venv_nested_two_deep_from_shim_venv(interp, stage, tmp_path, base_env, jemalloc):
    """outer (installed) -> inner (python -m venv) -> inner2 (python -m venv
    from inner): inner2 works through the outer config too. In 3.11+ inner's
    sys._base_executable is the realpath of its home interpreter, the base
    launcher itself (a file, not a link: the README); in 3.8-3.10 it is
    inner's own python, which leads there too."""
    outer = install_venv(stage, interp, tmp_path / "outer", base_env, "--preload", jemalloc)
    inner = tmp_path / "inner"
    res = run([outer.python, "-m", "venv", "--without-pip", inner], base_env)
    assert res.returncode == 0, res.stderr.decode()
    got = run_json(
        [inner / "bin" / "python", "-c", "import json, sys; print(json.dumps(sys._base_executable))"],
        base_env)
    if interp.version >= (3, 11):
        assert got == str(_base_launcher(outer))
    else:
        assert got == str(inner / "bin" / "python")
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


# --------------------------------------------------------------------------
# The stamp: the config a launcher copy carries (the README)

STAMP_LOG = "(stamped in the launcher: not parsed)"


def _debug_config_line(stderr: bytes) -> str:
    lines = [line for line in stderr.decode().splitlines()
             if line.startswith("pyshim: debug: config ")]
    assert len(lines) == 1, stderr.decode()
    return lines[0][len("pyshim: debug: config "):]


def _stamped_venv(stage, py, tmp_path, base_env, jemalloc):
    venv = install_venv(stage, py, tmp_path / "venv", base_env, "--preload", jemalloc,
                        "--env", "ITEST_FROM=install")
    stamp = assert_self_contained_venv(stage, venv.root, main_launcher_name(py))
    assert stamp["env"] == {"ITEST_FROM": "install"}
    return venv


ENV_CHECK = ("import json, os, sys; print(json.dumps({'executable': sys.executable, "
             "'prefix': sys.prefix, 'from': os.environ.get('ITEST_FROM'), "
             "'jemalloc': 'libjemalloc' in open('/proc/self/maps').read(), "
             "'restore': sorted({l.split(None, 5)[5].strip() for l in open('/proc/self/maps') "
             "if 'libpyshim-restore' in l})}))")


def test_stamped_copy_runs_its_venvs_config_anywhere(py, stage, tmp_path, base_env, jemalloc):
    """`cp VENV/bin/python3.X elsewhere/bin/python`: no pyshim.toml and no
    restore library near the copy; the stamp gives both (the config unparsed:
    the file it names is unchanged)."""
    venv = _stamped_venv(stage, py, tmp_path, base_env, jemalloc)
    copy = tmp_path / "elsewhere" / "bin" / "python"
    copy.parent.mkdir(parents=True)
    shutil.copy2(venv.root / "bin" / main_launcher_name(py), copy)
    res = run([copy, "-c", SNIPPET], base_env)
    assert res.returncode == 0, res.stderr.decode()
    got = json.loads(res.stdout)
    plain = run_json([py.path, "-c", INFO], base_env)
    assert got["executable"] == got["argv0"] == got["child_executable"] == str(copy)
    assert got["jemalloc"] is True and got["child_jemalloc"] is True
    for key in ("prefix", "base_prefix", "path"):  # a standalone launcher now
        assert got[key] == plain[key], f"sys.{key}"
    res = run([copy, "-c", ENV_CHECK], dict(base_env, PYSHIM_LOG="debug"))
    assert res.returncode == 0, res.stderr.decode()
    assert _debug_config_line(res.stderr) == f"{venv.config} {STAMP_LOG}"
    got = json.loads(res.stdout)
    assert got["from"] == "install"
    assert got["restore"] == [str(venv.root / "lib" / "pyshim" / stage.restore.name)]


def _launcher_at(where, venv, py, tmp_path):
    """The venv's own launcher, or a copy of its stamped file elsewhere."""
    if where == "venv":
        return venv.python
    launcher = tmp_path / "elsewhere" / "python"
    launcher.parent.mkdir()
    shutil.copy2(venv.root / "bin" / main_launcher_name(py), launcher)
    return launcher


@pytest.mark.parametrize("where", ["venv", "copy"])
def test_stamped_config_edited_by_hand_takes_effect(where, py, stage, tmp_path, base_env,
                                                    jemalloc):
    """The stamped pyshim.toml changed since install: it is parsed, by the
    venv's launcher (found beside the venv) and by a copy elsewhere (found
    through the stamp) alike."""
    venv = _stamped_venv(stage, py, tmp_path, base_env, jemalloc)
    launcher = _launcher_at(where, venv, py, tmp_path)
    before = json.loads(run([launcher, "-c", ENV_CHECK], base_env).stdout)
    assert before["from"] == "install" and before["jemalloc"] is True
    write_config(venv.root, py.path, env={"ITEST_FROM": "hand edit"})  # no preload now
    res = run([launcher, "-c", ENV_CHECK], dict(base_env, PYSHIM_LOG="debug"))
    assert res.returncode == 0, res.stderr.decode()
    assert _debug_config_line(res.stderr) == str(venv.config)  # parsed, not the stamp
    got = json.loads(res.stdout)
    assert got["executable"] == str(launcher)
    assert got["from"] == "hand edit" and got["jemalloc"] is False


@pytest.mark.parametrize("where", ["venv", "copy"])
def test_stamped_config_file_gone_uses_the_stamp(where, py, stage, tmp_path, base_env,
                                                 jemalloc):
    venv = _stamped_venv(stage, py, tmp_path, base_env, jemalloc)
    launcher = _launcher_at(where, venv, py, tmp_path)
    venv.config.unlink()
    res = run([launcher, "-c", ENV_CHECK], dict(base_env, PYSHIM_LOG="debug"))
    assert res.returncode == 0, res.stderr.decode()
    assert _debug_config_line(res.stderr) == f"{venv.config} {STAMP_LOG}"
    got = json.loads(res.stdout)
    assert got["executable"] == str(launcher)
    assert got["from"] == "install" and got["jemalloc"] is True
    if where == "venv":
        assert got["prefix"] == str(venv.root)


@pytest.mark.parametrize("how", ["beside", "PYSHIM_CONFIG"])
def test_a_config_found_first_wins_over_the_stamp(how, py, stage, tmp_path, base_env, jemalloc):
    """The stamp is the last place looked: a pyshim.toml beside the copy,
    or $PYSHIM_CONFIG, is used instead (and the stamped file is not)."""
    venv = _stamped_venv(stage, py, tmp_path, base_env, jemalloc)
    launcher = tmp_path / "elsewhere" / "bin" / "python"
    launcher.parent.mkdir(parents=True)
    shutil.copy2(venv.root / "bin" / main_launcher_name(py), launcher)
    env = dict(base_env, PYSHIM_LOG="debug")
    if how == "beside":
        cfg = write_config(launcher.parent.parent, py.path, env={"ITEST_FROM": how})
    else:
        (tmp_path / "cfg").mkdir()
        cfg = write_config(tmp_path / "cfg", py.path, env={"ITEST_FROM": how})
        env["PYSHIM_CONFIG"] = str(cfg)
    res = run([launcher, "-c", ENV_CHECK], env)
    assert res.returncode == 0, res.stderr.decode()
    assert _debug_config_line(res.stderr) == str(cfg)
    got = json.loads(res.stdout)
    assert got["from"] == how and got["jemalloc"] is False
    # the restore library still comes from the stamp: none near the copy
    assert got["restore"] == [str(venv.root / "lib" / "pyshim" / stage.restore.name)]


# --------------------------------------------------------------------------
# Two executables: the launcher is one whatever its name, the CLI never


@pytest.mark.parametrize("mode", ["symlink", "copy", "stamped copy"])
def test_launcher_invoked_as_pyshim_is_a_launcher(mode, py, stage, tmp_path, base_env,
                                                  jemalloc):
    """PREFIX/lib/pyshim/pyshim-launcher under the name `pyshim` (a link, a
    copy, a stamped copy) runs Python: `--version` and `--help` are
    Python's, never the CLI's."""
    root = tmp_path / "root"
    launcher = root / "bin" / "pyshim"
    if mode == "stamped copy":
        venv = _stamped_venv(stage, py, tmp_path, base_env, jemalloc)
        launcher.parent.mkdir(parents=True)
        shutil.copy2(venv.root / "bin" / main_launcher_name(py), launcher)
    else:
        place_launcher(stage, launcher, "symlink" if mode == "symlink" else "copy")
        write_config(root, py.path, preload=[jemalloc])
    for args in (["--version"], ["--help"]):
        want = run([py.path, *args], base_env)
        got = run([launcher, *args], base_env)
        assert got.returncode == want.returncode == 0, got.stderr.decode()
        # --help's usage line names argv[0]: the launcher's path (P)
        assert got.stdout.replace(bytes(launcher), bytes(py.path)) == want.stdout, args
        assert got.stderr == want.stderr == b"", args
    assert run([launcher, "--version"], base_env).stdout.startswith(b"Python 3.")
    assert run([stage.cli, "--version"], base_env).stdout.startswith(b"pyshim ")
    res = run([launcher, "-c", SNIPPET], base_env)
    assert res.returncode == 0, res.stderr.decode()
    got = json.loads(res.stdout)
    assert got["executable"] == got["child_executable"] == str(launcher)
    assert got["jemalloc"] is True and got["child_jemalloc"] is True


def test_launcher_invoked_as_pyshim_without_config_fails_as_a_launcher(stage, tmp_path,
                                                                        base_env):
    launcher = tmp_path / "bin" / "pyshim"
    place_launcher(stage, launcher, "copy")
    res = run([launcher, "--help"], base_env)
    assert res.returncode == 125
    assert res.stdout == b""
    assert res.stderr.decode().startswith(f"pyshim: error: no pyshim.toml found for {launcher}\n")


def test_the_cli_is_never_a_launcher(py, stage, tmp_path, base_env):
    """PREFIX/bin/pyshim linked as a venv's bin/python, beside a valid
    pyshim.toml: still the CLI (it does not run Python)."""
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.symlink_to(stage.cli)
    write_config(tmp_path, py.path)
    res = run([python, "--version"], base_env)
    assert res.returncode == 0, res.stderr.decode()
    assert re.fullmatch(rb"pyshim \d+\.\d+\.\d+\n", res.stdout), res.stdout
    res = run([python, "-c", "print('interpreter ' + 'ran')"], base_env)
    assert res.returncode == 2, res.stderr.decode()  # a CLI usage error
    assert res.stdout == b""
    assert b"interpreter ran" not in res.stderr and b"--help" in res.stderr, res.stderr
    res = run([python, "--help"], base_env)
    assert res.returncode == 0 and b"Usage: pyshim" in res.stdout, res.stdout


# --------------------------------------------------------------------------
# The launcher as a script's #! interpreter (every pip console script)


@pytest.mark.parametrize("where", ["bin", "elsewhere"])
@pytest.mark.parametrize("shebang_arg", ["", " -E"])
def test_launcher_as_shebang_interpreter(init_venv, tmp_path, base_env, where, shebang_arg):
    venv = init_venv
    folder = venv / "bin" if where == "bin" else tmp_path / "scripts"
    folder.mkdir(exist_ok=True)
    script = folder / "tool"
    script.write_text(f"#!{venv / 'bin/python'}{shebang_arg}\n{LAUNCH_REPORT}")
    script.chmod(0o755)
    res = run([script, "a", ""], base_env, timeout=60)
    assert res.returncode == 0, res.stderr.decode()
    lines = res.stdout.decode().splitlines()
    # sys.executable is the launcher from the #! line, not the script.
    assert lines[0] == str(venv / "bin/python")
    assert lines[1] == "True True"
    assert lines[2] == "[]"
    assert lines[3] == "<unset>"
    assert lines[4] == "['a', '']"


def test_shebang_script_spawn_pool_workers_are_the_launcher(init_venv, base_env):
    venv = init_venv
    script = venv / "bin" / "pooltool"
    script.write_text(
        f"#!{venv / 'bin/python'}\n"
        "import multiprocessing as mp, sys\n"
        "def who(_):\n"
        "    return sys.executable, 'jemalloc' in open('/proc/self/maps').read()\n"
        "if __name__ == '__main__':\n"
        "    with mp.get_context('spawn').Pool(2) as pool:\n"
        "        print(set(pool.map(who, range(4))))\n")
    script.chmod(0o755)
    res = run([script], base_env, timeout=60)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.decode().strip() == str({(str(venv / "bin/python"), True)})
