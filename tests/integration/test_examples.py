"""The build-system examples (examples/, README "Dev-mode entrypoints"),
built and run as a user would against the installed prefix: CMake with
find_package(pyshim) and ctest, Meson with pkg-config and meson test, and
a dev-mode binary whose pool workers are preloaded."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import read_stamp, run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
PYTHON = Path("/usr/bin/python3.11")


@pytest.fixture(autouse=True)
def needs_tools(stage, base_env):
    for tool, package in (("cmake", "cmake"), ("ninja", "ninja-build"), ("gcc", "gcc"),
                          ("pkg-config", "pkg-config")):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found (Debian package {package})")
    if not PYTHON.exists():
        pytest.skip(f"{PYTHON} not installed (Debian package python3.11)")


@pytest.fixture
def env_prepend(stage, base_env):
    helped = run([stage.cli, "launcher", "--help"], base_env)
    if b"--env-prepend" not in helped.stdout:
        pytest.skip("this pyshim's `launcher` has no --env-prepend, which the examples use "
                    "(it comes with [env] prepend/append)")


@pytest.fixture
def prefix(stage, tmp_path) -> Path:
    """A copy of the installed prefix, so a test can touch its binaries."""
    copy = tmp_path / "prefix"
    shutil.copytree(stage.prefix, copy, symlinks=True)
    return copy


def env_for(base_env, prefix):
    return {**base_env, "PKG_CONFIG_PATH": str(prefix / "lib" / "pkgconfig")}


def check(res):
    assert res.returncode == 0, (
        f"{res.args} exited {res.returncode}\nstdout: {res.stdout.decode(errors='replace')}\n"
        f"stderr: {res.stderr.decode(errors='replace')}")
    return res.stdout.decode()


def cmake_configure(src, build, prefix, env):
    return check(run(["cmake", "-S", src, "-B", build, "-G", "Ninja",
                      f"-DCMAKE_PREFIX_PATH={prefix}", f"-DPython3_EXECUTABLE={PYTHON}"], env))


def state(path):
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns


def needs_asan():
    found = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True)
    if "/" not in found.stdout:
        pytest.skip("gcc has no libasan.so (Debian package libasan8)")


def test_cmake_asan(prefix, tmp_path, base_env, env_prepend):
    needs_asan()
    env = env_for(base_env, prefix)
    src = tmp_path / "src"
    shutil.copytree(EXAMPLES / "cmake-asan", src)
    build = tmp_path / "build"
    launcher = build / "asan-python"
    cmake_configure(src, build, prefix, env)
    assert not launcher.exists(), "the launcher is written at build time, never at configure time"
    check(run(["cmake", "--build", build], env))
    assert launcher.exists()
    out = check(run(["ctest", "--test-dir", build, "--output-on-failure"], env))
    assert "100% tests passed" in out

    # Built again: nothing to do, the launcher untouched.
    before = state(launcher)
    assert "no work to do" in check(run(["cmake", "--build", build], env))
    assert state(launcher) == before
    # The pyshim binary changed: the command runs again, and rewrites nothing.
    os.utime(prefix / "bin" / "pyshim")
    assert "Writing the pyshim launcher" in check(run(["cmake", "--build", build], env))
    assert state(launcher) == before
    # Other arguments: written again.
    text = (src / "CMakeLists.txt").read_text()
    (src / "CMakeLists.txt").write_text(text.replace("PRELOAD asan", "PRELOAD asan ENV EXAMPLE=1"))
    check(run(["cmake", "--build", build], env))
    assert read_stamp(launcher)["env"]["EXAMPLE"] == "1"
    assert "100% tests passed" in check(run(["ctest", "--test-dir", build], env))


def test_meson_asan(prefix, tmp_path, base_env, env_prepend):
    needs_asan()
    if shutil.which("meson") is None:
        pytest.skip("meson not found (Debian package meson)")
    env = env_for(base_env, prefix)
    src = tmp_path / "src"
    shutil.copytree(EXAMPLES / "meson-asan", src)
    build = tmp_path / "build"
    check(run(["meson", "setup", build, src, f"-Dpython={PYTHON}"], env))
    assert not (build / "asan-python").exists()
    res = run(["meson", "test", "-C", build, "--print-errorlogs"], env)
    out = check(res)
    assert "Ok:                 1" in out and "Fail:               0" in out, out
    assert read_stamp(build / "asan-python")["env"]["ASAN_OPTIONS"] == "detect_leaks=0"


def test_dev_binary(prefix, tmp_path, base_env, env_prepend):
    env = env_for(base_env, prefix)
    src = tmp_path / "src"
    shutil.copytree(EXAMPLES / "dev-binary", src)
    build = tmp_path / "build"
    cmake_configure(src, build, prefix, env)
    check(run(["cmake", "--build", build], env))
    myapp = build / "bin" / "myapp"
    assert myapp.read_bytes().startswith(f"#!{build / 'python'}\n".encode())
    report = json.loads(check(run([myapp, "--workers", "3"], env)))
    assert report["argv"] == [str(myapp), "--workers", "2", "--workers", "3"]
    processes = [report["main"], *report["workers"]]
    assert len({p["pid"] for p in report["workers"]}) >= 1
    for process in processes:
        assert process == {**process, "executable": str(build / "python"), "jemalloc": True}
    assert "100% tests passed" in check(run(["ctest", "--test-dir", build], env))
    doctor = run([prefix / "bin" / "pyshim", "doctor", myapp], env)
    assert doctor.returncode == 0, doctor.stdout.decode()


# --------------------------------------------------------------------------
# The CMake package and pyshim.pc themselves


PACKAGE_PROJECT = """
cmake_minimum_required(VERSION 3.25)
project(package_test LANGUAGES NONE)
find_package(pyshim @VERSION@ CONFIG REQUIRED)
# The entrypoint first: it is still written after its launcher.
pyshim_add_entrypoint(app OUTPUT bin/app LAUNCHER out/python MODULE json.tool
                      ARGS --indent 1)
pyshim_add_launcher(py OUTPUT out/python PYTHON @PYTHON@ PRELOAD jemalloc
                    LIBRARY_PATH ${CMAKE_BINARY_DIR}/libs ENV A=1 B=-x)
file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/targets.txt
     CONTENT "$<TARGET_FILE:pyshim::pyshim>\n$<TARGET_FILE:pyshim::launcher>\n")
"""


def package_project(src, version="0.3", python=PYTHON):
    src.mkdir(parents=True, exist_ok=True)
    (src / "CMakeLists.txt").write_text(
        PACKAGE_PROJECT.replace("@VERSION@", version).replace("@PYTHON@", str(python)))


def test_cmake_package_functions(prefix, tmp_path, base_env, jemalloc):
    env = env_for(base_env, prefix)
    src, build = tmp_path / "src", tmp_path / "build"
    package_project(src)
    cmake_configure(src, build, prefix, env)
    launcher, app = build / "out" / "python", build / "bin" / "app"
    assert not launcher.exists() and not app.exists(), "nothing written at configure time"
    assert (build / "targets.txt").read_text().split() == [
        str(prefix / "bin" / "pyshim"), str(prefix / "lib" / "pyshim" / "pyshim-launcher")]
    check(run(["cmake", "--build", build], env))
    stamp = read_stamp(launcher)
    assert stamp["preload"] == [str(jemalloc)]
    assert stamp["library_path"] == [str(build / "libs")]
    assert stamp["env"] == {"A": "1", "B": "-x"}
    assert app.read_bytes().startswith(f"#!{launcher}\n".encode())
    res = run([app], env, input=b'{"a": [1]}')
    assert check(res) == '{\n "a": [\n  1\n ]\n}\n'

    before = (state(launcher), state(app))
    assert "no work to do" in check(run(["cmake", "--build", build], env))
    os.utime(prefix / "lib" / "pyshim" / "pyshim-launcher")
    out = check(run(["cmake", "--build", build], env))
    assert "Writing the pyshim launcher" in out and "nothing changed" in out
    assert (state(launcher), state(app)) == before
    # Other arguments: the launcher is written again, the entrypoint is not.
    (src / "CMakeLists.txt").write_text(
        (src / "CMakeLists.txt").read_text().replace("ENV A=1", "ENV A=2"))
    check(run(["cmake", "--build", build], env))
    assert read_stamp(launcher)["env"]["A"] == "2"
    assert state(app) == before[1]


def test_cmake_package_version_and_errors(prefix, tmp_path, base_env):
    env = env_for(base_env, prefix)
    src = tmp_path / "old"
    package_project(src, version="0.2")
    res = run(["cmake", "-S", src, "-B", tmp_path / "b1", f"-DCMAKE_PREFIX_PATH={prefix}"], env)
    assert res.returncode != 0 and b"0.3.0" in res.stderr, res.stderr.decode()
    src = tmp_path / "bad"
    src.mkdir()
    (src / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.25)\nproject(bad LANGUAGES NONE)\n"
        "find_package(pyshim 0.3 CONFIG REQUIRED)\n"
        "pyshim_add_launcher(py OUTPUT python PRELOAD asan)\n")
    res = run(["cmake", "-S", src, "-B", tmp_path / "b2", f"-DCMAKE_PREFIX_PATH={prefix}"], env)
    assert res.returncode != 0
    assert b"pyshim_add_launcher(py): OUTPUT and PYTHON are required" in res.stderr


def test_pkg_config_variables(prefix, base_env):
    env = env_for(base_env, prefix)
    version = check(run(["pkg-config", "--modversion", "pyshim"], env)).strip()
    assert version == check(run([prefix / "bin" / "pyshim", "--version"], env)).split()[-1]
    for name, rel in (("pyshim", "bin/pyshim"), ("launcher", "lib/pyshim/pyshim-launcher"),
                      ("restore_library", "lib/pyshim/libpyshim-restore.so")):
        value = check(run(["pkg-config", f"--variable={name}", "pyshim"], env)).strip()
        assert os.path.samefile(value, prefix / rel), (name, value)
