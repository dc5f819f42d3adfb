"""The wheels (`scripts/dev.sh wheel`, also built by `scripts/dev.sh test`),
used the way Python users install a tool: `pip install` into a fresh venv and
`pipx install`, offline, from the file; then `pyshim init` with jemalloc and a
spawn worker that maps it. Also: the file name's tags, RECORD's hashes and
sizes, and that each wheel's binaries are for its architecture.

Which wheels: PYSHIM_BUILD/wheel/*.whl; when none was built the tests are
skipped, saying so."""

import base64
import csv
import hashlib
import io
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

PYTHON = Path("/usr/bin/python3.11")
JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
WORKER_MAPS = r"""
import multiprocessing, pathlib, sys
if __name__ == "__main__":
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        sys.stdout.write(pool.apply(pathlib.Path("/proc/self/maps").read_text))
"""
NAME = re.compile(r"pyshim-(?P<version>[\d.]+)-py3-none-manylinux_2_17_(?P<arch>\w+?)"
                  r"\.manylinux2014_(?P=arch)\.whl")
ELF_MACHINE = {"x86_64": 62, "aarch64": 183}


def wheels():
    build = os.environ.get("PYSHIM_BUILD")
    return sorted(Path(build).glob("wheel/*.whl")) if build else []


def host_wheel():
    found = [w for w in wheels() if w.name.endswith(f"{os.uname().machine}.whl")]
    if not found:
        pytest.skip("no wheel for this machine in PYSHIM_BUILD/wheel: `bash scripts/dev.sh wheel` "
                    "writes them")
    return found[0]


def test_names_tags_record_and_architecture():
    if not wheels():
        pytest.skip("no wheel in PYSHIM_BUILD/wheel: `bash scripts/dev.sh wheel` writes them")
    for wheel in wheels():
        m = NAME.fullmatch(wheel.name)
        assert m, wheel.name
        version, arch = m.group("version"), m.group("arch")
        with zipfile.ZipFile(wheel) as z:
            info = f"pyshim-{version}.dist-info"
            tags = [l.split(": ", 1)[1] for l in z.read(f"{info}/WHEEL").decode().splitlines()
                    if l.startswith("Tag: ")]
            assert tags == [f"py3-none-manylinux_2_17_{arch}", f"py3-none-manylinux2014_{arch}"]
            assert "Root-Is-Purelib: false" in z.read(f"{info}/WHEEL").decode()
            rows = list(csv.reader(io.StringIO(z.read(f"{info}/RECORD").decode())))
            listed = {row[0] for row in rows}
            assert listed == set(z.namelist()), (listed, z.namelist())
            for path, digest, size in rows:
                if path.endswith("RECORD"):
                    continue
                data = z.read(path)
                expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                assert digest == "sha256=" + expected.decode() and int(size) == len(data), path
            data = f"pyshim-{version}.data"
            for path in ("scripts/pyshim", "data/lib/pyshim/pyshim-launcher",
                         "data/lib/pyshim/libpyshim-restore.so"):
                head = z.read(f"{data}/{path}")[:20]
                assert head[:4] == b"\x7fELF", path
                assert int.from_bytes(head[18:20], "little") == ELF_MACHINE[arch], (wheel, path)
            for path in ("scripts/pyshim", "data/lib/pyshim/pyshim-launcher"):
                assert (z.getinfo(f"{data}/{path}").external_attr >> 16) & 0o111, path


def init_and_spawn(pyshim: Path, tmp_path: Path, env):
    if not JEMALLOC.is_file():
        pytest.skip(f"{JEMALLOC} is missing (apt-get install libjemalloc2)")
    venv = tmp_path / "shim"
    res = subprocess.run([str(pyshim), "init", str(venv), "--python", str(PYTHON), "--preload",
                          "jemalloc"], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"started {venv}/bin/python: it runs" in res.stdout, res.stdout
    script = tmp_path / "worker.py"
    script.write_text(WORKER_MAPS)
    res = subprocess.run([str(venv / "bin/python"), str(script)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert any(line.endswith(" " + str(JEMALLOC)) for line in res.stdout.splitlines())


def offline_env(tmp_path):
    # No index: nothing may come from the network.
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PIP_NO_INDEX": "1",
            "PIP_RETRIES": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def test_pip_installs_the_wheel_into_a_fresh_venv(tmp_path):
    wheel = host_wheel()
    env = offline_env(tmp_path)
    tool_env = tmp_path / "tools"
    subprocess.run([str(PYTHON), "-m", "venv", str(tool_env)], check=True, env=env)
    res = subprocess.run([str(tool_env / "bin/python"), "-m", "pip", "install", "--no-deps",
                          str(wheel)], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert os.access(tool_env / "bin/pyshim", os.X_OK)
    assert os.access(tool_env / "lib/pyshim/pyshim-launcher", os.X_OK)
    assert (tool_env / "lib/pyshim/libpyshim-restore.so").is_file()
    init_and_spawn(tool_env / "bin/pyshim", tmp_path, env)
    # The build-system files name the environment's own binaries.
    if shutil.which("pkg-config"):
        res = subprocess.run(["pkg-config", "--variable=launcher", "pyshim"], capture_output=True,
                             text=True, env={**env, "PKG_CONFIG_PATH": str(tool_env / "lib/pkgconfig")})
        assert res.returncode == 0, res.stderr
        assert os.path.realpath(res.stdout.strip()) == \
            os.path.realpath(tool_env / "lib/pyshim/pyshim-launcher")
    project = tmp_path / "cmake-project"
    project.mkdir()
    (project / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.25)\nproject(p NONE)\n"
        "find_package(pyshim 0.3 CONFIG REQUIRED)\n"
        "get_target_property(launcher pyshim::launcher IMPORTED_LOCATION)\n"
        "message(STATUS \"pyshim launcher: ${launcher}\")\n")
    res = subprocess.run(["cmake", "-S", str(project), "-B", str(project / "build"),
                          f"-DCMAKE_PREFIX_PATH={tool_env}"], capture_output=True, text=True,
                         env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"pyshim launcher: {tool_env}/lib/pyshim/pyshim-launcher" in res.stdout.replace(
        "//", "/"), res.stdout


def test_pipx_installs_the_wheel_offline(tmp_path):
    wheel = host_wheel()
    if shutil.which("pipx") is None:
        pytest.skip("pipx is not installed (Debian package pipx)")
    env = dict(offline_env(tmp_path), PIPX_HOME=str(tmp_path / "pipx"),
               PIPX_BIN_DIR=str(tmp_path / "bin"), PIPX_DEFAULT_PYTHON=str(PYTHON))
    res = subprocess.run(["pipx", "install", str(wheel)], capture_output=True, text=True, env=env,
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    pyshim = tmp_path / "bin/pyshim"
    assert Path(os.path.realpath(pyshim)) == tmp_path / "pipx/venvs/pyshim/bin/pyshim"
    init_and_spawn(pyshim, tmp_path, env)
