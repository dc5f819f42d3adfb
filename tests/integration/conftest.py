"""Fixtures for the end-to-end tests: the installed pyshim, real interpreters,
shim venvs and standalone launchers, a test shared library, and helpers to
run things with an explicit, minimal environment.

Required: PYSHIM_PREFIX=<install prefix> (holding bin/pyshim,
lib/pyshim/pyshim-launcher and lib/pyshim/libpyshim-restore.so), e.g. the
`stage` folder of a build.
"""

import glob
import json
import os
import re
import shutil
import stat
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from elf_and_maps import elf_section_header

HERE = Path(__file__).resolve().parent
PROBE = HERE / "probe.py"

PYENV_VERSIONS = Path("/root/.pyenv/versions")
CPYTHON_MINORS = range(8, 14)  # 3.8 .. 3.13

# Prints what CPython/PyPy computed from argv[0]: run with -c.
INFO = (
    "import json, os, sys; print(json.dumps({'executable': sys.executable, "
    "'prefix': sys.prefix, 'base_prefix': sys.base_prefix, 'path': sys.path, "
    "'pid': os.getpid(), 'argv': sys.argv}))"
)


# --------------------------------------------------------------------------
# The installed pyshim


def pytest_configure(config):
    prefix = os.environ.get("PYSHIM_PREFIX")
    if not prefix:
        raise pytest.UsageError(
            "PYSHIM_PREFIX is not set: point it at a pyshim install prefix "
            "(e.g. PYSHIM_BUILD_DIR=/tmp/b scripts/dev.sh build; PYSHIM_PREFIX=/tmp/b/stage)"
        )
    for rel in ("bin/pyshim", "lib/pyshim/pyshim-launcher", "lib/pyshim/libpyshim-restore.so"):
        if not (Path(prefix) / rel).is_file():
            raise pytest.UsageError(f"PYSHIM_PREFIX={prefix}: {rel} is missing")


@dataclass(frozen=True)
class Stage:
    prefix: Path
    shim: Path  # the launcher (unstamped): PREFIX/lib/pyshim/pyshim-launcher
    restore: Path
    cli: Path  # the management CLI: PREFIX/bin/pyshim


@pytest.fixture(scope="session")
def stage() -> Stage:
    prefix = Path(os.environ["PYSHIM_PREFIX"]).resolve()
    return Stage(
        prefix,
        prefix / "lib/pyshim/pyshim-launcher",
        prefix / "lib/pyshim/libpyshim-restore.so",
        prefix / "bin" / "pyshim",
    )


# --------------------------------------------------------------------------
# Interpreters


@dataclass(frozen=True)
class Interp:
    id: str
    path: Optional[Path]  # None: missing on this machine
    kind: str  # "cpython" or "pypy"
    version: tuple  # (3, minor) of the language
    missing_reason: str = ""

    @property
    def venv_only(self) -> bool:
        # PyPy finds its stdlib relative to argv[0]: standalone is unsupported
        # by design (the README).
        return self.kind == "pypy"


def _pyenv_cpython(minor: int) -> Interp:
    """The newest 3.<minor>.<patch> under /root/.pyenv/versions (no -dev, t, ...)."""
    ident = f"cpython3.{minor}"
    found = []
    for d in PYENV_VERSIONS.glob(f"3.{minor}.*"):
        m = re.fullmatch(rf"3\.{minor}\.(\d+)", d.name)
        exe = d / "bin" / f"python3.{minor}"
        if m and os.access(exe, os.X_OK):
            found.append((int(m.group(1)), exe))
    if not found:
        return Interp(
            ident, None, "cpython", (3, minor), f"no CPython 3.{minor} under {PYENV_VERSIONS}"
        )
    return Interp(ident, max(found)[1], "cpython", (3, minor))


def _system(ident: str, path: str, kind: str, version: tuple, package: str) -> Interp:
    p = Path(path)
    if not (p.exists() and os.access(p, os.X_OK)):
        return Interp(ident, None, kind, version, f"{path} not installed (Debian package {package})")
    return Interp(ident, p, kind, version)


def all_interpreters() -> List[Interp]:
    return [_pyenv_cpython(m) for m in CPYTHON_MINORS] + [
        _system("debian3.11", "/usr/bin/python3.11", "cpython", (3, 11), "python3.11"),
        _system("debian3.11-dbg", "/usr/bin/python3.11-dbg", "cpython", (3, 11), "python3.11-dbg"),
        _system("pypy3", "/usr/bin/pypy3", "pypy", (3, 9), "pypy3"),
    ]


def interp_params(include_pypy=True):
    """pytest params over the interpreter matrix; a missing one is a skip
    with its reason, never silently dropped."""
    out = []
    for it in all_interpreters():
        if it.kind == "pypy" and not include_pypy:
            continue
        marks = [pytest.mark.skip(reason=it.missing_reason)] if it.path is None else []
        out.append(pytest.param(it, id=it.id, marks=marks))
    return out


def default_interp() -> Interp:
    """The interpreter for the single-interpreter tests: Debian's 3.11."""
    for it in all_interpreters():
        if it.id == "debian3.11" and it.path is not None:
            return it
    for it in all_interpreters():
        if it.kind == "cpython" and it.path is not None:
            return it
    pytest.skip("no CPython 3.8-3.13 on this machine")


@pytest.fixture(scope="session")
def py() -> Interp:
    return default_interp()


def second_interp() -> Optional[Interp]:
    """A CPython older than 3.11 (different getpath and multiprocessing)."""
    for it in all_interpreters():
        if it.id in ("cpython3.8", "cpython3.9", "cpython3.10") and it.path is not None:
            return it
    return None


# --------------------------------------------------------------------------
# Tools the tests run


@pytest.fixture(scope="session")
def strace() -> str:
    """The strace on PATH; skips, naming the package, where there is none."""
    path = shutil.which("strace")
    if path is None:
        pytest.skip("strace not installed (Debian package strace)")
    return path


# --------------------------------------------------------------------------
# Native libraries


@pytest.fixture(scope="session")
def jemalloc() -> Path:
    for pattern in (
        "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
        "/usr/lib/*/libjemalloc.so.2",
        "/usr/lib64/libjemalloc.so.2",
        "/usr/lib/libjemalloc.so.2",
    ):
        for hit in sorted(glob.glob(pattern)):
            return Path(hit)
    pytest.skip("libjemalloc.so.2 not installed (Debian package libjemalloc2)")


# The Debian files the single-interpreter tests name by path (rather than
# through the `py` and `jemalloc` fixtures).
DEBIAN_PYTHON = Path("/usr/bin/python3.11")
DEBIAN_JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")


@pytest.fixture
def needs_debian_python_and_jemalloc():
    """Skips, saying which package is missing, unless DEBIAN_PYTHON and
    DEBIAN_JEMALLOC are installed (use as pytest.mark.usefixtures)."""
    if not DEBIAN_PYTHON.exists():
        pytest.skip(f"{DEBIAN_PYTHON} not installed (Debian package python3.11)")
    if not DEBIAN_JEMALLOC.exists():
        pytest.skip(f"{DEBIAN_JEMALLOC} not installed (Debian package libjemalloc2)")


@dataclass(frozen=True)
class NativeLibs:
    libdir: Path  # libpyshimtest.so, pyshimtest_answer() == 42
    altdir: Path  # another libpyshimtest.so, pyshimtest_answer() == 7
    caller: Path  # libpyshimcaller.so: a harmless library for the caller's LD_PRELOAD


def _compile_so(dest: Path, source: str):
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = dest.with_suffix(".c")
    src.write_text(source)
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O1", f"-Wl,-soname,{dest.name}", "-o", str(dest), str(src)],
        check=True,
    )
    src.unlink()


@pytest.fixture(scope="session")
def testlibs(tmp_path_factory) -> NativeLibs:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found: cannot build the test shared library")
    root = tmp_path_factory.mktemp("testlibs")
    libs = NativeLibs(root / "lib", root / "alt", root / "caller" / "libpyshimcaller.so")
    _compile_so(libs.libdir / "libpyshimtest.so", "int pyshimtest_answer(void) { return 42; }\n")
    _compile_so(libs.altdir / "libpyshimtest.so", "int pyshimtest_answer(void) { return 7; }\n")
    _compile_so(libs.caller, "int pyshimcaller_marker(void) { return 1; }\n")
    return libs


@pytest.fixture(scope="session")
def static_hop(tmp_path_factory) -> Path:
    """`hop OUT [PROG ARGS...]`: a statically linked program that writes its
    environment (entries NUL-terminated, in order) to OUT, then execs PROG
    ARGS with that environment untouched. No dynamic loader runs in it, so
    neither do LD_PRELOAD nor the restore library: it is a hop whose restore
    did not run, and it shows the exact environment a launcher computed."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found: cannot build the static hop program")
    root = tmp_path_factory.mktemp("hop")
    src = root / "hop.c"
    src.write_text(
        "#include <fcntl.h>\n#include <stdio.h>\n#include <string.h>\n#include <unistd.h>\n"
        "extern char **environ;\n"
        "int main(int argc, char **argv) {\n"
        "  if (argc < 2) return 2;\n"
        "  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);\n"
        "  if (fd < 0) { perror(\"hop: open\"); return 2; }\n"
        "  for (char **e = environ; *e; ++e) {\n"
        "    if (write(fd, *e, strlen(*e) + 1) < 0) return 2;\n"
        "  }\n"
        "  close(fd);\n"
        "  if (argc > 2) { execve(argv[2], argv + 2, environ); perror(\"hop: execve\"); return 127; }\n"
        "  return 0;\n}\n"
    )
    out = root / "hop"
    res = subprocess.run(["gcc", "-static", "-O1", "-o", str(out), str(src)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"static linking unavailable (libc.a missing?): {res.stderr.decode()[-300:]}")
    return out


def read_env_dump(path: Path) -> List[bytes]:
    data = Path(path).read_bytes()
    assert data.endswith(b"\0") or data == b""
    return data.split(b"\0")[:-1]


# --------------------------------------------------------------------------
# Config, venvs and launchers


def toml_str(s: str) -> str:
    # A JSON string literal of printable text is a valid TOML basic string.
    return json.dumps(str(s))


def config_text(
    interpreter,
    preload=(),
    library_path=(),
    position: Optional[str] = None,
    env: Optional[Dict[str, str]] = None,
) -> str:
    lines = [f"interpreter = {toml_str(interpreter)}"]
    if preload:
        lines.append("preload = [" + ", ".join(toml_str(p) for p in preload) + "]")
    if library_path:
        lines.append("library_path = [" + ", ".join(toml_str(p) for p in library_path) + "]")
    if position is not None:
        lines.append(f"library_path_position = {toml_str(position)}")
    if env:
        lines.append("[env]")
        lines.extend(f"{k} = {toml_str(v)}" for k, v in env.items())
    return "\n".join(lines) + "\n"


def write_config(directory: Path, interpreter, **kw) -> Path:
    path = Path(directory) / "pyshim.toml"
    path.write_text(config_text(interpreter, **kw))
    return path


def place_launcher(stage: Stage, dest: Path, mode: str = "symlink"):
    """Put the (unstamped) launcher at dest: a symlink to the installed
    binary, or a byte-for-byte copy (with the restore library copied to
    <dest>/../../lib/pyshim/ where a self-contained venv has it, or beside
    the copy for mode="copy-beside", or nowhere for mode="copy-bare")."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_symlink() or dest.exists():
        dest.unlink()
    if mode == "symlink":
        dest.symlink_to(stage.shim)
    elif mode in ("copy", "copy-beside", "copy-bare"):
        shutil.copy2(stage.shim, dest)
        if mode == "copy":
            libdir = dest.parent.parent / "lib" / "pyshim"
            libdir.mkdir(parents=True, exist_ok=True)
            shutil.copy2(stage.restore, libdir / stage.restore.name)
        elif mode == "copy-beside":
            shutil.copy2(stage.restore, dest.parent / stage.restore.name)
    else:
        raise ValueError(mode)


def _is_interpreter_name(name: str) -> bool:
    return re.fullmatch(r"(python|pypy)(3(\.\d+)?)?", name) is not None


@dataclass
class Venv:
    root: Path
    interp: Interp
    plain: dict  # INFO of the plain venv's bin/python before the shim went in

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def config(self) -> Path:
        return self.root / "pyshim.toml"


def make_venv(
    stage: Stage, interp: Interp, root: Path, base_env: Dict[str, str], mode="symlink", **config
) -> Venv:
    """`PY -m venv --without-pip ROOT`, record what its plain bin/python
    reports, then replace every bin/python*, bin/pypy* by the shim and write
    ROOT/pyshim.toml pointing at the real interpreter. A hand-made shim venv:
    no .pyshim/ manifest and no site-packages .pth (see install_venv)."""
    plain = plain_venv(interp, root, base_env)
    names = [p.name for p in (root / "bin").iterdir() if _is_interpreter_name(p.name)]
    assert "python" in names, names
    for name in names:
        place_launcher(stage, root / "bin" / name, mode)
    write_config(root, interp.path, **config)
    return Venv(root, interp, plain)


def plain_venv(interp: Interp, root: Path, base_env: Dict[str, str], *venv_args) -> dict:
    """`PY -m venv --without-pip [venv_args] ROOT`; returns what its plain
    bin/python reports (INFO)."""
    res = subprocess.run(
        [str(interp.path), "-m", "venv", "--without-pip", *venv_args, str(root)],
        env=base_env,
        cwd="/",
        capture_output=True,
    )
    assert res.returncode == 0, f"venv creation failed: {res.stderr.decode()}"
    return run_json([str(root / "bin" / "python"), "-c", INFO], env=base_env)


def pyshim_tool(stage: Stage, *args, env: Dict[str, str], **kw) -> subprocess.CompletedProcess:
    """The installed pyshim CLI."""
    return run([stage.cli, *args], env, **kw)


def install_venv(stage: Stage, interp: Interp, root: Path, base_env: Dict[str, str],
                 *install_args, venv_args=()) -> Venv:
    """A venv made as a user would: `PY -m venv --without-pip ROOT`, then
    `pyshim install ROOT [install_args]` (which, unlike make_venv, also writes
    the site-packages .pth files an installed shim venv has)."""
    plain = plain_venv(interp, root, base_env, *venv_args)
    res = pyshim_tool(stage, "install", root, *install_args, env=base_env)
    assert res.returncode == 0, (
        f"pyshim install exited {res.returncode}\nstdout: {res.stdout.decode()}\n"
        f"stderr: {res.stderr.decode()}"
    )
    return Venv(root, interp, plain)


@pytest.fixture
def init_venv(stage: Stage, py: Interp, jemalloc: Path, tmp_path: Path,
              base_env: Dict[str, str]) -> Path:
    """TMP/venv made as a user makes one: `pyshim init VENV --python PY
    --preload JEMALLOC` (a stamped, self-contained shim venv)."""
    root = tmp_path / "venv"
    res = pyshim_tool(stage, "init", root, "--python", py.path, "--preload", jemalloc,
                      env=base_env)
    assert res.returncode == 0, res.stderr.decode()
    return root


# Run as a script or with -c through a launcher of an init_venv: prints, a
# line each, sys.executable; whether jemalloc and the restore library are
# mapped; the PYSHIM* variables left in os.environ; LD_PRELOAD; sys.argv[1:].
LAUNCH_REPORT = ("import os, sys\n"
                 "maps = open('/proc/self/maps').read()\n"
                 "print(sys.executable)\n"
                 "print('jemalloc' in maps, 'pyshim-restore' in maps)\n"
                 "print(sorted(k for k in os.environ if k.startswith('PYSHIM')))\n"
                 "print(os.environ.get('LD_PRELOAD', '<unset>'))\n"
                 "print(sys.argv[1:])\n")


# --------------------------------------------------------------------------
# Launcher images and the stamp (the README)

STAMP_SECTION = ".pyshim.stamp"
STAMP_CAPACITY = 16384
BASE_EXECUTABLE_PTH = "pyshim-base-executable.pth"


def elf_section(path, name: str):
    """(file offset, size) of the named section of an ELF64 little-endian
    file, or None when it has none."""
    found = elf_section_header(Path(path).read_bytes(), name, what=path)
    return None if found is None else found[1:]


def _fnv1a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


class _StampReader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def pod(self, fmt: str):
        (value,) = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def str(self) -> str:
        n = self.pod("I")
        value = self.data[self.pos:self.pos + n]
        assert self.data[self.pos + n] == 0, "a stamp string is NUL-terminated"
        self.pos += n + 1
        return value.decode()

    def setting(self) -> str:
        value = self.str()
        self.pod("I"), self.pod("I")  # line, column in the source file
        return value

    def settings(self) -> List[str]:
        return [self.setting() for _ in range(self.pod("I"))]


def read_stamp(path) -> Optional[dict]:
    """The stamp a launcher image carries (see src/core/include/pyshim/stamp.hpp for
    the format), decoded independently of pyshim's own code; None when the
    image is unstamped."""
    where = elf_section(path, STAMP_SECTION)
    assert where is not None, f"{path} has no {STAMP_SECTION} section"
    offset, size = where
    assert size == STAMP_CAPACITY, (path, size)
    with open(path, "rb") as f:
        f.seek(offset)
        area = f.read(size)
    magic, fmt, length, version, checksum = struct.unpack_from("<8sII16sQ", area, 0)
    assert magic == b"PYSHIMST" and fmt == 2, (path, magic, fmt)
    if length == 0:
        return None
    payload = area[40:40 + length]
    assert _fnv1a(payload) == checksum, f"{path}: stamp checksum mismatch"
    r = _StampReader(payload)
    out = {"version": version.rstrip(b"\0").decode()}
    out["identity"] = {k: r.pod(f) for k, f in (("dev", "Q"), ("ino", "Q"), ("size", "Q"),
                                                 ("mtime_ns", "q"), ("ctime_ns", "q"))}
    out["source"] = r.str()
    out["restore_library"] = r.str()
    out["interpreter"] = r.setting()
    out["library_path_position"] = ("prepend", "append")[r.pod("I")]
    r.pod("I"), r.pod("I")
    for key in ("preload", "library_path", "startup", "python_path"):
        out[key] = r.settings()
    env = {}
    for _ in range(r.pod("I")):
        name = r.str()
        value = r.str()
        mode = r.pod("I")  # 0 set, 1 prepend, 2 append: as tomllib reads the config
        env[name] = value if mode == 0 else {("prepend", "append")[mode - 1]: value}
        r.pod("I"), r.pod("I")
    out["env"] = env
    assert r.pos == len(payload), f"{path}: trailing bytes in the stamp"
    return out


def file_identity(path) -> dict:
    st = os.stat(path)
    return {"dev": st.st_dev, "ino": st.st_ino, "size": st.st_size,
            "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


def assert_stamped_launcher(stage: Stage, path, *, source, restore_library) -> dict:
    """path is a file of its own (not a link), executable, the launcher
    image byte for byte except its stamp area (so the same size), and its
    stamp names `source` (unchanged since it was stamped) and
    `restore_library`, with the config `source` holds, resolved."""
    path = Path(path)
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode), f"{path} is not a regular file"
    assert os.access(path, os.X_OK), f"{path} is not executable"
    image, launcher = path.read_bytes(), stage.shim.read_bytes()
    assert len(image) == len(launcher), f"{path}: {len(image)} bytes, the launcher {len(launcher)}"
    offset, size = elf_section(stage.shim, STAMP_SECTION)
    assert elf_section(path, STAMP_SECTION) == (offset, size), path
    assert image[:offset] == launcher[:offset], f"{path}: differs from the launcher before the stamp"
    assert image[offset + size:] == launcher[offset + size:], (
        f"{path}: differs from the launcher after the stamp")
    stamp = read_stamp(path)
    assert stamp is not None, f"{path} carries no stamp"
    assert read_stamp(stage.shim) is None, "the installed launcher itself is unstamped"
    assert stamp["source"] == str(source), stamp
    assert stamp["restore_library"] == str(restore_library), stamp
    assert stamp["identity"] == file_identity(source), "the stamp is not of the file as it is"
    return stamp


def venv_interpreter_names(root: Path) -> List[str]:
    return sorted(p.name for p in (Path(root) / "bin").iterdir() if _is_interpreter_name(p.name))


def main_launcher_name(interp: "Interp") -> str:
    """The file the other interpreter names of an installed venv link to:
    python3.X, from pyvenv.cfg's version (every venv of the matrix has it)."""
    return f"python{interp.version[0]}.{interp.version[1]}"


def _assert_links_to_main(bindir: Path, names, main: str):
    for name in names:
        if name != main:
            path = bindir / name
            assert path.is_symlink() and os.readlink(path) == main, (
                f"{path} -> {os.readlink(path) if path.is_symlink() else 'not a link'}, not {main}")


def pyvenv_version(root: Path):
    """(major, minor) from pyvenv.cfg's version (venv) or version_info
    (virtualenv), as install reads it."""
    cfg = {}
    for line in (Path(root) / "pyvenv.cfg").read_text().splitlines():
        key, eq, value = line.partition("=")
        if eq:
            cfg[key.strip()] = value.strip()
    major, minor = (cfg.get("version") or cfg.get("version_info")).split(".")[:2]
    return int(major), int(minor)


def links_to_base_launcher(root: Path) -> bool:
    """A self-contained CPython 3.11+ venv: bin/<main> is a link to the base
    launcher and there is no pyshim-base-executable.pth (the README: getpath
    sets sys._base_executable to realpath(sys.executable))."""
    return pyvenv_version(root) >= (3, 11)


def launchers_summary(stage: Stage, root: Path, main: str, *, base: bool = True) -> str:
    """The end of install's `launchers:` line in the self-contained layout."""
    where = (f".pyshim/base/bin/{main}" if base and links_to_base_launcher(root)
             else f"bin/{main}")
    return f" -> {where} (a stamped copy of {stage.shim})"


def assert_base_launcher(stage: Stage, root: Path, main: str, restore_library, *,
                         pth: bool = True) -> dict:
    """VENV/.pyshim/base/bin/<main>: a stamped launcher of its own (not a
    link), what sys._base_executable names (via the venv's .pth when pth,
    else through bin/<main>'s link); the other interpreter names beside it
    link to it."""
    root = Path(root)
    base = root / ".pyshim" / "base" / "bin"
    stamp = assert_stamped_launcher(stage, base / main, source=root / "pyshim.toml",
                                    restore_library=restore_library)
    names = sorted(p.name for p in base.iterdir())
    assert main in names, names
    _assert_links_to_main(base, names, main)
    files = [p / BASE_EXECUTABLE_PTH for p in root.glob("lib/*/site-packages")]
    if pth:
        assert len(files) == 1 and files[0].read_text() == (
            f"import sys;sys._base_executable=sys.prefix+'/.pyshim/base/bin/{main}'\n"), files
    else:
        assert len(files) == 1 and not files[0].exists(), files
    return stamp


def assert_no_base_launcher(root: Path):
    """A PyPy venv: no base launcher and no .pth that would name one."""
    root = Path(root)
    assert not (root / ".pyshim" / "base").exists()
    assert not list(root.glob(f"lib/*/site-packages/{BASE_EXECUTABLE_PTH}"))


def assert_self_contained_venv(stage: Stage, root: Path, main: str, *, base: bool = True) -> dict:
    """The default layout of `pyshim install`: bin/<main> is a stamped copy
    of the launcher (CPython 3.11+: a relative link to the base launcher),
    every other interpreter name is a relative link to it, the restore
    library is copied to VENV/lib/pyshim/ (and stamped as the one to use) and
    beside the base launcher (.pyshim/base/lib/pyshim/); plus the base
    launcher (base=False: a PyPy venv, none)."""
    root = Path(root)
    bindir = root / "bin"
    restore = root / "lib" / "pyshim" / stage.restore.name
    assert not restore.is_symlink() and restore.read_bytes() == stage.restore.read_bytes()
    assert sorted(p.name for p in restore.parent.iterdir()) == [stage.restore.name]
    linked = base and links_to_base_launcher(root)
    if linked:
        assert os.readlink(bindir / main) == f"../.pyshim/base/bin/{main}"
    else:
        stamp = assert_stamped_launcher(stage, bindir / main, source=root / "pyshim.toml",
                                        restore_library=restore)
    names = venv_interpreter_names(root)
    assert main in names and "python" in names, names
    _assert_links_to_main(bindir, names, main)
    if base:
        base_stamp = assert_base_launcher(stage, root, main, restore, pth=not linked)
        if linked:
            stamp = base_stamp
        else:
            assert base_stamp == stamp
            assert (root / ".pyshim/base/bin" / main).read_bytes() == (bindir / main).read_bytes()
        # the base launcher's ../lib is the venv's lib/ (its first restore
        # library candidate: no extra stat on the hot path)
        assert os.readlink(root / ".pyshim/base/lib") == "../../lib"
    else:
        assert_no_base_launcher(root)
    return stamp


def assert_shared_venv(stage: Stage, root: Path, main: str) -> dict:
    """`pyshim install --symlink`: every interpreter name is a link to the
    shared PREFIX/lib/pyshim/pyshim-launcher, no VENV/lib/pyshim; the base
    launcher is still a stamped copy (stamped with the prefix's restore
    library)."""
    root = Path(root)
    names = venv_interpreter_names(root)
    assert main in names and "python" in names, names
    for name in names:
        path = root / "bin" / name
        assert path.is_symlink() and os.readlink(path) == str(stage.shim), (
            f"{path} -> {os.readlink(path) if path.is_symlink() else 'not a link'}")
    assert not (root / "lib" / "pyshim").exists()
    assert not (root / ".pyshim/base/lib").exists()
    return assert_base_launcher(stage, root, main, stage.restore)


# --------------------------------------------------------------------------
# Running things


@pytest.fixture
def base_env(tmp_path) -> Dict[str, str]:
    """A minimal, explicit environment: nothing leaks in from pytest's.
    LC_ALL keeps CPython from coercing the locale (which would add LC_CTYPE
    to its own environment)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
    }


def run(argv, env, timeout=120, **kw) -> subprocess.CompletedProcess:
    assert env is not None, "always pass an explicit environment"
    if kw.get("cwd") is None:
        kw["cwd"] = "/"  # never pytest's cwd (it is on sys.path for -c)
    kw.setdefault("capture_output", True)
    return subprocess.run([os.fspath(a) if not isinstance(a, bytes) else a for a in argv],
                          env=env, timeout=timeout, **kw)


def run_json(argv, env, **kw):
    res = run(argv, env, **kw)
    assert res.returncode == 0, (
        f"{argv} exited {res.returncode}\nstdout: {res.stdout.decode(errors='replace')}\n"
        f"stderr: {res.stderr.decode(errors='replace')}"
    )
    return json.loads(res.stdout)


def probe(launcher, env, flags=(), parts=(), cwd=None, **kw):
    return run_json([launcher, *flags, PROBE, *parts], env, cwd=cwd, **kw)


# --------------------------------------------------------------------------
# Assertions shared by the probe-based tests

PYTHON_REPORTS = ("parent", "spawn", "forkserver", "pool")
SH_REPORTS = ("sh", "spawn_sh")
ALL_PARTS = ("spawn", "forkserver", "pool", "sh", "spawn_sh")

_POOL_CHECK = """
import concurrent.futures, multiprocessing, os
def f():
    return os.getpid()
if __name__ == "__main__":
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as ex:
        assert ex.submit(f).result() != os.getpid()
"""
_pool_errors: Dict[str, Optional[str]] = {}


def plain_pool_spawn_error(interp: Interp, tmp_path: Path) -> Optional[str]:
    """Why ProcessPoolExecutor(mp_context=spawn) fails in the *plain*
    interpreter (no shim involved), or None when it works."""
    key = str(interp.path)
    if key not in _pool_errors:
        script = tmp_path / "pool_check.py"
        script.write_text(_POOL_CHECK)
        res = run([interp.path, script], env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})
        err = res.stderr.decode(errors="replace").strip().splitlines()
        _pool_errors[key] = None if res.returncode == 0 else (err[-1] if err else "failed")
    return _pool_errors[key]


def probe_parts(interp: Interp, tmp_path: Path):
    """Every probe part this interpreter can run at all (without the shim)."""
    if plain_pool_spawn_error(interp, tmp_path) is not None:
        return tuple(p for p in ALL_PARTS if p != "pool")
    return ALL_PARTS


def assert_probe(
    result: dict,
    *,
    launcher: Path,
    jemalloc: Path,
    restore: Path,
    caller_env: Dict[str, str],
    config_env: Dict[str, str],
    expect_cdll=42,
    flags: Optional[dict] = None,
    parts=ALL_PARTS,
):
    """What every process started through a shim must see, on one probe
    result: the configured preload and the restore library mapped and the
    test library found by bare name in each Python process, sys.executable
    the launcher, nothing of either in a /bin/sh child.

    caller_env is the exact environment given to the launcher; every Python
    process must see it plus the config's [env], and every /bin/sh child must
    be given exactly what its Python parent had."""
    assert sorted(result) == sorted(("parent", *parts))
    caller_libs = set(re.split(r"[:\s]+", caller_env.get("LD_PRELOAD", ""))) - {""}
    expected_env = dict(caller_env)
    expected_env.update(config_env)

    def assert_callers_environment(r, where):
        # What the restore library must hand every Python process and every
        # /bin/sh child: the caller's loader variables exactly, [env], and no
        # bookkeeping variable.
        assert r["ld_preload"] == caller_env.get("LD_PRELOAD"), where
        assert r["ld_library_path"] == caller_env.get("LD_LIBRARY_PATH"), where
        assert r["pyshim_vars"] == {
            k: v for k, v in caller_env.items() if k.startswith("PYSHIM_")
        }, where
        assert r["environ"] == expected_env, where

    for name in (n for n in PYTHON_REPORTS if n in result):
        r = result[name]
        where = f"[{name}]"
        assert r["executable"] == str(launcher), where
        assert str(jemalloc) in r["maps"], f"{where} jemalloc not mapped: {r['maps']}"
        assert str(restore) in r["maps"], f"{where} restore library not mapped: {r['maps']}"
        assert r["cdll"] == expect_cdll, f"{where} ctypes.CDLL('libpyshimtest.so'): {r['cdll']}"
        assert_callers_environment(r, where)
        if flags is not None:
            for flag, value in flags.items():
                assert bool(r["flags"][flag]) == value, f"{where} sys.flags.{flag}"
        for lib in caller_libs:
            assert lib in r["maps"], f"{where} caller's preload {lib} not mapped"
    # the parent's workers are its children (forkserver ones, grandchildren)
    parent_pid = result["parent"]["pid"]
    for name in ("spawn", "pool"):
        if name in result:
            assert result[name]["ppid"] == parent_pid, name
    for name in (n for n in SH_REPORTS if n in result):
        r = result[name]
        where = f"[{name}]"
        for maps_key in ("maps", "grep_maps"):
            # Exactly what the caller preloads (all watched libraries): no
            # jemalloc unless the caller has it, never the restore library.
            # With a caller preload this is also a positive control of grep.
            assert set(r[maps_key]) == caller_libs, f"{where} {maps_key}: {r[maps_key]}"
        assert_callers_environment(r, where)


CALLER_VARIANTS = ("unset", "empty", "set", "preload-only", "empty-preload", "overlap")


def caller_env(variant: str, base_env: Dict[str, str], tmp_path: Path, libs: NativeLibs,
               jemalloc: Optional[Path] = None):
    """The caller's LD_PRELOAD / LD_LIBRARY_PATH: unset, set to empty, or set
    to a harmless real value (a small library of our own, an existing dir).
    "overlap": the caller already preloads the configured library (space
    separated, as the loader allows) and already lists the configured dir."""
    env = dict(base_env)
    callerdir = tmp_path / "callerlibs"
    callerdir.mkdir(exist_ok=True)
    if variant == "overlap":
        assert jemalloc is not None
        preload, libpath = f"{libs.caller} {jemalloc}", f"{callerdir}:{libs.libdir}"
    else:
        preload, libpath = {
            "unset": (None, None),
            "empty": ("", ""),
            "set": (str(libs.caller), str(callerdir)),
            "preload-only": (str(libs.caller), None),
            "empty-preload": ("", str(callerdir)),
        }[variant]
    if preload is not None:
        env["LD_PRELOAD"] = preload
    if libpath is not None:
        env["LD_LIBRARY_PATH"] = libpath
    return env


CONFIG_ENV = {"ITEST_FROM_CONFIG": "set by [env]", "ITEST_EMPTY": ""}


def make_probe_venv(stage: Stage, interp: Interp, root: Path, base_env: Dict[str, str],
                    jemalloc: Path, testlibs: NativeLibs, mode="symlink") -> Venv:
    """make_venv with the config the probe tests check: jemalloc preloaded,
    the test library's folder as library_path, CONFIG_ENV as [env]."""
    return make_venv(stage, interp, root, base_env, mode=mode, preload=[jemalloc],
                     library_path=[testlibs.libdir], env=CONFIG_ENV)


def check_probe(launcher: Path, env: Dict[str, str], *, jemalloc: Path, restore: Path,
                parts=ALL_PARTS, interp_args=(), expect_flags: Optional[dict] = None,
                through=()) -> dict:
    """Runs probe.py PARTS through `launcher` (started as `*through LAUNCHER`
    when something execs it, e.g. a hop) with the caller's environment `env`,
    asserts assert_probe on the result for a launcher configured as
    make_probe_venv does, and returns the result."""
    result = run_json([*through, launcher, *interp_args, PROBE, *parts], env)
    assert_probe(
        result,
        launcher=launcher,
        jemalloc=jemalloc,
        restore=restore,
        caller_env=env,
        config_env=CONFIG_ENV,
        flags=expect_flags,
        parts=parts,
    )
    return result
