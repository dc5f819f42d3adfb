"""Fixtures for the end-to-end tests: the installed pyshim, real interpreters,
shim venvs and standalone launchers, a test shared library, and helpers to
run things with an explicit, minimal environment.

Required: PYSHIM_PREFIX=<install prefix> (holding bin/pyshim and
lib/pyshim/libpyshim-restore.so), e.g. the `stage` folder of a build.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import pytest

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
    for rel in ("bin/pyshim", "lib/pyshim/libpyshim-restore.so"):
        if not (Path(prefix) / rel).is_file():
            raise pytest.UsageError(f"PYSHIM_PREFIX={prefix}: {rel} is missing")


@dataclass(frozen=True)
class Stage:
    prefix: Path
    shim: Path
    restore: Path


@pytest.fixture(scope="session")
def stage() -> Stage:
    prefix = Path(os.environ["PYSHIM_PREFIX"]).resolve()
    return Stage(prefix, prefix / "bin" / "pyshim", prefix / "lib/pyshim/libpyshim-restore.so")


# --------------------------------------------------------------------------
# Interpreters


@dataclass(frozen=True)
class Interp:
    id: str
    path: Optional[Path]  # None: missing on this machine
    kind: str  # "cpython" or "pypy"
    missing_reason: str = ""

    @property
    def venv_only(self) -> bool:
        # PyPy finds its stdlib relative to argv[0]: standalone is unsupported
        # by design (DESIGN.md section 9).
        return self.kind == "pypy"


def _pyenv_cpython(minor: int) -> Interp:
    ident = f"cpython3.{minor}"
    found = sorted(
        glob.glob(str(PYENV_VERSIONS / f"3.{minor}.*" / "bin" / f"python3.{minor}")),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in re.split(r"[.]", Path(p).parts[-3])],
    )
    found = [p for p in found if re.fullmatch(rf"3\.{minor}\.\d+", Path(p).parts[-3])]
    if not found:
        return Interp(ident, None, "cpython", f"no CPython 3.{minor} under {PYENV_VERSIONS}")
    return Interp(ident, Path(found[-1]), "cpython")


def _system(ident: str, path: str, kind: str, package: str) -> Interp:
    p = Path(path)
    if not (p.exists() and os.access(p, os.X_OK)):
        return Interp(ident, None, kind, f"{path} not installed (Debian package {package})")
    return Interp(ident, p, kind)


def all_interpreters() -> List[Interp]:
    return [_pyenv_cpython(m) for m in CPYTHON_MINORS] + [
        _system("debian3.11", "/usr/bin/python3.11", "cpython", "python3.11"),
        _system("debian3.11-dbg", "/usr/bin/python3.11-dbg", "cpython", "python3.11-dbg"),
        _system("pypy3", "/usr/bin/pypy3", "pypy", "pypy3"),
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
    """A statically linked program that execs argv[1:] with its environment
    untouched: the dynamic loader never runs in it, so neither does the
    restore library (a hop whose restore did not run)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found: cannot build the static hop program")
    root = tmp_path_factory.mktemp("hop")
    src = root / "hop.c"
    src.write_text(
        "#include <unistd.h>\n#include <stdio.h>\nextern char **environ;\n"
        "int main(int argc, char **argv) {\n"
        "  if (argc < 2) return 2;\n"
        "  execve(argv[1], argv + 1, environ);\n"
        "  perror(\"hop: execve\"); return 127;\n}\n"
    )
    out = root / "hop"
    res = subprocess.run(["gcc", "-static", "-O1", "-o", str(out), str(src)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"static linking unavailable (libc.a missing?): {res.stderr.decode()[-300:]}")
    return out


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
    """Put the shim at dest: a symlink to the installed binary, or a copy
    (with the restore library copied to <dest>/../../lib/pyshim/ as a
    `--copy` venv has it, or beside the copy for mode="copy-beside")."""
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
    ROOT/pyshim.toml pointing at the real interpreter."""
    res = subprocess.run(
        [str(interp.path), "-m", "venv", "--without-pip", str(root)],
        env=base_env,
        capture_output=True,
    )
    assert res.returncode == 0, f"venv creation failed: {res.stderr.decode()}"
    plain = run_json([str(root / "bin" / "python"), "-c", INFO], env=base_env)
    names = [p.name for p in (root / "bin").iterdir() if _is_interpreter_name(p.name)]
    assert "python" in names, names
    for name in names:
        place_launcher(stage, root / "bin" / name, mode)
    write_config(root, interp.path, **config)
    return Venv(root, interp, plain)


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
    """Items 3/4 of issue 2 on one probe result.

    caller_env is the exact environment given to the launcher; every Python
    process must see it plus the config's [env], and every /bin/sh child must
    be given exactly what its Python parent had."""
    assert sorted(result) == sorted(("parent", *parts))
    expected_env = dict(caller_env)
    expected_env.update(config_env)
    for name in (n for n in PYTHON_REPORTS if n in result):
        r = result[name]
        where = f"[{name}]"
        assert r["executable"] == str(launcher), where
        assert str(jemalloc) in r["maps"], f"{where} jemalloc not mapped: {r['maps']}"
        assert str(restore) in r["maps"], f"{where} restore library not mapped: {r['maps']}"
        assert r["cdll"] == expect_cdll, f"{where} ctypes.CDLL('libpyshimtest.so'): {r['cdll']}"
        assert r["ld_preload"] == caller_env.get("LD_PRELOAD"), where
        assert r["ld_library_path"] == caller_env.get("LD_LIBRARY_PATH"), where
        assert r["pyshim_vars"] == {
            k: v for k, v in caller_env.items() if k.startswith("PYSHIM_")
        }, where
        assert r["environ"] == expected_env, where
        if flags is not None:
            for flag, value in flags.items():
                assert bool(r["flags"][flag]) == value, f"{where} sys.flags.{flag}"
        caller_preload = caller_env.get("LD_PRELOAD")
        if caller_preload:
            for lib in caller_preload.split(":"):
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
            mapped = r[maps_key]
            assert not [m for m in mapped if "jemalloc" in m], f"{where} {maps_key}: {mapped}"
            assert not [m for m in mapped if "pyshim-restore" in m], f"{where} {maps_key}: {mapped}"
            # positive control: the grep does see what the caller preloads
            caller_preload = caller_env.get("LD_PRELOAD")
            if caller_preload:
                assert caller_preload in mapped, f"{where} {maps_key}: {mapped}"
        assert r["ld_preload"] == caller_env.get("LD_PRELOAD"), where
        assert r["ld_library_path"] == caller_env.get("LD_LIBRARY_PATH"), where
        assert r["pyshim_vars"] == {
            k: v for k, v in caller_env.items() if k.startswith("PYSHIM_")
        }, where
        assert r["environ"] == expected_env, where


CALLER_VARIANTS = ("unset", "empty", "set", "preload-only", "empty-preload")


def caller_env(variant: str, base_env: Dict[str, str], tmp_path: Path, libs: NativeLibs):
    """The caller's LD_PRELOAD / LD_LIBRARY_PATH: unset, set to empty, or set
    to a harmless real value (a small library of our own, an existing dir)."""
    env = dict(base_env)
    callerdir = tmp_path / "callerlibs"
    callerdir.mkdir(exist_ok=True)
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
