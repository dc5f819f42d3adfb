"""Tool mode, end to end (README "Tool mode"): `pyshim init`, `install`,
`uninstall`, the preload presets and the help/version output, driven through
the installed binary as a user would.

- init with every interpreter of the matrix (Debian's python3.11 and -dbg,
  pyenv 3.8-3.13, PyPy): the venv works through the shim (sys.executable, the
  preload in the interpreter and a spawn worker, clean /bin/sh children);
- the layout (the README): by default a self-contained venv (bin/python3.X
  a stamped copy of the launcher, the other names linking to it, the restore
  library in VENV/lib/pyshim/, a base launcher in VENV/.pyshim/base/bin/);
  with --symlink, links to PREFIX/lib/pyshim/pyshim-launcher;
- install then uninstall leaves the venv byte-identical (every path under it:
  type, permission bits, symlink target, sha256 of each file), for symlink and
  --copies venvs, a venv with pip, the default, --copy and --symlink layouts,
  startup hooks and PyPy;
- install twice: the second run changes nothing, not even an mtime or inode;
- refusals: exit 2 with a clear message, and nothing touched;
- a self-contained venv keeps working after the installed prefix is deleted;
- realpath(sys.executable) of a shim venv is a launcher, not the CLI;
- presets resolve to what `ldconfig -p` / `gcc -print-file-name` report."""

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tomllib  # the suite runs with /usr/bin/python3.11
from pathlib import Path

import pytest

from conftest import (
    CONFIG_ENV,
    INFO,
    all_interpreters,
    assert_probe,
    assert_self_contained_venv,
    assert_shared_venv,
    caller_env,
    interp_params,
    launchers_summary,
    links_to_base_launcher,
    main_launcher_name,
    make_venv,
    plain_venv,
    probe,
    pyshim_tool,
    run,
    run_json,
)

NOTHING_CHANGED = "is already a shim venv with this configuration; nothing changed"
PYPY_COPY_NOTE = ("PyPy interpreter: installing a copy of the launcher (PyPy resolves symlinks "
                  "in argv[0])")
PRESETS = ("asan", "ubsan", "tsan", "jemalloc", "tcmalloc", "mimalloc")


# --------------------------------------------------------------------------
# helpers


def interp(ident):
    """An interpreter of the matrix by id; a skip with its reason if missing."""
    for it in all_interpreters():
        if it.id == ident:
            if it.path is None:
                pytest.skip(it.missing_reason)
            return it
    raise KeyError(ident)


def tool(stage, *args, env, **kw):
    return pyshim_tool(stage, *args, env=env, **kw)


def tool_ok(stage, *args, env, **kw) -> str:
    res = tool(stage, *args, env=env, **kw)
    assert res.returncode == 0, (
        f"pyshim {' '.join(map(str, args))} exited {res.returncode}\n"
        f"stdout: {res.stdout.decode()}\nstderr: {res.stderr.decode()}"
    )
    assert res.stderr == b"", res.stderr.decode()
    return res.stdout.decode()


def refused(res, message):
    """Exit 2, nothing on stdout, `pyshim: error: <message>` first on stderr
    and a hint last."""
    err = res.stderr.decode()
    assert res.returncode == 2, f"exit {res.returncode}\n{err}{res.stdout.decode()}"
    assert res.stdout == b"", res.stdout.decode()
    lines = err.splitlines()
    assert lines[0] == f"pyshim: error: {message}", err
    assert lines[-1].startswith("  hint: ") and lines[-1][len("  hint: "):].strip(), err
    return err


def tree(root: Path, times: bool = False) -> dict:
    """Everything under root (root included, symlinks not followed): for each
    relative path its type, permission bits, symlink target or the sha256 of
    its bytes; with times, also mtime and inode (a file rewritten with the
    same bytes gets a new inode or mtime)."""
    root = Path(root)
    out = {}

    def add(path):
        st = os.lstat(path)
        item = {"mode": oct(stat.S_IMODE(st.st_mode))}
        if stat.S_ISLNK(st.st_mode):
            item.update(type="symlink", target=os.readlink(path))
        elif stat.S_ISREG(st.st_mode):
            item.update(type="file", sha256=hashlib.sha256(Path(path).read_bytes()).hexdigest())
        elif stat.S_ISDIR(st.st_mode):
            item.update(type="dir")
        else:
            item.update(type=oct(stat.S_IFMT(st.st_mode)))
        if times:
            item.update(mtime_ns=st.st_mtime_ns, ino=st.st_ino)
        out[os.path.relpath(path, root)] = item

    add(root)
    for dirpath, dirnames, filenames in os.walk(root):  # does not descend into links
        for name in dirnames + filenames:
            add(os.path.join(dirpath, name))
    return out


def assert_same_tree(before: dict, after: dict):
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = {k: (before[k], after[k]) for k in set(before) & set(after) if before[k] != after[k]}
    assert not (added or removed or changed), (
        f"added: {added}\nremoved: {removed}\nchanged: "
        + "\n  ".join(f"{k}: {b} -> {a}" for k, (b, a) in sorted(changed.items()))
    )


def config_of(venv: Path) -> dict:
    return tomllib.loads((venv / "pyshim.toml").read_text())


def env_args(env: dict):
    return [arg for k, v in env.items() for arg in ("--env", f"{k}={v}")]


# A Python program that reports, from the interpreter and a spawn worker,
# sys.executable and which of the given substrings name a mapped file (as
# the mapped file's real path).
WORKER = r"""
import json, multiprocessing, os, sys

def report(needles):
    with open("/proc/self/maps") as f:
        files = {line.split()[-1] for line in f if len(line.split()) >= 6}
    return {
        "executable": sys.executable,
        "prefix": sys.prefix,
        "pid": os.getpid(),
        "mapped": {n: sorted(os.path.realpath(p) for p in files if n in os.path.basename(p))
                   for n in needles},
        "env": {k: os.environ.get(k) for k in ("ASAN_OPTIONS", "LD_PRELOAD")},
    }

def child(q, needles):
    q.put(report(needles))

if __name__ == "__main__":
    needles = sys.argv[1:]
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=child, args=(q, needles))
    p.start()
    worker = q.get(timeout=60)
    p.join(60)
    print(json.dumps({"parent": report(needles), "spawn": worker, "exitcode": p.exitcode}))
"""


@pytest.fixture
def worker(tmp_path) -> Path:
    path = tmp_path / "worker.py"
    path.write_text(WORKER)
    return path


def run_worker(python, worker, env, *needles):
    got = run_json([python, worker, *needles], env, timeout=90)
    assert got["exitcode"] == 0
    return got


# --------------------------------------------------------------------------
# --version, --help


def test_version(stage, base_env):
    res = run([stage.cli, "--version"], base_env)
    assert res.returncode == 0, res.stderr.decode()
    assert re.fullmatch(rb"pyshim \d+\.\d+\.\d+\n", res.stdout), res.stdout
    assert res.stderr == b""


@pytest.mark.parametrize("command", ["", "init", "install", "uninstall", "show", "doctor",
                                     "dynlib"])
def test_help_shows_examples(stage, base_env, command):
    argv = [stage.cli, *([command] if command else []), "--help"]
    res = run(argv, base_env)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stderr == b""
    out = res.stdout.decode()
    assert "Usage: pyshim" in out, out
    examples = out[out.index("Example"):] if "Example" in out else ""
    assert examples, f"no examples in:\n{out}"
    wanted = f"pyshim {command}".strip() + " "
    example_lines = [line.strip() for line in examples.splitlines()[1:] if line.strip()]
    assert any(line.startswith(wanted) for line in example_lines), out
    if not command:
        # the top-level help lists every subcommand
        for sub in ("init", "install", "uninstall", "show", "doctor"):
            assert re.search(rf"^\s+{sub}\s", out, re.M), f"{sub} missing:\n{out}"


# --------------------------------------------------------------------------
# init


@pytest.mark.parametrize("it", interp_params())
def test_init_venv_works_through_the_shim(it, stage, tmp_path, base_env, jemalloc, testlibs):
    """Every interpreter of the matrix (Debian's python3.11, pyenv 3.8-3.13,
    PyPy), each with its own venv layout and pyvenv.cfg keys."""
    venv = tmp_path / "venv"
    out = tool_ok(stage, "init", venv, "--python", it.path, "--preload", "jemalloc",
                  "--library-path", testlibs.libdir, *env_args(CONFIG_ENV), env=base_env)
    assert f"installed pyshim into {venv}" in out, out
    config = config_of(venv)
    # what pyvenv.cfg names: python3.11-dbg is a link to python3.11d
    assert os.path.realpath(config["interpreter"]) == os.path.realpath(it.path)
    assert [os.path.realpath(p) for p in config["preload"]] == [os.path.realpath(jemalloc)]
    python = venv / "bin" / "python"
    main = main_launcher_name(it)
    # the default layout for every interpreter (PyPy included, so nothing to
    # say about PyPy): a self-contained venv; PyPy gets no base launcher
    assert PYPY_COPY_NOTE not in out.splitlines()
    assert_self_contained_venv(stage, venv, main, base=it.kind != "pypy")
    restore = venv / "lib" / "pyshim" / stage.restore.name
    launchers = [line for line in out.splitlines() if line.startswith("  launchers:   ")]
    assert len(launchers) == 1 and launchers[0].endswith(
        launchers_summary(stage, venv, main, base=it.kind != "pypy")), out
    base = venv / ".pyshim" / "base" / "bin" / main
    base_line = f"  base:        {base} (sys._base_executable: derived venvs use it)"
    assert (base_line in out.splitlines()) == (it.kind != "pypy"), out
    got = run_json([python, "-c", "import json, sys; print(json.dumps(sys._base_executable))"],
                   base_env)
    # PyPy: no base launcher (standalone PyPy cannot run, the README), so
    # its _base_executable stays what PyPy reports in a venv: sys.executable
    assert got == (str(python) if it.kind == "pypy" else str(base))

    env = caller_env("set", base_env, tmp_path, testlibs)
    parts = ("spawn", "sh", "spawn_sh")
    result = probe(python, env, parts=parts)
    assert_probe(result, launcher=python, jemalloc=Path(config["preload"][0]),
                 restore=restore, caller_env=env, config_env=CONFIG_ENV, parts=parts)
    # the same sys values as a venv made by the plain interpreter
    reference = tmp_path / "reference"
    plain = plain_venv(it, reference, base_env)
    for name in ("parent", "spawn"):
        assert result[name]["prefix"] == str(venv), name
        assert result[name]["base_prefix"] == plain["base_prefix"], name
        assert [p.replace(str(venv), "VENV") for p in result[name]["path"][1:]] == [
            p.replace(str(reference), "VENV") for p in plain["path"][1:]
        ], name


@pytest.mark.parametrize("case", ["python3.X", "outside-link", "python"])
def test_the_main_launcher_name(case, stage, tmp_path, base_env, py):
    """Which bin/ entry becomes the stamped file the others link to:
    python3.X (pyvenv.cfg's version) when bin/ has it, else the entry that
    led outside bin/ (the interpreter itself), else python."""
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    bindir = venv / "bin"
    versioned = main_launcher_name(py)
    for name in ("python", "python3", versioned):
        (bindir / name).unlink()
    if case == "python3.X":
        expected = versioned
        (bindir / "python").symlink_to(versioned)
        (bindir / "python3").symlink_to(versioned)
        (bindir / versioned).symlink_to(py.path)
    elif case == "outside-link":  # no python3.X: python3 is the real one
        expected = "python3"
        (bindir / "python").symlink_to("python3")
        (bindir / "python3").symlink_to(py.path)
    else:  # no python3.X, every entry a copy: nothing says which one
        expected = "python"
        shutil.copy2(py.path, bindir / "python")
        shutil.copy2(py.path, bindir / "python3")
    before = tree(venv)
    out = tool_ok(stage, "install", venv, env=base_env)
    assert launchers_summary(stage, venv, expected) in out, out
    assert_self_contained_venv(stage, venv, expected)
    got = run_json([bindir / "python", "-c", "import json, sys; print(json.dumps("
                    "[sys.executable, sys.prefix, sys._base_executable]))"], base_env)
    assert got == [str(bindir / "python"), str(venv),
                   str(venv / ".pyshim" / "base" / "bin" / expected)]
    tool_ok(stage, "uninstall", venv, env=base_env)
    assert_same_tree(before, tree(venv))


def test_init_resolves_a_preset_once(stage, py, tmp_path, base_env):
    """init checks its options before `python -m venv` and installs after
    it: a toolchain preset is resolved (gcc run) once, and the install uses
    that resolution."""
    real_gcc = shutil.which("gcc", path=base_env.get("PATH"))
    if real_gcc is None:
        pytest.skip("no gcc on PATH: the asan preset is resolved with it")
    fake = tmp_path / "fakebin"
    fake.mkdir()
    calls = tmp_path / "gcc-calls"
    wrapper = fake / "gcc"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {real_gcc} "$@"\n')
    wrapper.chmod(0o755)
    env = {**base_env, "PATH": f"{fake}:{base_env.get('PATH', '/usr/bin:/bin')}"}
    venv = tmp_path / "venv"
    res = tool(stage, "init", venv, "--python", py.path, "--preload", "asan", "-q", env=env)
    if res.returncode != 0 and b"cannot find libasan.so" in res.stderr:
        pytest.skip("gcc has no libasan.so here (Debian: apt-get install libasan8)")
    assert res.returncode == 0, res.stderr.decode()
    assert calls.read_text().splitlines() == ["-print-file-name=libasan.so"]
    assert "libasan" in config_of(venv)["preload"][0]


def test_init_refuses_a_non_empty_directory(stage, tmp_path, base_env, py):
    target = tmp_path / "busy"
    target.mkdir()
    (target / "file").write_text("mine\n")
    before = tree(target, times=True)
    res = tool(stage, "init", target, "--python", py.path, env=base_env)
    refused(res, f"{target} already exists and is not empty")
    assert_same_tree(before, tree(target, times=True))


# --------------------------------------------------------------------------
# install + uninstall: byte-identical


def _ensurepip_error(it, tmp_path, base_env):
    res = run([it.path, "-c", "import ensurepip"], base_env)
    if res.returncode != 0:
        return res.stderr.decode().strip().splitlines()[-1]
    return None


def _use_the_shim_venv(python, worker, env, jemalloc=None):
    """Runs the venv as a user would between install and uninstall (this is
    also when Python writes bytecode caches)."""
    got = run_worker(python, worker, env, "libjemalloc")
    for name in ("parent", "spawn"):
        assert got[name]["executable"] == str(python), name
        if jemalloc is not None:
            assert got[name]["mapped"]["libjemalloc"] == [os.path.realpath(jemalloc)], name
    return got


HOOK_MODULE = """
import os
def hook():
    with open(os.environ["ITEST_HOOK_LOG"], "a") as f:
        f.write(f"{os.getpid()}\\n")
"""

# id: (interpreter, `-m venv` options, with pip, install options, startup hooks,
#      site-packages/__pycache__ present before install)
ROUND_TRIPS = {
    "symlinks": ("debian3.11", (), False, ("--preload", "jemalloc"), False, False),
    "with-pip": ("debian3.11", (), True, ("--preload", "jemalloc"), False, False),
    "copies-venv": ("debian3.11", ("--copies",), False, ("--preload", "jemalloc"), False, False),
    "install-copy": ("debian3.11", (), False, ("--copy", "--preload", "jemalloc"), False, False),
    "install-symlink": ("debian3.11", (), False, ("--symlink", "--preload", "jemalloc"), False,
                        False),
    "copies-venv-install-copy": ("cpython3.13", ("--copies",), False, ("--copy",), False, False),
    "copies-venv-install-symlink": ("cpython3.13", ("--copies",), False, ("--symlink",), False,
                                    False),
    "startup-hooks": ("debian3.11", (), False, ("--preload", "jemalloc"), True, False),
    "startup-hooks-existing-pycache": ("cpython3.13", (), False, (), True, True),
    "cpython3.8": ("cpython3.8", (), False, ("--preload", "jemalloc"), False, False),
    "pypy": ("pypy3", (), False, ("--preload", "jemalloc"), False, False),
    "pypy-symlink": ("pypy3", (), False, ("--symlink", "--preload", "jemalloc"), False, False),
}


def assert_installed_layout(stage, it, venv, install_args, out=None):
    """The layout install_args ask for: shared links with --symlink (except
    PyPy, which always gets a copy, and says so), else self-contained."""
    main = main_launcher_name(it)
    if "--symlink" in install_args and it.kind != "pypy":
        return assert_shared_venv(stage, venv, main)
    if out is not None:
        assert (PYPY_COPY_NOTE in out.splitlines()) == ("--symlink" in install_args), out
    return assert_self_contained_venv(stage, venv, main, base=it.kind != "pypy")


@pytest.mark.parametrize("case", list(ROUND_TRIPS))
def test_install_uninstall_leaves_the_venv_byte_identical(case, stage, tmp_path, base_env,
                                                          jemalloc, worker):
    ident, venv_args, with_pip, install_args, hooks, precache = ROUND_TRIPS[case]
    it = interp(ident)
    venv = tmp_path / "venv"
    if with_pip:
        error = _ensurepip_error(it, tmp_path, base_env)
        if error is not None:
            pytest.skip(f"{it.path}: ensurepip unavailable ({error}; Debian python3.11-venv)")
        res = run([it.path, "-m", "venv", *venv_args, venv], base_env, timeout=300)
        assert res.returncode == 0, res.stderr.decode()
        assert list(venv.glob("lib/python3.*/site-packages/pip"))
    else:
        plain_venv(it, venv, base_env, *venv_args)
    site = next(venv.glob("lib/*/site-packages"))
    if "--copies" in venv_args:
        assert not (venv / "bin" / "python").is_symlink()
    else:
        assert (venv / "bin" / "python").is_symlink()
    if precache:
        (site / "usermod.py").write_text("X = 1\n")
        res = run([venv / "bin" / "python", "-c", "import usermod"], base_env)
        assert res.returncode == 0, res.stderr.decode()
        cached = [p.name for p in (site / "__pycache__").iterdir()]
        assert len(cached) == 1 and cached[0].startswith("usermod."), cached
    # The plain venv as its user left it after running it once (Python may
    # write bytecode for the venv's own packages, e.g. pip's .pth hook).
    res = run([venv / "bin" / "python", "-c", "pass"], base_env)
    assert res.returncode == 0, res.stderr.decode()
    before = tree(venv)

    args = list(install_args)
    env = dict(base_env)
    if hooks:
        project = tmp_path / "project"
        project.mkdir()
        (project / "itest_hook.py").write_text(HOOK_MODULE)
        args += ["--startup", "itest_hook:hook", "--python-path", project]
        env["ITEST_HOOK_LOG"] = str(tmp_path / "hook.log")
    out = tool_ok(stage, "install", venv, *args, env=base_env)
    assert f"installed pyshim into {venv}" in out
    assert tree(venv) != before
    python = venv / "bin" / "python"
    assert_installed_layout(stage, it, venv, install_args, out)
    got = _use_the_shim_venv(python, worker, env,
                             jemalloc if "jemalloc" in install_args else None)
    if hooks:
        # the hook ran in the interpreter and in the spawn worker (and in
        # multiprocessing's resource tracker, another Python started through
        # sys.executable)
        ran = {int(pid) for pid in (tmp_path / "hook.log").read_text().split()}
        assert {got["parent"]["pid"], got["spawn"]["pid"]} <= ran, ran
        names = {p.name for p in site.iterdir()}
        assert {"pyshim-startup.pth", "_pyshim_startup.py"} <= names, names
        assert any(p.name.startswith("_pyshim_startup.") for p in (site / "__pycache__").iterdir())

    out = tool_ok(stage, "uninstall", venv, env=base_env)
    assert f"restored {venv}" in out, out
    # bin/ as it was; pyshim.toml, lib/pyshim/, .pyshim/ (base launcher
    # included) and the .pth files gone
    assert_same_tree(before, tree(venv))
    # and it is the plain venv again
    got = run_json([python, "-c", INFO], base_env)
    assert got["executable"] == str(python)
    assert got["prefix"] == str(venv)


@pytest.mark.parametrize("first,second", [((), ("--symlink",)), (("--symlink",), ()),
                                          (("--symlink",), ("--copy",))],
                         ids=["default-then-symlink", "symlink-then-default",
                              "symlink-then-copy"])
def test_uninstall_after_a_reconfiguring_install(first, second, stage, tmp_path, base_env, py,
                                                 jemalloc):
    """install, then install again with other options and the other layout
    (a reconfiguration), then uninstall: still the venv from before the
    first install."""
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    before = tree(venv)
    tool_ok(stage, "install", venv, *first, "--preload", "jemalloc", env=base_env)
    assert_installed_layout(stage, py, venv, first)
    out = tool_ok(stage, "install", venv, *second, "--env", "ITEST=1", env=base_env)
    assert f"installed pyshim into {venv}" in out
    assert config_of(venv)["env"] == {"ITEST": "1"}
    # re-stamped with the config as it now is (the identity check is in
    # assert_installed_layout)
    config = config_of(venv)
    stamp = assert_installed_layout(stage, py, venv, second)
    assert stamp["env"] == config["env"] and stamp["preload"] == config["preload"], stamp
    got = run_json([venv / "bin" / "python", "-c", "import json, os; print(json.dumps("
                    "[os.environ.get('ITEST'), 'libjemalloc' in open('/proc/self/maps').read()]))"],
                   base_env)
    assert got == ["1", any("libjemalloc" in path for path in config["preload"])]
    tool_ok(stage, "uninstall", venv, env=base_env)
    assert_same_tree(before, tree(venv))


# --------------------------------------------------------------------------
# install twice


IDEMPOTENT = {
    "default": ("debian3.11", ("--preload", "jemalloc", "--env", "ITEST=1")),
    "copy": ("debian3.11", ("--copy", "--preload", "jemalloc")),
    "symlink": ("debian3.11", ("--symlink", "--preload", "jemalloc", "--env", "ITEST=1")),
    "startup-hooks": ("debian3.11", ("--startup", "os:getcwd")),
    "pypy": ("pypy3", ("--preload", "jemalloc")),
    "pypy-symlink": ("pypy3", ("--symlink", "--preload", "jemalloc")),
}


@pytest.mark.parametrize("case", list(IDEMPOTENT))
def test_install_twice_changes_nothing(case, stage, tmp_path, base_env):
    ident, args = IDEMPOTENT[case]
    it = interp(ident)
    venv = tmp_path / "venv"
    plain_venv(it, venv, base_env)
    out = tool_ok(stage, "install", venv, *args, env=base_env)
    assert f"installed pyshim into {venv}" in out
    assert_installed_layout(stage, it, venv, args, out)
    first = tree(venv, times=True)
    assert "pyshim.toml" in first
    out = tool_ok(stage, "install", venv, *args, env=base_env)
    expected = [f"{venv} {NOTHING_CHANGED}"]
    if it.kind == "pypy" and "--symlink" in args:
        expected.insert(0, PYPY_COPY_NOTE)
    assert out.splitlines() == expected
    # not even the launcher copies were rewritten (their stamps still name
    # pyshim.toml as it is, so the hot path keeps skipping the parse)
    assert_same_tree(first, tree(venv, times=True))
    assert_installed_layout(stage, it, venv, args)


def test_init_then_install_with_the_same_options_changes_nothing(stage, tmp_path, base_env, py):
    venv = tmp_path / "venv"
    tool_ok(stage, "init", venv, "--python", py.path, "--preload", "jemalloc", env=base_env)
    first = tree(venv, times=True)
    out = tool_ok(stage, "install", venv, "--preload", "jemalloc", env=base_env)
    assert out == f"{venv} {NOTHING_CHANGED}\n"
    assert_same_tree(first, tree(venv, times=True))


def test_install_again_with_other_options_reconfigures(stage, tmp_path, base_env, py, jemalloc):
    """Control for the no-op test: a second install that does change the
    config says so and rewrites pyshim.toml."""
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    tool_ok(stage, "install", venv, env=base_env)
    assert config_of(venv)["preload"] == []
    out = tool_ok(stage, "install", venv, "--preload", jemalloc, env=base_env)
    assert NOTHING_CHANGED not in out
    assert config_of(venv)["preload"] == [str(jemalloc)]
    # the launcher copies are re-stamped with the new config
    stamp = assert_self_contained_venv(stage, venv, main_launcher_name(py))
    assert stamp["preload"] == [str(jemalloc)]


# --------------------------------------------------------------------------
# refusals


def test_install_refuses_what_is_not_a_venv(stage, tmp_path, base_env):
    target = tmp_path / "project"
    (target / "bin").mkdir(parents=True)
    (target / "bin" / "python").symlink_to("/usr/bin/python3")
    before = tree(target, times=True)
    res = tool(stage, "install", target, env=base_env)
    refused(res, f"not a virtual environment: {target} (no pyvenv.cfg)")
    assert_same_tree(before, tree(target, times=True))
    missing = tmp_path / "nowhere"
    res = tool(stage, "install", missing, env=base_env)
    refused(res, f"not a virtual environment: {missing} (no pyvenv.cfg)")
    assert not missing.exists()


def test_install_refuses_a_venv_whose_interpreter_is_unknown(stage, tmp_path, base_env, py):
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    # the interpreter it was made from is gone
    (venv / "pyvenv.cfg").write_text("home = /nonexistent/bin\nversion = 3.11.2\n")
    for link in (venv / "bin").iterdir():
        if link.is_symlink() and not os.readlink(link).startswith("python"):
            link.unlink()
            link.symlink_to(f"/nonexistent/bin/{link.name}")
    before = tree(venv, times=True)
    res = tool(stage, "install", venv, env=base_env)
    err = refused(res, f"cannot determine the interpreter of {venv}")
    assert "--python" in err
    assert_same_tree(before, tree(venv, times=True))


@pytest.mark.parametrize("which", [
    "the launcher",
    "a stamped launcher",
    "a base launcher",
    "a venv's bin/python",
    "the CLI",
])
def test_install_refuses_a_pyshim_binary_as_the_interpreter(which, stage, tmp_path, base_env,
                                                             py):
    other = tmp_path / "other"
    plain_venv(py, other, base_env)
    tool_ok(stage, "install", other, env=base_env)
    main = main_launcher_name(py)
    given = {
        "the launcher": stage.shim,
        "a stamped launcher": other / "bin" / main,
        "a base launcher": other / ".pyshim" / "base" / "bin" / main,
        "a venv's bin/python": other / "bin" / "python",
        "the CLI": stage.cli,
    }[which]
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    before = tree(venv, times=True)
    res = tool(stage, "install", venv, "--python", given, env=base_env)
    err = refused(res, f"the interpreter {given} is a pyshim launcher")
    assert "--python" in err
    assert_same_tree(before, tree(venv, times=True))


def _other_3_11(py):
    for ident in ("debian3.11-dbg", "cpython3.11"):
        for it in all_interpreters():
            if it.id == ident and it.path is not None and it.path != py.path:
                return it
    pytest.skip("no second Python 3.11 (python3.11-dbg or pyenv 3.11) to switch to")


def test_install_refuses_another_interpreter_without_force(stage, tmp_path, base_env, py,
                                                           worker):
    other = _other_3_11(py)
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    before_install = tree(venv)
    tool_ok(stage, "install", venv, env=base_env)
    installed = tree(venv, times=True)
    res = tool(stage, "install", venv, "--python", other.path, env=base_env)
    err = refused(res, f"{venv} is already a shim venv for {py.path}")
    assert "--force" in err
    assert_same_tree(installed, tree(venv, times=True))

    out = tool_ok(stage, "install", venv, "--python", other.path, "--force", env=base_env)
    assert f"interpreter: {other.path}" in out
    assert config_of(venv)["interpreter"] == str(other.path)
    python = venv / "bin" / "python"
    got = run_json([python, "-c", "import json, os, sys; print(json.dumps("
                    "[sys.executable, sys.prefix, os.path.realpath('/proc/self/exe')]))"],
                   base_env)
    assert got == [str(python), str(venv), os.path.realpath(other.path)]
    # uninstall still puts back what the first install replaced
    tool_ok(stage, "uninstall", venv, env=base_env)
    assert_same_tree(before_install, tree(venv))


def test_uninstall_refuses_a_venv_that_was_never_installed(stage, tmp_path, base_env, py):
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    before = tree(venv, times=True)
    res = tool(stage, "uninstall", venv, env=base_env)
    refused(res, f"{venv} is not a venv installed by `pyshim install`")
    assert_same_tree(before, tree(venv, times=True))
    # a shim venv made by hand has no install record either: left alone
    hand = make_venv(stage, py, tmp_path / "hand", base_env)
    before = tree(hand.root, times=True)
    res = tool(stage, "uninstall", hand.root, env=base_env)
    refused(res, f"{hand.root} is not a venv installed by `pyshim install`")
    assert_same_tree(before, tree(hand.root, times=True))


# --------------------------------------------------------------------------
# a self-contained venv (the default, or --copy) survives the removal of pyshim


@pytest.mark.parametrize("layout", [(), ("--copy",)], ids=["default", "copy"])
def test_copy_venv_works_after_the_installed_prefix_is_deleted(layout, stage, tmp_path, base_env,
                                                               py, jemalloc, testlibs):
    prefix = tmp_path / "opt" / "pyshim"
    shutil.copytree(stage.prefix, prefix, symlinks=True)
    venv = tmp_path / "venv"
    plain = plain_venv(py, venv, base_env)
    res = run([prefix / "bin" / "pyshim", "install", venv, *layout, "--preload", "jemalloc",
               "--library-path", testlibs.libdir, *env_args(CONFIG_ENV)], base_env)
    assert res.returncode == 0, res.stderr.decode()
    shutil.rmtree(prefix)
    assert not prefix.exists()
    # nothing in the venv refers to the deleted prefix
    for path in venv.rglob("*"):
        if path.is_symlink():
            assert str(prefix) not in os.readlink(path), path
        elif path.is_file():
            assert str(prefix).encode() not in path.read_bytes(), path

    python = venv / "bin" / "python"
    restore_copy = venv / "lib" / "pyshim" / stage.restore.name
    env = caller_env("set", base_env, tmp_path, testlibs)
    parts = ("spawn", "pool", "sh", "spawn_sh")
    result = probe(python, env, parts=parts)
    assert_probe(result, launcher=python, jemalloc=Path(config_of(venv)["preload"][0]),
                 restore=restore_copy, caller_env=env, config_env=CONFIG_ENV, parts=parts)
    for name in [p.name for p in (venv / "bin").iterdir() if p.name.startswith("python")]:
        got = run_json([venv / "bin" / name, "-c", INFO], base_env)
        assert got["executable"] == str(venv / "bin" / name)
        for key in ("prefix", "base_prefix", "path"):
            assert got[key] == plain[key], f"bin/{name}: sys.{key}"
    # and so does a venv derived from it (through the base launcher)
    inner = tmp_path / "inner"
    res = run([python, "-m", "venv", "--without-pip", inner], base_env)
    assert res.returncode == 0, res.stderr.decode()
    got = run_json([inner / "bin" / "python", "-c", "import json, sys; print(json.dumps("
                    "[sys.prefix, 'libjemalloc' in open('/proc/self/maps').read()]))"], base_env)
    assert got == [str(inner), True]


# --------------------------------------------------------------------------
# realpath(sys.executable) is a launcher (the README: 0.1 led to the CLI)

REALPATH_CHECK = r"""
import json, os, subprocess, sys
CHILD = (
    "import json, os, sys\n"
    "with open('/proc/self/maps') as f:\n"
    "    maps = f.read()\n"
    "print(json.dumps([sys.executable, sys.prefix, 'libjemalloc' in maps,\n"
    "                  os.environ.get('ITEST_FROM_CONFIG')]))\n"
)
real = os.path.realpath(sys.executable)
child = subprocess.run([real, "-c", CHILD], capture_output=True, text=True)
version = subprocess.run([real, "--version"], capture_output=True, text=True)
print(json.dumps({"real": real,
                  "child": [child.returncode, child.stdout, child.stderr],
                  "version": [version.returncode, version.stdout, version.stderr]}))
"""


@pytest.mark.parametrize("it", interp_params())
def test_realpath_of_sys_executable_is_a_launcher(it, stage, tmp_path, base_env, jemalloc):
    """What CPython's own test_subprocess (and any program that resolves
    sys.executable) runs: a launcher with the venv's config (stamped), not
    the CLI. `--version` is Python's. Up to 3.10 (and PyPy) that is the
    venv's bin/python3.X, which runs the venv; on CPython 3.11+ bin/python3.X
    links to the base launcher, which runs the base interpreter with the
    venv's native setup, as a plain venv's realpath runs the base
    interpreter (the README: "Why a `.pth`, and when")."""
    venv = tmp_path / "venv"
    plain_venv(it, venv, base_env)
    tool_ok(stage, "install", venv, "--preload", "jemalloc", *env_args(CONFIG_ENV), env=base_env)
    python = venv / "bin" / "python"
    name = main_launcher_name(it)
    if it.kind != "pypy" and links_to_base_launcher(venv):
        main = venv / ".pyshim" / "base" / "bin" / name
        prefix = run_json([it.path, "-c", "import json, sys; print(json.dumps(sys.base_prefix))"],
                          base_env)
    else:
        main, prefix = venv / "bin" / name, str(venv)
    got = run_json([python, "-c", REALPATH_CHECK], base_env)
    assert got["real"] == str(main)
    rc, out, err = got["child"]
    assert rc == 0 and err == "", err
    assert json.loads(out) == [str(main), prefix, True, CONFIG_ENV["ITEST_FROM_CONFIG"]]
    plain_version = run([it.path, "--version"], base_env)
    assert got["version"] == [0, plain_version.stdout.decode(), plain_version.stderr.decode()]
    assert not got["version"][1].startswith("pyshim")


def test_realpath_of_sys_executable_with_symlink_layout(stage, tmp_path, base_env, py):
    """--symlink: realpath(sys.executable) is the shared, unstamped
    PREFIX/lib/pyshim/pyshim-launcher; it is still a launcher (never the
    CLI), but with no config to find from there it refuses to run (what the
    shared layout loses, see the README)."""
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    tool_ok(stage, "install", venv, "--symlink", env=base_env)
    got = run_json([venv / "bin" / "python", "-c", REALPATH_CHECK], base_env)
    assert got["real"] == str(stage.shim)
    for key in ("child", "version"):
        rc, out, err = got[key]
        assert rc == 125 and out == "", got
        assert err.startswith(f"pyshim: error: no pyshim.toml found for {stage.shim}\n"), err


# --------------------------------------------------------------------------
# presets


def _ldconfig(soname):
    res = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True, check=True)
    for line in res.stdout.splitlines():
        m = re.match(rf"\s+{re.escape(soname)} \((.*)\) => (\S+)$", line)
        if m and "x86-64" in m.group(1):
            return m.group(2)
    return None


def _gcc(name):
    if shutil.which("gcc") is None:
        return None
    out = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True, text=True)
    path = out.stdout.strip()
    return path if "/" in path and os.path.exists(path) else None


# preset: (how the test finds it independently, Debian package)
PRESET_SOURCES = {
    "jemalloc": (lambda: _ldconfig("libjemalloc.so.2"), "libjemalloc2"),
    "tcmalloc": (lambda: _ldconfig("libtcmalloc_minimal.so.4"), "libtcmalloc-minimal4"),
    "mimalloc": (lambda: _ldconfig("libmimalloc.so.2"), "libmimalloc2.0"),
    "asan": (lambda: _gcc("libasan.so"), "libasan8 (with gcc)"),
    "ubsan": (lambda: _gcc("libubsan.so"), "libubsan1 (with gcc)"),
    "tsan": (lambda: _gcc("libtsan.so"), "libtsan2 (with gcc)"),
}
# run through the shim and checked in /proc/self/maps (tsan and ubsan are
# only resolved: they are not meant to run under an uninstrumented Python)
RUN_PRESETS = {"jemalloc": "libjemalloc", "tcmalloc": "libtcmalloc", "mimalloc": "libmimalloc",
               "asan": "libasan"}


@pytest.mark.parametrize("preset", list(PRESET_SOURCES))
def test_preset_resolves_to_what_the_system_reports(preset, stage, tmp_path, base_env, py,
                                                    worker):
    find, package = PRESET_SOURCES[preset]
    expected = find()
    if expected is None:
        pytest.skip(f"{preset}: not installed here (Debian package {package})")
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    tool_ok(stage, "install", venv, "--preload", preset, env=base_env)
    config = config_of(venv)
    assert len(config["preload"]) == 1, config
    configured = config["preload"][0]
    assert os.path.isabs(configured) and os.path.isfile(configured)
    assert os.path.realpath(configured) == os.path.realpath(expected)
    if preset == "asan":
        assert config["env"] == {"ASAN_OPTIONS": "detect_leaks=0"}
    else:
        assert config["env"] == {}
    if preset in RUN_PRESETS:
        needle = RUN_PRESETS[preset]
        got = run_worker(venv / "bin" / "python", worker, base_env, needle)
        for name in ("parent", "spawn"):
            assert got[name]["executable"] == str(venv / "bin" / "python"), name
            assert got[name]["mapped"][needle] == [os.path.realpath(expected)], name


def test_unknown_preset_is_refused_with_the_preset_names(stage, tmp_path, base_env, py):
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    before = tree(venv, times=True)
    res = tool(stage, "install", venv, "--preload", "jemallocc", env=base_env)
    err = refused(res, "--preload jemallocc: cannot find jemallocc")
    hint = err.splitlines()[-1]
    for name in PRESETS:
        assert name in hint, hint
    assert_same_tree(before, tree(venv, times=True))


def test_asan_goes_first_and_sets_asan_options(stage, tmp_path, base_env, py, worker):
    asan = _gcc("libasan.so")
    jemalloc = _ldconfig("libjemalloc.so.2")
    if asan is None or jemalloc is None:
        pytest.skip("needs gcc's libasan (Debian libasan8) and libjemalloc2")
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    tool_ok(stage, "install", venv, "--preload", "jemalloc", "--preload", "asan", env=base_env)
    config = config_of(venv)
    assert [os.path.realpath(p) for p in config["preload"]] == [
        os.path.realpath(asan), os.path.realpath(jemalloc)]
    assert config["env"] == {"ASAN_OPTIONS": "detect_leaks=0"}
    got = run_worker(venv / "bin" / "python", worker, base_env, "libasan")
    for name in ("parent", "spawn"):
        assert got[name]["env"]["ASAN_OPTIONS"] == "detect_leaks=0", name
        assert got[name]["mapped"]["libasan"] == [os.path.realpath(asan)], name
        assert got[name]["env"]["LD_PRELOAD"] is None, name  # restored for children


def test_asan_keeps_the_users_asan_options(stage, tmp_path, base_env, py):
    if _gcc("libasan.so") is None:
        pytest.skip("needs gcc's libasan (Debian libasan8)")
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    tool_ok(stage, "install", venv, "--preload", "asan", "--env",
            "ASAN_OPTIONS=abort_on_error=1", env=base_env)
    assert config_of(venv)["env"] == {"ASAN_OPTIONS": "abort_on_error=1"}
    # and the same through init
    venv2 = tmp_path / "venv2"
    tool_ok(stage, "init", venv2, "--python", py.path, "--env", "ASAN_OPTIONS=verbosity=0",
            "--preload", "asan", env=base_env)
    assert config_of(venv2)["env"] == {"ASAN_OPTIONS": "verbosity=0"}


# --------------------------------------------------------------------------
# uninstall with a damaged backup


def test_uninstall_with_a_missing_backup_changes_nothing_and_can_be_rerun(
        stage, tmp_path, base_env):
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3.11", "-m", "venv", "--copies", "--without-pip", str(venv)],
                   check=True, env=base_env)
    before = tree(venv)
    tool_ok(stage, "install", venv, env=base_env)
    installed = tree(venv)
    backup = venv / ".pyshim/backup/python3"
    saved = tmp_path / "saved-python3"
    backup.rename(saved)
    res = tool(stage, "uninstall", venv, env=base_env)
    err = refused(res, "the backup of bin/python3 is missing or not a regular file")
    assert "  expected: .pyshim/backup/python3" in err.splitlines(), err
    assert "nothing was changed" in err
    # Nothing changed: every bin/ name is still the launcher, none was deleted.
    after_failure = tree(venv)
    del installed[".pyshim/backup/python3"]
    assert_same_tree(installed, after_failure)
    saved.rename(backup)
    tool_ok(stage, "uninstall", venv, env=base_env)
    assert_same_tree(before, tree(venv))


def test_reinstall_changes_what_its_options_name_and_keeps_the_rest(stage, tmp_path, base_env, py,
                                                                      jemalloc):
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    tool_ok(stage, "install", venv, "--preload", jemalloc, "--env", "A=1",
            "--library-path", tmp_path, env=base_env)
    out = tool_ok(stage, "install", venv, "--env", "B=2", "--env", "A=3", env=base_env)
    assert "pyshim.toml changed:\n  - A = '1'\n  + A = '3'\n  + B = '2'\n" in out, out
    text = (venv / "pyshim.toml").read_text()
    assert f"'{jemalloc}'" in text and f"'{tmp_path}'" in text, text
    assert text.index("A = '3'") < text.index("B = '2'"), "the current order is kept"
    # The launcher uses the merged config (its stamp is current: no parse).
    res = run_json([venv / "bin" / "python", "-c",
                    "import json, os; print(json.dumps([os.environ.get('A'), os.environ.get('B'),"
                    " any('jemalloc' in l for l in open('/proc/self/maps'))]))"], base_env)
    assert res == ["3", "2", True]


def test_reinstall_with_reset_starts_from_an_empty_config(stage, tmp_path, base_env, py, jemalloc):
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    tool_ok(stage, "install", venv, "--preload", jemalloc, "--env", "A=1", env=base_env)
    out = tool_ok(stage, "install", venv, "--reset", "--env", "C=3", env=base_env)
    assert "  - A = '1'\n" in out and "  + C = '3'\n" in out, out
    text = (venv / "pyshim.toml").read_text()
    assert "A = " not in text and str(jemalloc) not in text.split("# ")[0] and "C = '3'" in text
    assert "preload = []" in text


def test_a_mistyped_preset_gets_the_nearest_preset(stage, tmp_path, base_env, py):
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    res = tool(stage, "install", venv, "--preload", "jemaloc", env=base_env)
    assert res.returncode == 2
    assert res.stderr.decode().splitlines() == [
        "pyshim: error: --preload jemaloc: cannot find jemaloc",
        "  hint: did you mean 'jemalloc'? (presets: asan, ubsan, tsan, jemalloc, tcmalloc, "
        "mimalloc)"]


def test_init_checks_its_options_before_creating_the_venv(stage, tmp_path, base_env, py):
    venv = tmp_path / "venv"
    res = tool(stage, "init", venv, "--python", py.path, "--preload", "jemaloc",
               "--env", "X=1", env=base_env)
    assert res.returncode == 2
    assert b"did you mean 'jemalloc'?" in res.stderr
    assert not venv.exists(), "init created the venv before checking its options"


def test_a_stray_configs_lines_are_echoed_escaped_and_capped(stage, tmp_path, base_env, py):
    """A plain venv whose pyshim.toml someone else wrote (terminal escape
    sequences, 50 MB): install says what it replaced with control bytes as
    \\xNN, at most 50 lines and a few KiB, and how many lines it left out."""
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    line = "x" * 1000 + "\n"
    count = 50 * 1024 * 1024 // len(line)
    with open(venv / "pyshim.toml", "wb") as f:
        f.write(b"\x1b]0;pwned\x07\x1b[2J = 1\n")
        for i in range(count):
            f.write(f"{i}{line}".encode())
    res = tool(stage, "install", venv, env=base_env, timeout=120)
    assert res.returncode == 0, res.stderr.decode()
    out = res.stdout
    assert b"\x1b" not in out and b"\x07" not in out, out[:400]
    assert b"  - \\x1b]0;pwned\\x07\\x1b[2J = 1\n" in out, out[:400]
    assert len(out) < 20000, f"{len(out)} bytes echoed"
    removed = out.decode().split("pyshim.toml changed:\n")[1].splitlines()
    left = [l for l in removed if "more lines removed" in l]
    assert len(left) == 1, removed[-5:]
    shown = sum(1 for l in removed if l.startswith("  - ")) - 1
    assert 1 <= shown <= 50
    assert left[0] == f"  - ... and {count + 1 - shown} more lines removed", left


# --------------------------------------------------------------------------
# launches while install rewrites the venv


def launch_failures(launchers, env, stop):
    """Launches each launcher in turn until stop is set; (count, failures)."""
    count, failures = 0, []
    while not stop.is_set():
        for launcher in launchers:
            res = subprocess.run([str(launcher), "-c", "pass"], env=env, capture_output=True,
                                 timeout=60)
            count += 1
            if res.returncode != 0:
                failures.append(res.stderr.decode()[:400])
    return count, failures


def test_launches_never_fail_while_install_rewrites_the_venv(stage, tmp_path, base_env, py):
    """Two launch loops (bin/python and the base launcher) run while install
    rewrites the venv again and again (the config, every launcher's stamp and
    the base launcher change each time): not one launch fails."""
    import threading
    import time

    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    tool_ok(stage, "install", venv, env=base_env)
    base = next((venv / ".pyshim" / "base" / "bin").iterdir())
    stop = threading.Event()
    results = []
    threads = [threading.Thread(target=lambda l=l: results.append(launch_failures([l], base_env,
                                                                                   stop)))
               for l in (venv / "bin" / "python", base)]
    for t in threads:
        t.start()
    installs = 0
    deadline = time.monotonic() + 15
    try:
        while time.monotonic() < deadline:
            tool_ok(stage, "install", venv, "--env", f"ROUND={installs % 2}", env=base_env)
            installs += 1
    finally:
        stop.set()
        for t in threads:
            t.join()
    launches = sum(count for count, _ in results)
    failures = [f for _, fs in results for f in fs]
    assert installs >= 10 and launches >= 50, (installs, launches)
    assert failures == [], f"{len(failures)} of {launches} launches failed: {failures[:3]}"


def test_a_launch_during_a_switch_to_the_shared_layout_finds_its_restore_library(
        stage, tmp_path, base_env, py):
    """install --symlink on a venv of copies removes VENV/lib/pyshim/: only
    after the last copy that names it (the base launcher) is replaced. The
    base launcher's rename is held for 3 s (strace delay_enter); a launch of
    the old base launcher meanwhile finds the restore library."""
    if shutil.which("strace") is None:
        pytest.skip("strace not installed (Debian package strace)")
    import time

    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    tool_ok(stage, "install", venv, env=base_env)
    base = next(p for p in (venv / ".pyshim" / "base" / "bin").iterdir() if not p.is_symlink())
    argv = [str(stage.cli), "install", str(venv), "--symlink", "-q"]
    # Which renameat puts the base launcher in place: the last one naming it
    # (the bin/ copies of the same name come first), counted on a copy.
    trial = tmp_path / "trial"
    shutil.copytree(venv, trial, symlinks=True)
    trace = tmp_path / "trace"
    subprocess.run(["strace", "-qq", "-o", str(trace), "-e", "trace=renameat",
                    *argv[:2], str(trial), *argv[3:]], env=base_env, check=True,
                   capture_output=True)
    calls = [l for l in trace.read_text().splitlines() if l.startswith("renameat(")]
    when = max(i for i, l in enumerate(calls, 1) if l.endswith(f'"{base.name}") = 0'))
    install = subprocess.Popen(
        ["strace", "-qq", "-o", "/dev/null", "-e", "trace=renameat",
         "-e", f"inject=renameat:delay_enter=3000000:when={when}", *argv],
        env=base_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(1.5)
        assert install.poll() is None, "install finished before the held rename"
        res = run([base, "-c", "import sys; print(sys.executable)"], base_env)
        assert res.returncode == 0, res.stderr.decode()
    finally:
        assert install.wait(timeout=60) == 0, install.stderr.read().decode()
    assert not (venv / "lib" / "pyshim").exists(), "the shared layout has no VENV/lib/pyshim"


# --------------------------------------------------------------------------
# an interpreter that leads back to a launcher

# install and doctor ask the launcher's own per-item check (check_interpreter
# in launch.hpp, which follows #! lines with runs_a_launcher) about the
# interpreter.
def shim_venv_and_script_naming_its_launcher(stage, tmp_path, base_env, py):
    """A shim venv, and an executable `#!VENV/bin/python` script beside it."""
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    tool_ok(stage, "install", venv, env=base_env)
    script = tmp_path / "python"
    script.write_text(f"#!{venv / 'bin' / 'python'}\n")
    script.chmod(0o755)
    return venv, script


def test_install_refuses_a_shebang_interpreter_naming_a_launcher(stage, tmp_path, base_env, py):
    venv, script = shim_venv_and_script_naming_its_launcher(stage, tmp_path, base_env, py)
    before = (venv / "pyshim.toml").read_text()
    res = tool(stage, "install", venv, "--python", script, "--force", env=base_env)
    assert res.returncode == 2, res.stderr.decode()
    assert str(script) in res.stderr.decode()
    assert (venv / "pyshim.toml").read_text() == before


def test_doctor_refuses_a_shebang_interpreter_naming_a_launcher(stage, tmp_path, base_env, py):
    venv, script = shim_venv_and_script_naming_its_launcher(stage, tmp_path, base_env, py)
    config = venv / "pyshim.toml"
    config.write_text(re.sub(r"(?m)^interpreter = .*$", f"interpreter = '{script}'",
                             config.read_text()))
    res = run([stage.cli, "doctor", venv / "bin" / "python", "--json"], base_env)
    assert res.returncode == 1, res.stderr.decode()
    doc = json.loads(res.stdout)
    verdicts = {c["id"]: c["ok"] for c in doc["checks"]}
    assert verdicts.get("interpreter_not_shim") is False, doc


# --------------------------------------------------------------------------
# The 3.11+ layout: bin/python3.X links to the base launcher, no .pth


def make_03_layout(venv: Path, main: str):
    """What pyshim 0.3 left in a 3.11+ venv: bin/<main> a stamped launcher
    copy (the same image as the base launcher), the .pth that sets
    sys._base_executable, and no .pyshim/base/lib link."""
    base = venv / ".pyshim" / "base" / "bin" / main
    (venv / "bin" / main).unlink()
    shutil.copy2(base, venv / "bin" / main)
    (venv / ".pyshim" / "base" / "lib").unlink()
    site = next((venv / "lib").glob("python3.*/site-packages"))
    (site / "pyshim-base-executable.pth").write_text(
        f"import sys;sys._base_executable=sys.prefix+'/.pyshim/base/bin/{main}'\n")


BASE_EXECUTABLE = "import json, sys; print(json.dumps([sys.executable, sys._base_executable]))"


def test_install_converts_a_03_venv_and_uninstall_restores_it(stage, tmp_path, base_env, py):
    """An install over a 3.11+ venv that 0.3 made: bin/python3.X becomes the
    link to the base launcher and the stale .pth goes, sys._base_executable
    stays the base launcher, and uninstall still puts back the original
    venv exactly."""
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    before = tree(venv)
    main = main_launcher_name(py)
    base = venv / ".pyshim" / "base" / "bin" / main
    tool_ok(stage, "install", venv, env=base_env)
    make_03_layout(venv, main)
    assert run_json([venv / "bin" / "python", "-c", BASE_EXECUTABLE], base_env) == [
        str(venv / "bin" / "python"), str(base)]

    dry = tool_ok(stage, "install", venv, "--dry-run", env=base_env)
    assert "would replace by a symlink" in dry and f"bin/{main}" in dry, dry
    assert "pyshim-base-executable.pth" in dry, dry
    assert not (venv / "bin" / main).is_symlink(), "a dry run changed the venv"

    out = tool_ok(stage, "install", venv, env=base_env)
    assert launchers_summary(stage, venv, main) in out, out
    assert_self_contained_venv(stage, venv, main)
    assert not list(venv.glob("lib/*/site-packages/pyshim-base-executable.pth"))
    assert run_json([venv / "bin" / "python", "-c", BASE_EXECUTABLE], base_env) == [
        str(venv / "bin" / "python"), str(base)]
    # Nothing left to change.
    assert "nothing changed" in tool_ok(stage, "install", venv, env=base_env)

    tool_ok(stage, "uninstall", venv, env=base_env)
    assert tree(venv) == before


def test_a_lost_manifest_with_the_base_launcher_link_is_refused(stage, tmp_path, base_env, py):
    """bin/python3.X -> ../.pyshim/base/bin/python3.X is install's own link:
    without the manifest it must not be recorded as the venv's original."""
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    tool_ok(stage, "install", venv, env=base_env)
    main = main_launcher_name(py)
    assert os.readlink(venv / "bin" / main) == f"../.pyshim/base/bin/{main}"
    (venv / ".pyshim" / "manifest.toml").unlink()
    res = tool(stage, "install", venv, env=base_env)
    assert res.returncode == 2, res
    assert (f"bin/{main} is already a pyshim launcher, but the venv has no "
            "install manifest") in res.stderr.decode()
