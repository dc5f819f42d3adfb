"""`pyshim show` and `pyshim doctor` against real shim venvs.

show: its JSON is compared with what an interpreter started through the
launcher observes (sys.executable, /proc/self/exe, /proc/self/maps, and
/proc/self/environ, which keeps the environment as exec'd even after the
restore library has put os.environ back). doctor: passes on a good venv under
several caller environments, and names the exact problem, with exit 1, for
each broken setup.

Self-contained: venvs are made by hand (python -m venv, bin/python* replaced
by links to the installed shim, pyshim.toml written), so these tests do not
depend on `pyshim install`. Needs PYSHIM_PREFIX (bin/pyshim,
lib/pyshim/pyshim-launcher and lib/pyshim/libpyshim-restore.so)."""

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from conftest import DEBIAN_JEMALLOC, DEBIAN_PYTHON, all_interpreters

PYTHON = DEBIAN_PYTHON
JEMALLOC = DEBIAN_JEMALLOC
pytestmark = pytest.mark.usefixtures("needs_debian_python_and_jemalloc")
PYPY = Path("/usr/bin/pypy3")

# What an interpreter started through the launcher sees of itself.
SELF_REPORT = r"""
import json, os, sys
env = {}
with open("/proc/self/environ", "rb") as f:
    for entry in f.read().split(b"\0"):
        if entry:
            name, _, value = entry.partition(b"=")
            env[os.fsdecode(name)] = os.fsdecode(value)
with open("/proc/self/maps") as f:
    maps = sorted({line.split()[-1] for line in f if len(line.split()) >= 6})
print(json.dumps({
    "executable": sys.executable,
    "exe": os.path.realpath("/proc/self/exe"),
    "exec_env": env,
    "os_environ": dict(os.environ),
    "maps": maps,
}))
"""


# --------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="module")
def prefix() -> Path:
    value = os.environ.get("PYSHIM_PREFIX")
    if not value:
        pytest.fail("PYSHIM_PREFIX is not set (the install prefix holding bin/pyshim)")
    return Path(value).resolve()


@pytest.fixture(scope="module")
def pyshim(prefix) -> Path:
    path = prefix / "bin" / "pyshim"
    assert path.is_file(), f"{path} missing"
    return path


@pytest.fixture(scope="module")
def restore(prefix) -> Path:
    path = prefix / "lib" / "pyshim" / "libpyshim-restore.so"
    assert path.is_file(), f"{path} missing"
    return path


@pytest.fixture
def env(tmp_path):
    """The caller's environment: minimal and explicit."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LC_ALL": "C.UTF-8",
    }


def toml_str(value) -> str:
    return json.dumps(str(value))  # a JSON string of printable text is a TOML string


def config_text(interpreter, preload=(), library_path=(), extra="") -> str:
    lines = [f"interpreter = {toml_str(interpreter)}"]
    if preload:
        lines.append("preload = [" + ", ".join(toml_str(p) for p in preload) + "]")
    if library_path:
        lines.append("library_path = [" + ", ".join(toml_str(p) for p in library_path) + "]")
    return "\n".join(lines) + "\n" + extra


def unstamped_lines(pyshim: Path):
    """doctor's first lines for a shared (unstamped) launcher of this build."""
    version = subprocess.run([str(pyshim), "--version"], capture_output=True, text=True,
                             check=True).stdout.split()[-1]
    return [f"✓ launcher version {version} matches the tool",
            "✓ launcher carries no stamp (a shared launcher: it needs a pyshim.toml beside the "
            "path it is started by)"]


def launcher_of(pyshim: Path) -> Path:
    """The launcher binary installed with the CLI: PREFIX/lib/pyshim/pyshim-launcher."""
    return pyshim.parent.parent / "lib" / "pyshim" / "pyshim-launcher"


def make_venv(root: Path, pyshim: Path, env, interpreter=PYTHON, base=PYTHON, **config) -> Path:
    """A venv whose bin/python* are links to the shared (unstamped) launcher,
    as `pyshim install --symlink` makes them; returns bin/python."""
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(root)], env=env, check=True)
    for link in (root / "bin").iterdir():
        if link.name.startswith(("python", "pypy")):
            link.unlink()
            link.symlink_to(launcher_of(pyshim))
    (root / "pyshim.toml").write_text(config_text(interpreter, **config))
    return root / "bin" / "python"


def run(argv, env, timeout=120):
    return subprocess.run([str(a) for a in argv], env=env, capture_output=True, text=True,
                          timeout=timeout)


def doctor(pyshim, launcher, env):
    res = run([pyshim, "doctor", launcher], env)
    lines = res.stdout.splitlines()
    assert res.stderr == "", res.stderr
    return res.returncode, lines, res.stdout


def check_lines(lines):
    """The check lines (not their indented context/fix lines)."""
    return [line for line in lines if not line.startswith(" ")]


def failed(lines):
    return [line for line in lines if line.startswith("✗")]


def show_json(pyshim, launcher, env):
    res = run([pyshim, "show", launcher, "--json"], env)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def build_so(dest: Path, source: str):
    src = dest.with_suffix(".c")
    src.write_text(source)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(dest), str(src)], check=True)


# --------------------------------------------------------------------------
# show


@pytest.mark.parametrize("caller", ["unset", "empty", "set"])
def test_show_json_matches_what_the_interpreter_sees(caller, pyshim, restore, tmp_path, env):
    libdir = tmp_path / "layer"
    libdir.mkdir()
    extra = '[env]\nSHOW_TEST = "from config"\nSHOW_EMPTY = ""\n'
    launcher = make_venv(tmp_path / "v", pyshim, env, preload=[JEMALLOC],
                         library_path=[libdir], extra=extra)
    if caller == "empty":
        env.update(LD_PRELOAD="", LD_LIBRARY_PATH="")
    elif caller == "set":
        callerlib = tmp_path / "libcaller.so"
        build_so(callerlib, "int caller_marker(void) { return 1; }\n")
        env.update(LD_PRELOAD=str(callerlib), LD_LIBRARY_PATH=str(tmp_path))
    env["SHOW_TEST"] = "from caller"

    shown = show_json(pyshim, launcher, env)
    config = str(tmp_path / "v" / "pyshim.toml")
    assert shown["schema"] == 1
    assert shown["launcher"] == str(launcher)
    assert shown["config"] == config
    assert shown["interpreter"] == {"path": str(PYTHON), "origin": f"{config}:1:15"}
    assert shown["argv0"] == str(launcher)
    assert shown["restore_library"] == str(restore)
    assert shown["preload"] == [{"path": str(JEMALLOC), "origin": f"{config}:2:12"}]
    assert shown["library_path"] == [{"path": str(libdir), "origin": f"{config}:3:17"}]
    assert shown["library_path_position"] == "prepend"

    changes = {c["name"]: c for c in shown["env"]}
    assert [c["name"] for c in shown["env"]] == [
        "LD_PRELOAD", "LD_LIBRARY_PATH", "SHOW_TEST", "SHOW_EMPTY",
        "PYSHIM_ORIG_LD_PRELOAD", "PYSHIM_ORIG_LD_LIBRARY_PATH", "PYSHIM_TARGET"]
    for name in ("LD_PRELOAD", "LD_LIBRARY_PATH"):
        c = changes[name]
        assert c["restored_before_main"] is True
        if caller == "unset":
            assert c["action"] == "added" and "before" not in c, c
        else:
            assert c["action"] == "changed" and c["before"] == env[name], c
    preload_origin = [f"{config}:2:12", "restore library"]
    assert changes["LD_PRELOAD"]["origin"] == preload_origin + (
        ["caller's environment"] if caller == "set" else [])
    assert changes["SHOW_TEST"]["action"] == "changed"
    assert changes["SHOW_TEST"]["before"] == "from caller"
    assert changes["SHOW_TEST"]["restored_before_main"] is False
    assert changes["SHOW_EMPTY"] == {
        "name": "SHOW_EMPTY", "action": "added", "value": "", "origin": [f"{config}:6:14"],
        "restored_before_main": False}
    assert changes["PYSHIM_TARGET"]["value"] == str(launcher)
    for name in ("PYSHIM_ORIG_LD_PRELOAD", "PYSHIM_ORIG_LD_LIBRARY_PATH", "PYSHIM_TARGET"):
        assert changes[name]["origin"] == [
            "bookkeeping (removed by the restore library before main)"]

    # Now what the launcher really does.
    res = run([launcher, "-c", SELF_REPORT], env)
    assert res.returncode == 0, res.stderr
    seen = json.loads(res.stdout)
    assert seen["executable"] == shown["argv0"]
    assert seen["exe"] == os.path.realpath(shown["interpreter"]["path"])
    for lib in shown["preload"]:
        assert os.path.realpath(lib["path"]) in seen["maps"]
    assert os.path.realpath(shown["restore_library"]) in seen["maps"]
    # The environment as exec'd is exactly the caller's plus show's changes.
    expected = dict(env)
    expected.update({c["name"]: c["value"] for c in shown["env"]})
    assert seen["exec_env"] == expected
    # And os.environ is that with everything marked restored_before_main undone.
    after_restore = dict(env)
    after_restore.update(
        {c["name"]: c["value"] for c in shown["env"] if not c["restored_before_main"]})
    assert seen["os_environ"] == after_restore


def test_show_text_names_config_interpreter_and_each_variable(pyshim, restore, tmp_path, env):
    launcher = make_venv(tmp_path / "v", pyshim, env, preload=[JEMALLOC],
                         extra='[env]\nMALLOC_CONF = "background_thread:true"\n')
    env["LD_PRELOAD"] = ""
    res = run([pyshim, "show", launcher], env)
    assert res.returncode == 0, res.stderr
    text = res.stdout
    config = f"{tmp_path}/v/pyshim.toml"
    assert f"config:          {config}  (parsed at launch)\n" in text
    assert f"interpreter:     {PYTHON}  ({config}:1:15)\n" in text
    assert f"argv[0]:         {launcher}\n" in text
    assert f"restore library: {restore}\n" in text
    assert f"preload:         {JEMALLOC}  ({config}:2:12)\n" in text
    assert (f"  LD_PRELOAD={JEMALLOC}:{restore}\n"
            "    changed, before: empty\n"
            f"    from: {config}:2:12, restore library\n"
            "    restored to the caller's value by the restore library before main()\n") in text
    assert (f"  MALLOC_CONF=background_thread:true\n"
            "    added, before: unset\n"
            f"    from: {config}:4:15\n"
            "    kept: inherited by every child\n") in text
    for name in ("PYSHIM_ORIG_LD_PRELOAD", "PYSHIM_ORIG_LD_LIBRARY_PATH"):
        assert (f"  {name}=" in text and
                "    from: bookkeeping (removed by the restore library before main)\n" in text)
    assert "LD_LIBRARY_PATH=" not in text.split("PYSHIM_ORIG")[0]  # no library_path: untouched
    assert "children not started through the launcher" in text


def test_show_text_escapes_control_bytes_and_json_keeps_them(pyshim, tmp_path, env):
    """An [env] value with a newline and an escape sequence: the text view
    shows them as \\xNN (nothing reaches the terminal raw), the JSON holds
    the exact value the interpreter gets."""
    launcher = make_venv(tmp_path / "v", pyshim, env,
                         extra='[env]\nITEST_ODD = "a\\nb\\u001b[31m"\n')
    res = run([pyshim, "show", launcher], env)
    assert res.returncode == 0, res.stderr
    assert "  ITEST_ODD=a\\x0ab\\x1b[31m\n" in res.stdout
    assert "\x1b" not in res.stdout
    shown = show_json(pyshim, launcher, env)
    odd = [c for c in shown["env"] if c["name"] == "ITEST_ODD"]
    assert odd and odd[0]["value"] == "a\nb\x1b[31m", shown


def test_show_reports_the_launchers_own_error(pyshim, tmp_path, env):
    launcher = make_venv(tmp_path / "v", pyshim, env, preload=["/nonexistent/libnope.so"])
    res = run([pyshim, "show", launcher], env)
    assert res.returncode == 125
    assert res.stdout == ""
    assert "pyshim: error: preload not found: /nonexistent/libnope.so\n" in res.stderr
    assert f"config: {tmp_path}/v/pyshim.toml:2:12" in res.stderr


def test_show_and_doctor_refuse_a_missing_launcher(pyshim, tmp_path, env):
    for command in ("show", "doctor"):
        res = run([pyshim, command, tmp_path / "nope" / "python"], env)
        assert res.returncode == 2, (command, res)
        assert f"launcher not found: {tmp_path}/nope/python" in res.stderr


# --------------------------------------------------------------------------
# doctor: good setups

# The interpreter's libc, as doctor finds it: beside the loader python3.11 names.
HOST_LIBC = Path(os.path.realpath("/lib64/ld-linux-x86-64.so.2")).parent / "libc.so.6"

GOOD_LINES = [
    "✓ config found and valid: {config}",
    "✓ interpreter exists: {python}  ({config}:1:15)",
    "✓ interpreter is executable",
    "✓ interpreter is not the shim",
    "✓ interpreter is dynamically linked (x86-64, 64-bit)",
    "✓ preload {jemalloc} exists and matches the interpreter (x86-64, 64-bit)",
    "✓ library directory {libdir} exists",
    "✓ restore library present and matches the interpreter: {restore}",
    "✓ C library loads the restore library and preloads: {glibc} ({libc})",
    "✓ sys.executable is the launcher: {launcher}",
    "✓ preload mapped in the interpreter: {jemalloc}",
    "✓ preload mapped in a spawn worker: {jemalloc}",
    "✓ /bin/sh child gets the caller's LD_PRELOAD ({preload})",
    "✓ /bin/sh child gets the caller's LD_LIBRARY_PATH ({library_path})",
    "✓ /bin/sh child has no preload or restore library mapped",
    "✓ /bin/sh child has no PYSHIM_ORIG_* variables",
]


@pytest.mark.parametrize("caller", ["unset", "empty", "set"])
def test_doctor_passes_on_a_good_venv(caller, pyshim, restore, tmp_path, env):
    libdir = tmp_path / "layer"
    libdir.mkdir()
    launcher = make_venv(tmp_path / "v", pyshim, env, preload=[JEMALLOC], library_path=[libdir])
    preload = library_path = "unset"
    if caller == "empty":
        env.update(LD_PRELOAD="", LD_LIBRARY_PATH="")
        preload = library_path = "set to empty"
    elif caller == "set":
        callerlib = tmp_path / "libcaller.so"
        build_so(callerlib, "int caller_marker(void) { return 1; }\n")
        env.update(LD_PRELOAD=str(callerlib), LD_LIBRARY_PATH=str(tmp_path))
        preload, library_path = json.dumps(str(callerlib)), json.dumps(str(tmp_path))
    code, lines, out = doctor(pyshim, launcher, env)
    assert code == 0, out
    expected = [line.format(config=tmp_path / "v" / "pyshim.toml", python=PYTHON,
                            jemalloc=JEMALLOC, libdir=libdir, restore=restore, launcher=launcher,
                            preload=preload, library_path=library_path,
                            glibc=os.confstr("CS_GNU_LIBC_VERSION"), libc=HOST_LIBC)
                for line in GOOD_LINES]
    assert lines == unstamped_lines(pyshim) + expected


def test_doctor_default_launcher_is_dot_venv(pyshim, tmp_path, env):
    make_venv(tmp_path / ".venv", pyshim, env, preload=[JEMALLOC])
    res = subprocess.run([str(pyshim), "doctor"], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"✓ sys.executable is the launcher: {tmp_path}/.venv/bin/python" in res.stdout


def test_doctor_passes_on_a_pypy_venv(pyshim, tmp_path, env):
    if not PYPY.exists():
        pytest.skip(f"{PYPY} not installed (Debian package pypy3)")
    launcher = make_venv(tmp_path / "v", pyshim, env, interpreter=PYPY, base=PYPY,
                         preload=[JEMALLOC])
    code, lines, out = doctor(pyshim, launcher, env)
    assert code == 0, out
    assert f"✓ PyPy launcher is inside a venv: {tmp_path}/v/pyvenv.cfg" in lines
    assert all(line.startswith("✓") for line in lines), out


# --------------------------------------------------------------------------
# doctor: each broken setup is named exactly


def test_doctor_missing_interpreter(pyshim, tmp_path, env):
    launcher = make_venv(tmp_path / "v", pyshim, env, interpreter="/nonexistent/python3",
                         preload=[JEMALLOC])
    code, lines, out = doctor(pyshim, launcher, env)
    assert code == 1, out
    assert failed(lines) == [
        "✗ interpreter exists: interpreter not found: /nonexistent/python3"]
    i = lines.index(failed(lines)[0])
    assert lines[i + 1] == f"  config: {tmp_path}/v/pyshim.toml:1:15"
    assert lines[i + 2] == (
        "  fix: point 'interpreter' at the real Python binary (the 'home' folder in "
        f"{tmp_path}/v/pyvenv.cfg names the one a venv was made from)")
    assert check_lines(lines)[-1] == (
        "- live round trip: skipped (the launcher would refuse to start: interpreter not found: "
        "/nonexistent/python3)")


def test_doctor_missing_preload(pyshim, tmp_path, env):
    launcher = make_venv(tmp_path / "v", pyshim, env, preload=[JEMALLOC, "/nonexistent/libx.so"])
    code, lines, out = doctor(pyshim, launcher, env)
    assert code == 1, out
    assert failed(lines) == ["✗ preload: preload not found: /nonexistent/libx.so"]
    i = lines.index(failed(lines)[0])
    assert lines[i + 1] == f"  config: {tmp_path}/v/pyshim.toml:2:{14 + len(toml_str(JEMALLOC))}"
    assert f"✓ preload {JEMALLOC} exists and matches the interpreter (x86-64, 64-bit)" in lines
    assert check_lines(lines)[-1].startswith("- live round trip: skipped")


def foreign_library(tmp_path: Path, kind: str):
    """(path, description) of a shared library the x86-64 interpreter cannot
    load: built with a 32-bit or cross toolchain if one works, else an ELF
    header crafted with struct (all the loader and doctor read)."""
    src = tmp_path / "foreign.c"
    src.write_text("int foreign(void) { return 1; }\n")
    out = tmp_path / f"lib{kind}.so"
    toolchains = {
        "32-bit": [(["gcc", "-m32"], "i386, 32-bit")],
        "foreign-arch": [(["aarch64-linux-gnu-gcc"], "aarch64, 64-bit"),
                         (["arm-linux-gnueabihf-gcc"], "arm, 32-bit")],
    }[kind]
    for cc, description in toolchains:
        if shutil.which(cc[0]) is None:
            continue
        res = subprocess.run([*cc, "-shared", "-fPIC", "-o", str(out), str(src)],
                             capture_output=True)
        if res.returncode == 0:
            return out, description
    if kind == "32-bit":
        # Elf32_Ehdr: ELFCLASS32, little-endian, ET_DYN, EM_386, no program headers.
        header = b"\x7fELF" + bytes([1, 1, 1]) + bytes(9)
        header += struct.pack("<HHIIIIIHHHHHH", 3, 3, 1, 0, 0, 0, 0, 52, 32, 0, 40, 0, 0)
        description = "i386, 32-bit"
    else:
        # Elf64_Ehdr: ELFCLASS64, little-endian, ET_DYN, EM_AARCH64 (183).
        header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
        header += struct.pack("<HHIQQQIHHHHHH", 3, 183, 1, 0, 0, 0, 0, 64, 56, 0, 64, 0, 0)
        description = "aarch64, 64-bit"
    out.write_bytes(header)
    return out, description


@pytest.mark.parametrize("kind", ["32-bit", "foreign-arch"])
def test_doctor_incompatible_preload(kind, pyshim, tmp_path, env):
    lib, description = foreign_library(tmp_path, kind)
    launcher = make_venv(tmp_path / "v", pyshim, env, preload=[lib])
    code, lines, out = doctor(pyshim, launcher, env)
    assert code == 1, out
    # Static check first; the live round trip then confirms the loader skipped it.
    assert failed(lines) == [
        f"✗ preload {lib}: {description}, but the interpreter is x86-64, 64-bit: the loader "
        "ignores it",
        f"✗ preload mapped in the interpreter: {lib}: not in /proc/self/maps",
        f"✗ preload mapped in a spawn worker: {lib}: not in /proc/self/maps",
    ]
    assert "  fix: point 'preload' at the x86-64, 64-bit build of the library" in lines
    # The loader's own complaint is shown under the round-trip failure.
    assert any(line.startswith("  stderr: ") and "ld.so" in line for line in lines), out
    # The /bin/sh child is still clean.
    assert "✓ /bin/sh child has no preload or restore library mapped" in lines


@pytest.mark.parametrize("which", ["own-link", "other-build"])
def test_doctor_interpreter_is_the_shim(which, pyshim, tmp_path, env):
    venv = tmp_path / "v"
    launcher = make_venv(venv, pyshim, env, preload=[JEMALLOC])
    if which == "own-link":
        interpreter = launcher
    else:
        # Another build: not the same file, size or contents; its ELF note says launcher.
        interpreter = tmp_path / "other" / "pyshim"
        interpreter.parent.mkdir()
        shutil.copy2(launcher_of(pyshim), interpreter)
        with open(interpreter, "ab") as f:
            f.write(b"\0")
    (venv / "pyshim.toml").write_text(config_text(interpreter, preload=[JEMALLOC]))
    code, lines, out = doctor(pyshim, launcher, env)
    assert code == 1, out
    assert failed(lines) == [
        f"✗ interpreter is not the shim: interpreter resolves to the shim itself: {interpreter}"]
    assert "✓ interpreter is executable" in lines
    assert check_lines(lines)[-1].startswith("- live round trip: skipped")
    res = run([pyshim, "show", launcher], env)
    assert res.returncode == 125
    assert f"interpreter resolves to the shim itself: {interpreter}" in res.stderr


def test_doctor_library_dir_missing(pyshim, tmp_path, env):
    launcher = make_venv(tmp_path / "v", pyshim, env, preload=[JEMALLOC],
                         library_path=["share/venv/dynlib"])
    code, lines, out = doctor(pyshim, launcher, env)
    assert code == 1, out
    missing = tmp_path / "v" / "share" / "venv" / "dynlib"
    assert failed(lines) == [f"✗ library directory {missing}: not found"]
    i = lines.index(failed(lines)[0])
    assert lines[i + 1] == f"  config: {tmp_path}/v/pyshim.toml:3:17"
    # The launcher still runs with a missing folder, so the round trip does too.
    assert "✓ /bin/sh child has no PYSHIM_ORIG_* variables" in lines


def test_doctor_library_path_is_a_file(pyshim, tmp_path, env):
    launcher = make_venv(tmp_path / "v", pyshim, env, library_path=[JEMALLOC])
    code, lines, out = doctor(pyshim, launcher, env)
    assert code == 1, out
    assert failed(lines) == [f"✗ library directory {JEMALLOC}: not a directory"]


def test_doctor_round_trip_catches_a_restore_library_that_does_not_restore(
        pyshim, tmp_path, env):
    """The static checks cannot see this; only the /bin/sh child can. The
    launcher is a copy with a do-nothing libpyshim-restore.so beside it."""
    venv = tmp_path / "v"
    launcher = make_venv(venv, pyshim, env, preload=[JEMALLOC])
    for link in (venv / "bin").iterdir():
        if link.name.startswith("python"):
            link.unlink()
    shutil.copy2(launcher_of(pyshim), launcher)
    fake = venv / "bin" / "libpyshim-restore.so"
    build_so(fake, "int not_restoring(void) { return 0; }\n")
    env["LD_LIBRARY_PATH"] = ""  # no library_path: the plan leaves it as it is
    code, lines, out = doctor(pyshim, launcher, env)
    assert code == 1, out
    assert f"✓ restore library present and matches the interpreter: {fake}" in lines
    assert "✓ /bin/sh child gets the caller's LD_LIBRARY_PATH (set to empty)" in lines
    assert failed(lines) == [
        "✗ /bin/sh child gets the caller's LD_PRELOAD (unset): it got "
        f"{json.dumps(f'{JEMALLOC}:{fake}')}",
        f"✗ /bin/sh child has no preload or restore library mapped: mapped: {JEMALLOC}, {fake}",
        "✗ /bin/sh child has no PYSHIM_ORIG_* variables: it has PYSHIM_ORIG_LD_PRELOAD, "
        "PYSHIM_ORIG_LD_LIBRARY_PATH",
    ]


def test_doctor_statically_linked_interpreter(pyshim, tmp_path, env):
    src = tmp_path / "static.c"
    src.write_text("int main(void) { return 0; }\n")
    static = tmp_path / "static-python"
    res = subprocess.run(["gcc", "-static", "-o", str(static), str(src)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"static linking unavailable (libc.a missing?): {res.stderr.decode()[-200:]}")
    launcher = make_venv(tmp_path / "v", pyshim, env, interpreter=static, preload=[JEMALLOC])
    code, lines, out = doctor(pyshim, launcher, env)
    assert code == 1, out
    assert failed(lines)[0] == (
        "✗ interpreter is dynamically linked: statically linked: LD_PRELOAD has no effect")
    # The program runs but is no Python: the round trip says the probe never ran.
    assert failed(lines)[1] == (
        f"✗ live round trip: `{launcher} -c <probe>` did not run the probe to the end "
        "(exit status 0, no output)")
    assert len(failed(lines)) == 2, out


def test_doctor_script_interpreter(pyshim, tmp_path, env):
    script = tmp_path / "python-wrapper"
    script.write_text(f"#!/bin/sh\nexec {PYTHON} \"$@\"\n")
    script.chmod(0o755)
    launcher = make_venv(tmp_path / "v", pyshim, env, interpreter=script, preload=[JEMALLOC])
    code, lines, out = doctor(pyshim, launcher, env)
    assert code == 1, out
    assert failed(lines)[0].startswith(
        "✗ interpreter is dynamically linked: it is a script (#!/bin/sh), not an ELF binary")


def test_doctor_invalid_config_stops_the_dependent_checks(pyshim, restore, tmp_path, env):
    launcher = make_venv(tmp_path / "v", pyshim, env)
    (tmp_path / "v" / "pyshim.toml").write_text(
        f"interpreter = {toml_str(PYTHON)}\npreloads = []\n")
    code, lines, out = doctor(pyshim, launcher, env)
    assert code == 1, out
    assert check_lines(lines) == unstamped_lines(pyshim) + [
        "✗ config valid: unknown key 'preloads'",
        "- interpreter, preload and library_path checks: skipped (they need the config)",
        f"✓ restore library present: {restore}",
        "- live round trip: skipped (the launcher cannot start without a valid config)",
    ]
    assert f"  config: {tmp_path}/v/pyshim.toml:2:1" in lines
    assert "  fix: did you mean 'preload'?" in lines


def test_doctor_no_config(pyshim, tmp_path, env):
    launcher = make_venv(tmp_path / "v", pyshim, env)
    (tmp_path / "v" / "pyshim.toml").unlink()
    code, lines, out = doctor(pyshim, launcher, env)
    assert code == 1, out
    assert check_lines(lines)[:3] == unstamped_lines(pyshim) + [
        f"✗ config found: no pyshim.toml found for {launcher}"]
    assert f"  searched: {tmp_path}/v/pyshim.toml" in lines


def test_doctor_reports_every_problem_not_only_the_first(pyshim, tmp_path, env):
    launcher = make_venv(tmp_path / "v", pyshim, env, preload=["/nonexistent/liba.so"],
                         library_path=["/nonexistent/dir"])
    code, lines, out = doctor(pyshim, launcher, env)
    assert code == 1, out
    assert failed(lines) == ["✗ preload: preload not found: /nonexistent/liba.so",
                             "✗ library directory /nonexistent/dir: not found"]


# Configs the launcher refuses, one problem each: (name, config lines after
# `interpreter`, or a whole config when it starts with "interpreter").
REFUSED = [
    ("interpreter missing", 'interpreter = "/nonexistent/python3"\n'),
    ("interpreter not executable", 'interpreter = "{tmp}/plain-file"\n'),
    ("interpreter is a launcher", 'interpreter = "{launcher_binary}"\n'),
    ("preload missing", 'preload = ["/nonexistent/libx.so"]\n'),
    ("preload is a folder", 'preload = ["{tmp}"]\n'),
    ("preload with a space", 'preload = ["{tmp}/a b/lib.so"]\n'),
    ("preload with a $ token", 'preload = ["{tmp}/$LIB/lib.so"]\n'),
    ("library folder with a colon", 'library_path = ["{tmp}/x:y"]\n'),
    ("library folder with a carriage return", 'library_path = ["{tmp}/x\\ry"]\n'),
    ("library folder with a form feed", 'library_path = ["{tmp}/x\\fy"]\n'),
]


@pytest.mark.parametrize("name,lines", REFUSED, ids=[name for name, _ in REFUSED])
def test_doctor_and_the_launcher_give_the_same_verdict(name, lines, pyshim, tmp_path, env):
    """doctor runs the launcher's own per-item checks: for each config the
    launcher refuses, doctor fails exactly one static check, whose reason
    is the launcher's message and whose context is the launcher's, and it
    skips the round trip naming the same reason."""
    launcher = make_venv(tmp_path / "v", pyshim, env)
    (tmp_path / "plain-file").write_text("not a program")
    (tmp_path / "a b").mkdir()
    (tmp_path / "a b" / "lib.so").write_bytes(JEMALLOC.read_bytes())
    text = lines.format(tmp=tmp_path, launcher_binary=launcher_of(pyshim))
    if not text.startswith("interpreter"):
        text = f"interpreter = {toml_str(PYTHON)}\n" + text
    (tmp_path / "v" / "pyshim.toml").write_text(text)

    ran = run([launcher, "-c", "pass"], env)
    assert ran.returncode in (125, 126, 127), ran
    first, *rest = ran.stderr.splitlines()
    assert first.startswith("pyshim: error: ")
    message = first[len("pyshim: error: "):]
    context = [line.strip() for line in rest if not line.strip().startswith("hint:")]

    code, out_lines, out = doctor(pyshim, launcher, env)
    assert code == 1, out
    bad = failed(out_lines)
    assert len(bad) == 1, out
    what, _, reason = bad[0][2:].partition(": ")
    assert reason == message, out
    i = out_lines.index(bad[0])
    assert [line.strip() for line in out_lines[i + 1:i + 1 + len(context)]] == context, out
    assert check_lines(out_lines)[-1] == (
        f"- live round trip: skipped (the launcher would refuse to start: {message})")


def test_doctor_standalone_pypy_is_unsupported(pyshim, tmp_path, env):
    if not PYPY.exists():
        pytest.skip(f"{PYPY} not installed (Debian package pypy3)")
    standalone = tmp_path / "tools" / "pypy3"
    standalone.parent.mkdir()
    standalone.symlink_to(launcher_of(pyshim))
    (standalone.parent / "pyshim.toml").write_text(config_text(PYPY))
    code, lines, out = doctor(pyshim, standalone, env)
    assert code == 1, out
    assert failed(lines)[0] == (
        "✗ PyPy launcher is inside a venv: standalone PyPy is unsupported (PyPy finds its lib/ "
        "from argv[0]); use it as a venv's bin/python")


# --------------------------------------------------------------------------
# Installed (stamped) venvs: the launcher image, the stamp, the base launcher


@pytest.fixture
def installed(pyshim, tmp_path, env):
    venv = tmp_path / "iv"
    subprocess.run([str(PYTHON), "-m", "venv", "--without-pip", str(venv)], env=env, check=True)
    res = run([pyshim, "install", venv, "--preload", JEMALLOC], env)
    assert res.returncode == 0, res.stderr
    return venv


def test_doctor_on_an_installed_venv_checks_stamp_and_base_launcher(pyshim, installed, env):
    code, lines, out = doctor(pyshim, installed / "bin" / "python", env)
    assert code == 0, out
    config = installed / "pyshim.toml"
    assert any(line.startswith(f"✓ stamp current with {config}: interpreter {PYTHON}, 1 preload")
               for line in lines), out
    assert f"✓ config found and valid: {config} (the stamp: not parsed at launch)" in lines
    base = installed / ".pyshim" / "base" / "bin" / "python3.11"
    assert f"✓ base launcher (sys._base_executable) present and stamped: {base}" in lines


def test_doctor_reports_a_stale_stamp_with_the_fix(pyshim, installed, env):
    config = installed / "pyshim.toml"
    config.write_text(config.read_text() + "\n# edited by hand\n")
    code, lines, out = doctor(pyshim, installed / "bin" / "python", env)
    assert code == 1, out
    assert failed(lines)[0].startswith(
        f"✗ stamp current: {config} changed since the launcher was stamped: it is parsed at "
        "every launch"), out
    assert f"  fix: re-stamp it: pyshim install {installed}" in lines
    # show says the file is parsed now; a re-install makes the stamp current.
    shown = show_json(pyshim, installed / "bin" / "python", env)
    assert shown["config_source"] == "file"
    assert run([pyshim, "install", installed], env).returncode == 0
    assert show_json(pyshim, installed / "bin" / "python", env)["config_source"] == "stamp"
    assert doctor(pyshim, installed / "bin" / "python", env)[0] == 0


def test_doctor_reports_a_missing_base_launcher(pyshim, tmp_path, env):
    """Up to 3.10 bin/python3.X is a launcher of its own, and the base
    launcher a second one that can go missing alone."""
    it = next(i for i in all_interpreters() if i.id == "cpython3.10")
    if it.path is None:
        pytest.skip(it.missing_reason)
    python = it.path
    venv = tmp_path / "iv310"
    subprocess.run([str(python), "-m", "venv", "--without-pip", str(venv)], env=env, check=True)
    assert run([pyshim, "install", venv], env).returncode == 0
    base = venv / ".pyshim" / "base" / "bin" / "python3.10"
    base.unlink()
    base.symlink_to(venv / "bin" / "python3.10")  # a link is not enough (3.11+ realpath)
    code, lines, out = doctor(pyshim, venv / "bin" / "python", env)
    assert code == 1, out
    assert failed(lines) == [
        f"✗ base launcher (sys._base_executable) present and stamped: {base} is missing or not "
        "a file of its own: venvs derived from this one would lose the native setup"]
    assert f"  fix: run `pyshim install {venv}`" in lines


def test_doctor_on_a_311_venv_whose_base_launcher_is_gone(pyshim, installed, env):
    """From 3.11 bin/python3.X links to the base launcher: without it the
    venv has no launcher at all, and doctor says how to put it back (0.3's
    layout had a launcher copy in bin/ and no such link)."""
    assert os.readlink(installed / "bin" / "python3.11") == "../.pyshim/base/bin/python3.11"
    shutil.rmtree(installed / ".pyshim" / "base")
    res = run([pyshim, "doctor", installed / "bin" / "python"], env)
    assert res.returncode == 2, res
    assert res.stderr == (
        f"pyshim: error: launcher not found: {installed}/bin/python (a link to a missing file)\n"
        f"  hint: its shim venv lost a launcher: run `pyshim install {installed}`\n")
    assert run([pyshim, "install", installed], env).returncode == 0
    assert doctor(pyshim, installed / "bin" / "python", env)[0] == 0


def test_doctor_reports_a_launcher_of_another_version(pyshim, installed, env):
    # bin/python3.11 links to the base launcher (3.11+): the file doctor reads
    launcher = installed / ".pyshim" / "base" / "bin" / "python3.11"
    image = bytearray(launcher.read_bytes())
    # The stamp area is the page-aligned section that starts with the magic
    # (the magic also appears as a constant elsewhere in the image).
    at = next(i for i in range(0, len(image), 4096) if image[i:i + 8] == b"PYSHIMST")
    image[at + 16:at + 32] = b"0.1.9".ljust(16, b"\0")  # the header's version field
    launcher.write_bytes(bytes(image))
    code, lines, out = doctor(pyshim, installed / "bin" / "python", env)
    assert code == 1, out
    assert failed(lines)[0].startswith(
        f"✗ launcher version matches the tool: {launcher} is pyshim-launcher 0.1.9, this tool is ")
    assert f"  fix: refresh it: pyshim install {installed}" in lines
    assert run([pyshim, "install", installed], env).returncode == 0
    assert doctor(pyshim, installed / "bin" / "python", env)[0] == 0


def test_doctor_on_a_plain_venv_says_it_is_not_a_pyshim_launcher(pyshim, tmp_path, env):
    venv = tmp_path / "plain"
    subprocess.run([str(PYTHON), "-m", "venv", "--without-pip", str(venv)], env=env, check=True)
    code, lines, out = doctor(pyshim, venv / "bin" / "python", env)
    assert code == 1, out
    assert lines[0] == f"✗ launcher is a pyshim launcher: {PYTHON} is not a pyshim launcher", out
    assert lines[1] == f"  fix: make it one with `pyshim install {venv}`"


# --------------------------------------------------------------------------
# outside venvs: no venv wording, and a file that is not a launcher


def test_show_on_a_file_that_is_not_a_launcher_says_so(pyshim, env):
    res = run([pyshim, "show", PYTHON], env)
    assert res.returncode == 2, res
    assert f"pyshim: error: {PYTHON} is not a pyshim launcher" in res.stderr
    assert "pyshim install" not in res.stderr and res.stdout == ""


def test_doctor_on_a_standalone_non_launcher_does_not_suggest_install(pyshim, tmp_path, env):
    plain = tmp_path / "bin" / "python"
    plain.parent.mkdir()
    plain.symlink_to(PYTHON)
    code, lines, out = doctor(pyshim, plain, env)
    assert code == 1, out
    assert lines[0] == f"✗ launcher is a pyshim launcher: {PYTHON} is not a pyshim launcher", out
    assert "pyshim install" not in out and "pyvenv.cfg" not in out


def test_doctor_fixes_on_a_standalone_launcher_name_no_venv(pyshim, tmp_path, env):
    launcher = tmp_path / "build" / "python"
    config = tmp_path / "build" / "pyshim.toml"
    res = run([pyshim, "launcher", launcher, "--python", PYTHON, "--config", config], env)
    assert res.returncode == 0, res.stderr
    config.write_text(f'interpreter = "{tmp_path}/nope/python3"\n')
    code, lines, out = doctor(pyshim, launcher, env)
    assert code == 1, out
    assert f"✗ interpreter exists: interpreter not found: {tmp_path}/nope/python3" in out
    assert "  fix: point 'interpreter' at the real Python binary" in lines, out
    assert "pyvenv.cfg" not in out and "pyshim install" not in out


def test_show_and_doctor_do_not_wait_on_a_fifo(pyshim, tmp_path, env):
    fifo = tmp_path / "python"
    os.mkfifo(fifo)
    res = run([pyshim, "show", fifo], env, timeout=20)
    assert res.returncode == 2 and f"{fifo} is not a pyshim launcher" in res.stderr
    code, lines, out = doctor(pyshim, fifo, env)
    assert code == 1 and f"{fifo} is not a pyshim launcher" in lines[0], out
