"""Launcher errors: every launcher error has its exact exit code (125 shim
failure, 126 cannot execute, 127 not found), a first line
`pyshim: error: <message>` on stderr, indented context lines (the config's
`file:line:col` where there is one) and one `hint:` line last; nothing on
stdout, and the interpreter never runs."""

import os
import shutil
import subprocess
import time

import pytest

from conftest import place_launcher, run, write_config

RAN = "print('interpreter ran')"
NO_STAMP = "and the launcher carries no stamped config"


def _launcher(stage, root, mode="symlink"):
    p = root / "bin" / "python"
    place_launcher(stage, p, mode)
    return p


def _config(root, text):
    path = root / "pyshim.toml"
    path.write_text(text)
    return path


def _fail(p, env, status, cwd=None, timeout=30):
    """Runs the launcher, checks the error's shape, returns (message,
    context lines, hint) and the wall time."""
    start = time.monotonic()
    res = run([p, "-c", RAN], env, cwd=cwd, timeout=timeout)
    elapsed = time.monotonic() - start
    text = res.stderr.decode()
    assert res.returncode == status, text
    assert res.stdout == b"", "the interpreter ran"
    assert text.endswith("\n"), text
    lines = text.splitlines()
    assert lines[0].startswith("pyshim: error: "), text
    assert all(line.startswith("  ") for line in lines[1:]), text
    hints = [line for line in lines if line.startswith("  hint: ")]
    assert len(hints) == 1 and lines[-1] == hints[0], text
    hint = hints[0][len("  hint: "):]
    assert hint.strip(), text
    return lines[0][len("pyshim: error: "):], [line[2:] for line in lines[1:-1]], hint, elapsed


# --------------------------------------------------------------------------
# no config


def test_no_config_lists_places_searched(stage, tmp_path, base_env, py):
    root = tmp_path / "root"
    p = _launcher(stage, root)
    # a valid config in the cwd must not be used
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    write_config(cwd, py.path)
    msg, ctx, hint, _ = _fail(p, base_env, 125, cwd=cwd)
    assert msg == f"no pyshim.toml found for {p}"
    # beside P, one level up, then the same after following the link (to
    # PREFIX/lib/pyshim/pyshim-launcher), then the stamp (it has none)
    assert ctx == [
        f"searched: {root}/bin/pyshim.toml",
        f"searched: {root}/pyshim.toml",
        f"searched: {stage.prefix}/lib/pyshim/pyshim.toml",
        f"searched: {stage.prefix}/lib/pyshim.toml",
        NO_STAMP,
    ]
    assert "PYSHIM_CONFIG" in hint and "pyshim.toml" in hint


def test_no_config_copy(stage, tmp_path, base_env):
    root = tmp_path / "root"
    p = _launcher(stage, root, mode="copy")
    msg, ctx, hint, _ = _fail(p, base_env, 125)
    assert msg == f"no pyshim.toml found for {p}"
    assert ctx == [f"searched: {root}/bin/pyshim.toml", f"searched: {root}/pyshim.toml", NO_STAMP]


def test_pyshim_config_unreadable(stage, tmp_path, base_env, py):
    root = tmp_path / "root"
    p = _launcher(stage, root)
    write_config(root, py.path)  # must not be used instead
    missing = tmp_path / "nowhere" / "pyshim.toml"
    env = dict(base_env, PYSHIM_CONFIG=str(missing))
    msg, ctx, hint, _ = _fail(p, env, 125)
    assert msg == f"cannot read config {missing}: No such file or directory"
    assert "PYSHIM_CONFIG" in hint


# --------------------------------------------------------------------------
# invalid config


@pytest.mark.parametrize("text,line,col,detail", [
    ('interpreter = "/usr/bin/python3.11"\npreload = [\n  "/a",\n  /b,\n]\n', 4, 3,
     "could not determine value type"),
    ('interpreter = "/usr/bin/python3.11"\nlibrary_path = "x\n', 2, 18, "control characters"),
    ('interpreter = "/usr/bin/python3.11"\n\ninterpreter = "/x"\n', 3, 15, "redefine"),
])
def test_invalid_toml(stage, tmp_path, base_env, text, line, col, detail):
    p = _launcher(stage, tmp_path)
    cfg = _config(tmp_path, text)
    msg, ctx, hint, _ = _fail(p, base_env, 125)
    assert msg.startswith("invalid TOML: ") and detail in msg, msg
    assert ctx == [f"config: {cfg}:{line}:{col}"]
    assert "toml" in hint.lower()


@pytest.mark.parametrize("text,key,line,hint", [
    ('interpeter = "/usr/bin/python3.11"\n', "interpeter", 1, "did you mean 'interpreter'?"),
    ('interpreter = "/usr/bin/python3.11"\npreloads = []\n', "preloads", 2,
     "did you mean 'preload'?"),
    ('interpreter = "/usr/bin/python3.11"\n\nlibrary_path_positon = "append"\n',
     "library_path_positon", 3, "did you mean 'library_path_position'?"),
    ('interpreter = "/usr/bin/python3.11"\nlibrarypath = ["x"]\n', "librarypath", 2,
     "did you mean 'library_path'?"),
    ('interpreter = "/usr/bin/python3.11"\nenvironment = 1\n', "environment", 2, None),
])
def test_unknown_key(stage, tmp_path, base_env, text, key, line, hint):
    p = _launcher(stage, tmp_path)
    cfg = _config(tmp_path, text)
    msg, ctx, got_hint, _ = _fail(p, base_env, 125)
    assert msg == f"unknown key '{key}'"
    assert ctx == [f"config: {cfg}:{line}:1"]
    if hint is not None:
        assert got_hint == hint
    else:  # nothing near: the valid keys are listed (later issues add more)
        assert got_hint.startswith("valid keys: interpreter, preload, library_path, "
                                   "library_path_position, env"), got_hint


@pytest.mark.parametrize("text,message,where", [
    ('preload = []\n', "no 'interpreter' set", None),
    ('interpreter = 3\n', "'interpreter' must be a string", (1, 15)),
    ('interpreter = "/usr/bin/python3.11"\nlibrary_path_position = "middle"\n',
     'library_path_position must be "prepend" or "append", not "middle"', (2, 25)),
    ('interpreter = "/usr/bin/python3.11"\n[env]\nLD_PRELOAD = "/x.so"\n',
     "[env] may not set LD_PRELOAD: pyshim manages it", (3, 1)),
    ('interpreter = "/usr/bin/python3.11"\n[env]\nLD_LIBRARY_PATH = "/x"\n',
     "[env] may not set LD_LIBRARY_PATH: pyshim manages it", (3, 1)),
])
def test_invalid_values(stage, tmp_path, base_env, text, message, where):
    p = _launcher(stage, tmp_path)
    cfg = _config(tmp_path, text)
    msg, ctx, hint, _ = _fail(p, base_env, 125)
    assert msg == message
    assert ctx == [f"config: {cfg}" + (f":{where[0]}:{where[1]}" if where else "")]


# --------------------------------------------------------------------------
# the interpreter


def test_interpreter_not_found(stage, tmp_path, base_env):
    p = _launcher(stage, tmp_path)
    cfg = _config(tmp_path, 'interpreter = "/nonexistent/python3"\n')
    msg, ctx, hint, _ = _fail(p, base_env, 127)
    assert msg == "interpreter not found: /nonexistent/python3"
    assert ctx == [f"config: {cfg}:1:15"]
    assert hint == f"fix 'interpreter' or run `pyshim doctor {p}`"


def test_interpreter_not_found_relative(stage, tmp_path, base_env):
    p = _launcher(stage, tmp_path)
    cfg = _config(tmp_path, '# the real one\ninterpreter = "py/python3"\n')
    msg, ctx, hint, _ = _fail(p, base_env, 127)
    assert msg == f"interpreter not found: {tmp_path}/py/python3"
    assert ctx == [f"config: {cfg}:2:15"]


def test_interpreter_dangling_symlink(stage, tmp_path, base_env):
    p = _launcher(stage, tmp_path)
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    _config(tmp_path, f'interpreter = "{tmp_path}/dangling"\n')
    msg, ctx, hint, _ = _fail(p, base_env, 127)
    assert msg == f"interpreter not found: {tmp_path}/dangling"


def test_interpreter_not_executable(stage, tmp_path, base_env, py):
    p = _launcher(stage, tmp_path)
    noexec = tmp_path / "python-noexec"
    shutil.copy(py.path, noexec)
    noexec.chmod(0o644)
    cfg = _config(tmp_path, f'interpreter = "{noexec}"\n')
    msg, ctx, hint, _ = _fail(p, base_env, 126)
    assert msg == f"interpreter is not an executable file: {noexec}"
    assert ctx == [f"config: {cfg}:1:15"]
    assert hint == f"chmod +x {noexec} or fix 'interpreter'"


def test_interpreter_is_a_directory(stage, tmp_path, base_env):
    p = _launcher(stage, tmp_path)
    (tmp_path / "adir").mkdir()
    _config(tmp_path, f'interpreter = "{tmp_path}/adir"\n')
    msg, ctx, hint, _ = _fail(p, base_env, 126)
    assert msg == f"interpreter is not an executable file: {tmp_path}/adir"


def test_interpreter_exec_format_error(stage, tmp_path, base_env):
    """Executable bit set, but execve() refuses it (ENOEXEC)."""
    p = _launcher(stage, tmp_path)
    bogus = tmp_path / "bogus"
    bogus.write_bytes(b"\x7fELF-but-not-really" + b"\0" * 64)
    bogus.chmod(0o755)
    cfg = _config(tmp_path, f'interpreter = "{bogus}"\n')
    msg, ctx, hint, _ = _fail(p, base_env, 126)
    assert msg == f"cannot execute interpreter {bogus}: Exec format error"
    assert ctx == [f"config: {cfg}:1:15"]
    assert f"pyshim doctor {p}" in hint


# --------------------------------------------------------------------------
# the interpreter is the shim itself


def _installed_venv(stage, py, tmp_path, base_env):
    venv = tmp_path / "installed"
    res = subprocess.run([str(py.path), "-m", "venv", "--without-pip", str(venv)], env=base_env,
                         capture_output=True)
    assert res.returncode == 0, res.stderr.decode()
    res = run([stage.cli, "install", venv], base_env)
    assert res.returncode == 0, res.stderr.decode()
    return venv


def _self_target(stage, tmp_path, kind, py, base_env):
    if kind == "installed binary":
        return str(stage.shim)
    if kind == "the launcher itself (relative)":
        return "bin/python"
    if kind == "a copy of the binary":
        copy = tmp_path / "elsewhere" / "python3"
        place_launcher(stage, copy, "copy-beside")
        return str(copy)
    if kind == "another launcher (symlink)":
        other_venv = tmp_path / "other" / "bin" / "python"
        place_launcher(stage, other_venv)
        return str(other_venv)
    # 0.2: stamped copies (same size as the launcher, other bytes in the
    # stamp area) are recognised by the launcher note
    venv = _installed_venv(stage, py, tmp_path, base_env)
    main = f"python{py.version[0]}.{py.version[1]}"
    if kind == "another venv's stamped launcher":
        return str(venv / "bin" / main)
    if kind == "another venv's base launcher":
        return str(venv / ".pyshim" / "base" / "bin" / main)
    raise KeyError(kind)


SELF_KINDS = ["installed binary", "the launcher itself (relative)", "a copy of the binary",
              "another launcher (symlink)", "another venv's stamped launcher",
              "another venv's base launcher"]


@pytest.mark.parametrize("kind", SELF_KINDS)
def test_interpreter_is_the_shim(stage, tmp_path, base_env, py, kind):
    p = _launcher(stage, tmp_path)
    target = _self_target(stage, tmp_path, kind, py, base_env)
    cfg = _config(tmp_path, f'interpreter = "{target}"\n')
    expected = target if target.startswith("/") else f"{tmp_path}/{target}"
    msg, ctx, hint, elapsed = _fail(p, base_env, 125, timeout=20)
    assert msg == f"interpreter resolves to the shim itself: {expected}"
    assert ctx == [f"config: {cfg}:1:15"]
    assert elapsed < 3.0, f"took {elapsed:.2f}s"


@pytest.mark.parametrize("kind", SELF_KINDS)
def test_interpreter_is_the_shim_no_exec(stage, tmp_path, base_env, py, kind, strace):
    """Under strace: the launcher's own execve is the only one (no loop, and
    no exec at all)."""
    p = _launcher(stage, tmp_path)
    target = _self_target(stage, tmp_path, kind, py, base_env)
    _config(tmp_path, f'interpreter = "{target}"\n')
    log = tmp_path / "strace.log"
    res = run([strace, "-f", "-qq", "-e", "trace=execve", "-o", log, p, "-c", RAN], base_env,
              timeout=20)
    if res.returncode != 125 and b"ptrace" in res.stderr:
        pytest.skip(f"strace cannot trace here: {res.stderr.decode()[:200]}")
    assert res.returncode == 125, res.stderr.decode()
    execs = [line for line in log.read_text().splitlines() if "execve(" in line]
    assert len(execs) == 1, execs
    assert f'execve("{p}"' in execs[0]


def _other_build(stage, root):
    """Another pyshim build, installed as 0.2 lays it out: the same launcher
    with one byte appended at PREFIX/lib/pyshim/pyshim-launcher (a different
    size, so neither the same-inode nor the same-size check can match it;
    the ELF note is what identifies it), its restore library beside it."""
    other = root / "other-pyshim"
    libdir = other / "lib" / "pyshim"
    libdir.mkdir(parents=True)
    launcher = libdir / "pyshim-launcher"
    shutil.copy2(stage.shim, launcher)
    with open(launcher, "ab") as f:
        f.write(b"X")
    shutil.copy2(stage.restore, libdir / stage.restore.name)
    assert launcher.stat().st_size == stage.shim.stat().st_size + 1
    return launcher


def _two_builds(stage, tmp_path):
    """a/bin/python -> this build, b/bin/python -> the other build."""
    other = _other_build(stage, tmp_path)
    a = tmp_path / "a" / "bin" / "python"
    place_launcher(stage, a)
    b = tmp_path / "b" / "bin" / "python"
    b.parent.mkdir(parents=True)
    b.symlink_to(other)
    return a, b


def test_launcher_of_another_build_as_interpreter_still_runs(stage, tmp_path, base_env, py):
    """Control for the loop test below: the other build is a working launcher,
    and a chain a (this build) -> b (other build) -> real Python is not a loop
    and runs, through both launchers."""
    a, b = _two_builds(stage, tmp_path)
    _config(tmp_path / "a", f'interpreter = "{b}"\n')
    _config(tmp_path / "b", f'interpreter = "{py.path}"\n')
    res = run([b, "-c", "import sys; print(sys.executable)"], base_env, timeout=30)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.decode() == f"{b}\n"
    # a execs b; b sets argv[0] to its own invoked path, so the interpreter
    # sees b
    res = run([a, "-c", "import sys; print(sys.executable)"], base_env, timeout=30)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.decode() == f"{b}\n"
    assert res.stderr == b""


def test_two_launchers_of_different_builds_pointing_at_each_other(stage, tmp_path, base_env):
    """a -> b -> a: b was exec'd by a launcher and finds that its interpreter
    is a pyshim launcher (the ELF note), so the loop stops at the second hop."""
    a, b = _two_builds(stage, tmp_path)
    _config(tmp_path / "a", f'interpreter = "{b}"\n')
    cfg_b = _config(tmp_path / "b", f'interpreter = "{a}"\n')
    try:
        msg, ctx, hint, elapsed = _fail(a, base_env, 125, timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail("exec loop: still running after 5 s")
    assert msg == f"interpreter resolves to the shim itself: {a}"
    assert ctx == [f"config: {cfg_b}:1:15"]
    assert elapsed < 3.0, f"took {elapsed:.2f}s"


def test_two_launchers_of_different_builds_no_exec_loop(stage, tmp_path, base_env, strace):
    """Under strace: a's execve and a's exec of b, nothing more (no third hop,
    and the interpreter is never exec'd)."""
    a, b = _two_builds(stage, tmp_path)
    _config(tmp_path / "a", f'interpreter = "{b}"\n')
    _config(tmp_path / "b", f'interpreter = "{a}"\n')
    log = tmp_path / "strace.log"
    start = time.monotonic()
    try:
        res = run([strace, "-f", "-qq", "-s", "4096", "-e", "trace=execve", "-o", log, a, "-c",
                   RAN], base_env, timeout=10)
    except subprocess.TimeoutExpired:
        execs = [line for line in log.read_text().splitlines() if "execve(" in line]
        pytest.fail(f"exec loop: {len(execs)} execve calls after 10 s")
    elapsed = time.monotonic() - start
    if res.returncode != 125 and b"ptrace" in res.stderr:
        pytest.skip(f"strace cannot trace here: {res.stderr.decode()[:200]}")
    assert res.returncode == 125, res.stderr.decode()
    assert res.stdout == b""
    execs = [line for line in log.read_text().splitlines() if "execve(" in line]
    assert len(execs) == 2, execs
    assert f'execve("{a}"' in execs[0], execs
    # b is exec'd with argv[0] = a (the invoked path a launcher passes on)
    assert f'execve("{b}", ["{a}"' in execs[1], execs
    assert elapsed < 5.0, f"took {elapsed:.2f}s"


# --------------------------------------------------------------------------
# preloads and loader lists


def test_preload_missing(stage, tmp_path, base_env, py):
    p = _launcher(stage, tmp_path)
    cfg = _config(tmp_path, f'interpreter = "{py.path}"\npreload = ["/nonexistent/libx.so"]\n')
    msg, ctx, hint, _ = _fail(p, base_env, 125)
    assert msg == "preload not found: /nonexistent/libx.so"
    assert ctx == [f"config: {cfg}:2:12"]
    assert "preload" in hint


def test_preload_second_entry_missing(stage, tmp_path, base_env, py, jemalloc):
    p = _launcher(stage, tmp_path)
    cfg = _config(
        tmp_path,
        f'interpreter = "{py.path}"\npreload = [\n  "{jemalloc}",\n  "/nonexistent/liby.so",\n]\n',
    )
    msg, ctx, hint, _ = _fail(p, base_env, 125)
    assert msg == "preload not found: /nonexistent/liby.so"
    assert ctx == [f"config: {cfg}:4:3"]


def test_preload_directory(stage, tmp_path, base_env, py):
    p = _launcher(stage, tmp_path)
    _config(tmp_path, f'interpreter = "{py.path}"\npreload = ["{tmp_path}"]\n')
    msg, ctx, hint, _ = _fail(p, base_env, 125)
    assert msg == f"preload is a directory: {tmp_path}"


def test_preload_bare_name(stage, tmp_path, base_env, py):
    p = _launcher(stage, tmp_path)
    cfg = _config(tmp_path, f'interpreter = "{py.path}"\npreload = ["libjemalloc.so.2"]\n')
    msg, ctx, hint, _ = _fail(p, base_env, 125)
    assert msg == "preload 'libjemalloc.so.2' is a bare library name"
    assert ctx == [f"config: {cfg}:2:12"]
    assert "absolute path" in hint


@pytest.mark.parametrize("name", ["lib:colon.so", "lib space.so", "lib\ttab.so"])
def test_preload_with_separator(stage, tmp_path, base_env, py, testlibs, name):
    """The file exists: the refusal is about the name, which LD_PRELOAD
    would split."""
    p = _launcher(stage, tmp_path)
    lib = tmp_path / "libs" / name
    lib.parent.mkdir()
    shutil.copy(testlibs.caller, lib)
    escaped = str(lib).replace("\t", "\\t")
    cfg = _config(tmp_path, f'interpreter = "{py.path}"\n\npreload = ["{escaped}"]\n')
    msg, ctx, hint, _ = _fail(p, base_env, 125)
    # error text shows control bytes escaped as \xNN (no raw tab on the terminal)
    shown = str(lib).replace("\t", "\\x09")
    why = ("it contains whitespace" if "\t" in name
           else "the loader splits LD_PRELOAD at ' ' and ':'")
    assert msg == f"cannot put {shown} in LD_PRELOAD: {why}"
    assert ctx == [f"config: {cfg}:3:12"]


@pytest.mark.parametrize("name", ["dir:colon", "dir space", "dir;semicolon"])
def test_library_path_with_separator(stage, tmp_path, base_env, py, name):
    p = _launcher(stage, tmp_path)
    d = tmp_path / name
    d.mkdir()
    cfg = _config(
        tmp_path, f'interpreter = "{py.path}"\nlibrary_path = ["{tmp_path}", "{d}"]\n'
    )
    msg, ctx, hint, _ = _fail(p, base_env, 125)
    why = ("it contains whitespace" if " " in name
           else "the loader splits LD_LIBRARY_PATH at ':' and ';'")
    assert msg == f"cannot put {d} in LD_LIBRARY_PATH: {why}"
    col = len('library_path = ["') + len(str(tmp_path)) + len('", "')
    assert ctx == [f"config: {cfg}:2:{col}"]


def test_library_path_relative_with_separator(stage, tmp_path, base_env, py):
    """A relative entry is resolved against the config's dir, and checked."""
    p = _launcher(stage, tmp_path)
    (tmp_path / "a b").mkdir()
    cfg = _config(tmp_path, f'interpreter = "{py.path}"\nlibrary_path = ["a b"]\n')
    msg, ctx, hint, _ = _fail(p, base_env, 125)
    assert msg == f"cannot put {tmp_path}/a b in LD_LIBRARY_PATH: it contains whitespace"
    assert ctx == [f"config: {cfg}:2:17"]


# --------------------------------------------------------------------------
# the restore library


def test_restore_library_missing(stage, tmp_path, base_env, py):
    root = tmp_path / "root"
    p = _launcher(stage, root, mode="copy-bare")
    write_config(root, py.path)
    msg, ctx, hint, _ = _fail(p, base_env, 125)
    assert msg == "restore library libpyshim-restore.so not found"
    assert ctx == [
        f"searched: {root}/lib/pyshim/libpyshim-restore.so",
        f"searched: {root}/bin/libpyshim-restore.so",
    ]
    assert str(p) in hint


def _stamped_copy_elsewhere(stage, py, tmp_path, base_env):
    """A copy of an installed venv's launcher, with nothing beside it."""
    venv = _installed_venv(stage, py, tmp_path, base_env)
    root = tmp_path / "elsewhere"
    p = root / "bin" / "python"
    p.parent.mkdir(parents=True)
    shutil.copy2(venv / "bin" / f"python{py.version[0]}.{py.version[1]}", p)
    return venv, root, p


def test_restore_library_from_the_stamp(stage, tmp_path, base_env, py):
    """Control for the test below: a stamped copy with no restore library
    beside it uses the one stamped in it (the venv's copy)."""
    venv, root, p = _stamped_copy_elsewhere(stage, py, tmp_path, base_env)
    res = run([p, "-c", "print(sorted({l.split(None, 5)[5].strip() for l in "
               "open('/proc/self/maps') if 'libpyshim-restore' in l}))"], base_env)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.decode() == f"{[str(venv / 'lib/pyshim/libpyshim-restore.so')]}\n"


def test_restore_library_missing_stamped(stage, tmp_path, base_env, py):
    """The stamped restore library is the last place searched, and named."""
    venv, root, p = _stamped_copy_elsewhere(stage, py, tmp_path, base_env)
    shutil.rmtree(venv / "lib" / "pyshim")
    msg, ctx, hint, _ = _fail(p, base_env, 125)
    assert msg == "restore library libpyshim-restore.so not found"
    assert ctx == [
        f"searched: {root}/lib/pyshim/libpyshim-restore.so",
        f"searched: {root}/bin/libpyshim-restore.so",
        f"searched: {venv}/lib/pyshim/libpyshim-restore.so (stamped)",
    ]
    assert str(p) in hint


# --------------------------------------------------------------------------
# the kernel's per-string limit (MAX_ARG_STRLEN, 32 pages with the NUL)

MAX_ARG_STRLEN = 32 * 4096


def _kernel_takes(entry: str) -> bool:
    """Whether execve takes an environment string this long (asked of the
    kernel itself, not assumed)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.execve("/bin/true", ["/bin/true"], dict([entry.split("=", 1)]))
        except OSError:
            os._exit(99)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("hot", [True, False], ids=["hot path", "general path"])
@pytest.mark.parametrize("extra", [0, 1], ids=["exactly the limit", "one byte more"])
def test_a_variable_of_exactly_the_kernels_limit(stage, tmp_path, base_env, py, hot, extra):
    """The planned LD_LIBRARY_PATH entry is MAX_ARG_STRLEN bytes with its NUL
    (taken by the kernel: the launcher must exec it, as python would), or one
    byte more (refused by the kernel: 125 naming the variable). 0.2 refused
    the first too, saying the limit was one byte more than the entry."""
    venv = _installed_venv(stage, py, tmp_path, base_env)
    # Longer than "PYSHIM_ORIG_": the planned entry is the longest, not the
    # bookkeeping one (PYSHIM_ORIG_LD_LIBRARY_PATH=LD_LIBRARY_PATH=caller).
    folder = "/nonexistent-library-folder"
    (venv / "pyshim.toml").write_text(
        f"interpreter = \"{py.path}\"\nlibrary_path = [\"{folder}\"]\n")
    if hot:
        assert run([stage.cli, "install", venv], base_env).returncode == 0
    prefix = f"LD_LIBRARY_PATH={folder}:"
    caller = "/c" * ((MAX_ARG_STRLEN - 1 - len(prefix)) // 2)
    caller += "x" * (MAX_ARG_STRLEN - 1 - len(prefix) - len(caller) + extra)
    entry = prefix + caller
    assert len(entry) + 1 == MAX_ARG_STRLEN + extra
    assert _kernel_takes(entry) == (extra == 0)
    env = {**base_env, "LD_LIBRARY_PATH": caller}
    res = run([venv / "bin/python", "-c",
               "import os; print(len(os.environ['LD_LIBRARY_PATH']))"], env)
    if extra == 0:
        assert res.returncode == 0, res.stderr.decode()[:2000]
        assert res.stdout.decode() == f"{len(caller)}\n"
    else:
        assert res.returncode == 125, res.stderr.decode()[:2000]
        first = res.stderr.decode().splitlines()[0]
        assert first == (f"pyshim: error: LD_LIBRARY_PATH would be {len(entry)} bytes; the "
                         f"kernel takes at most {MAX_ARG_STRLEN - 1} per variable"), first


@pytest.mark.parametrize("levels", [1, 2], ids=["script", "script of a script"])
def test_interpreter_is_a_script_naming_the_launcher(stage, tmp_path, base_env, py, levels):
    """An `interpreter` that is a #! script whose interpreter is a pyshim
    launcher (here the venv's own): the launcher would run the script, the
    kernel the launcher, forever (0.2 did). The second hop sees the
    bookkeeping, follows the #! lines to the launcher and stops with 125."""
    venv = _installed_venv(stage, py, tmp_path, base_env)
    target = venv / "bin" / "python"
    for level in range(levels):
        script = tmp_path / f"script{level}"
        script.write_text(f"#!{target}\nprint('script ran')\n")
        script.chmod(0o755)
        target = script
    (venv / "pyshim.toml").write_text(f'interpreter = "{target}"\n')
    msg, ctx, hint, elapsed = _fail(venv / "bin" / "python", base_env, 125, timeout=20)
    assert msg == f"interpreter resolves to the shim itself: {target}"
    assert ctx == [f"config: {venv}/pyshim.toml:1:15"]
    assert "not at a pyshim launcher" in hint
