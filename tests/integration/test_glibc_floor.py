"""The glibc floor: nothing pyshim ships needs a glibc symbol version newer than
GLIBC_2.17 (the manylinux2014 baseline), on either architecture, so it runs on
every glibc from 2.17 on (README.md, "Supported platforms").

Read from the files themselves with `readelf -V` (the ELF version needs,
.gnu.version_r) of every shipped binary: the installed prefix
(PYSHIM_PREFIX), every .deb in PYSHIM_BUILD/package and PYSHIM_DEB, every
wheel in PYSHIM_BUILD/wheel, and the aarch64 cross build's stage
(PYSHIM_BUILD/aarch64/stage). The two executables must be static (no
PT_INTERP, no version needs at all); the restore library may need only libc
versions up to the floor. The packages and wheels are checked when they were
built (`scripts/dev.sh test` builds them first); when none is there, that
test is skipped, saying so."""

import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

FLOOR = (2, 17)
EXECUTABLES = ("bin/pyshim", "lib/pyshim/pyshim-launcher")
LIBRARIES = ("lib/pyshim/libpyshim-restore.so",)


def version_needs(path: Path) -> Dict[str, List[str]]:
    """{needed file: [version names]} from `readelf -V`'s version needs."""
    res = subprocess.run(["readelf", "-V", "-W", str(path)], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, f"readelf -V {path}: {res.stderr}"
    needs: Dict[str, List[str]] = {}
    current = None
    in_needs = False
    for line in res.stdout.splitlines():
        if line.startswith("Version needs section"):
            in_needs = True
            continue
        if line and not line.startswith(" "):
            in_needs = False
            continue
        if not in_needs:
            continue
        m = re.search(r"File: (\S+)", line)
        if m:
            current = m.group(1)
            needs.setdefault(current, [])
            continue
        m = re.search(r"Name: (\S+)", line)
        if m and current is not None:
            needs[current].append(m.group(1))
    return needs


def has_interp(path: Path) -> bool:
    res = subprocess.run(["readelf", "-l", "-W", str(path)], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, f"readelf -l {path}: {res.stderr}"
    return re.search(r"^\s+INTERP\s", res.stdout, re.M) is not None


def glibc_version(name: str) -> Tuple[int, ...]:
    m = re.fullmatch(r"GLIBC_(\d+(?:\.\d+)+)", name)
    return tuple(int(x) for x in m.group(1).split(".")) if m else ()


def floor_violations(root: Path) -> List[str]:
    """What in an installed tree (bin/, lib/pyshim/) breaks the floor."""
    problems = []
    for rel in EXECUTABLES + LIBRARIES:
        path = root / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
            continue
        needs = version_needs(path)
        if rel in EXECUTABLES:
            if has_interp(path):
                problems.append(f"{rel}: dynamically linked (has PT_INTERP); it must be static")
            if needs:
                problems.append(f"{rel}: has version needs {needs}; a static executable has none")
            continue
        for lib, names in needs.items():
            for name in names:
                version = glibc_version(name)
                if not version:
                    problems.append(f"{rel}: needs {name} from {lib}: not a glibc symbol version")
                elif version > FLOOR:
                    problems.append(f"{rel}: needs {name} from {lib}, newer than GLIBC_2.17")
    return problems


def test_version_needs_are_read(stage):
    # The reader itself: the interpreter this suite runs on needs libc versions.
    needs = version_needs(Path("/usr/bin/python3.11").resolve())
    assert any(glibc_version(n) for names in needs.values() for n in names), needs


def test_floor_flags_a_newer_need(stage, tmp_path):
    # The check can fail: the same tree with a restore library that needs a
    # newer glibc (Debian 12's python3.11, built against glibc 2.36) is flagged.
    shutil.copytree(stage.prefix / "bin", tmp_path / "bin")
    shutil.copytree(stage.prefix / "lib/pyshim", tmp_path / "lib/pyshim")
    newer = Path("/usr/bin/python3.11").resolve()
    shutil.copy(newer, tmp_path / LIBRARIES[0])
    problems = floor_violations(tmp_path)
    assert any("needs GLIBC_2.3" in p and "newer than GLIBC_2.17" in p for p in problems), problems


def test_installed_prefix_meets_the_floor(stage):
    assert floor_violations(stage.prefix) == []


def shipped_trees(tmp: Path) -> List[Tuple[str, Path]]:
    """(what, extracted tree with bin/ and lib/pyshim/) for every package and wheel built."""
    build = Path(os.environ["PYSHIM_BUILD"]) if os.environ.get("PYSHIM_BUILD") else None
    debs = set()
    if os.environ.get("PYSHIM_DEB"):
        debs.add(Path(os.environ["PYSHIM_DEB"]).resolve())
    if build:
        debs.update(p.resolve() for p in (build / "package").glob("pyshim_*.deb"))
    trees = []
    for deb in sorted(debs):
        out = tmp / deb.name
        subprocess.run(["dpkg-deb", "-x", str(deb), str(out)], check=True, timeout=120)
        trees.append((deb.name, out / "usr"))
    for wheel in sorted(build.glob("wheel/*.whl")) if build else []:
        out = tmp / wheel.name
        with zipfile.ZipFile(wheel) as z:
            z.extractall(out)
        (data,) = out.glob("*.data")
        tree = out / "tree"
        (tree / "bin").mkdir(parents=True)
        shutil.copy(data / "scripts/pyshim", tree / "bin/pyshim")
        shutil.copytree(data / "data/lib", tree / "lib")
        trees.append((wheel.name, tree))
    cross = build / "aarch64/stage" if build else None
    if cross and cross.is_dir():
        trees.append(("aarch64 stage", cross))
    return trees


def test_packages_and_wheels_meet_the_floor(tmp_path):
    trees = shipped_trees(tmp_path)
    if not trees:
        pytest.skip("no .deb, wheel or aarch64 stage was built (PYSHIM_BUILD/package, "
                    "PYSHIM_BUILD/wheel, PYSHIM_BUILD/aarch64/stage): "
                    "`bash scripts/dev.sh test` builds them first")
    problems = {what: floor_violations(tree) for what, tree in trees}
    assert problems == {what: [] for what, _ in trees}


# --------------------------------------------------------------------------
# install, init and doctor read the interpreter's C library before any launch

JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
PYTHON = Path("/usr/bin/python3.11")


def tool(stage, *args, cwd=None):
    return subprocess.run([str(stage.cli), *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd, stdin=subprocess.DEVNULL)


@pytest.fixture
def too_new_preload(tmp_path) -> Path:
    """Debian's jemalloc with one of its needed versions renamed to GLIBC_2.99
    (same length, so the file stays valid): a library built for a glibc newer
    than any there is, which the loader refuses."""
    if not JEMALLOC.is_file():
        pytest.skip(f"{JEMALLOC} is missing (apt-get install libjemalloc2)")
    data = JEMALLOC.read_bytes()
    needs = [n for names in version_needs(JEMALLOC).values() for n in names
             if glibc_version(n) > FLOOR]
    assert needs, "jemalloc needs no version above the floor to rename"
    old = needs[0].encode() + b"\0"
    assert data.count(old) == 1
    path = tmp_path / "libjemalloc-glibc99.so.2"
    path.write_bytes(data.replace(old, b"GLIBC_2.99\0"))
    # The loader itself refuses it: the check reports what a launch would hit.
    res = subprocess.run([str(PYTHON), "-c", "pass"], env={"LD_PRELOAD": str(path)},
                         capture_output=True, text=True)
    assert "GLIBC_2.99" in res.stderr, res.stderr
    return path


def test_init_refuses_a_preload_the_c_library_cannot_load(stage, tmp_path, too_new_preload):
    venv = tmp_path / "venv"
    res = tool(stage, "init", venv, "--python", PYTHON, "--preload", too_new_preload)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "GLIBC_2.99" in res.stderr and str(too_new_preload) in res.stderr, res.stderr
    assert "does not define" in res.stderr, res.stderr
    assert not venv.exists()


def test_doctor_fails_on_a_preload_the_c_library_cannot_load(stage, tmp_path, too_new_preload):
    venv = tmp_path / "venv"
    res = tool(stage, "init", venv, "--python", PYTHON, "--preload", JEMALLOC)
    assert res.returncode == 0, res.stdout + res.stderr
    res = tool(stage, "doctor", venv / "bin/python")
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"C library loads the restore library and preloads: glibc 2\.\d+", res.stdout)
    config = venv / "pyshim.toml"
    config.write_text(config.read_text().replace(str(JEMALLOC), str(too_new_preload)))
    res = tool(stage, "doctor", venv / "bin/python")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "GLIBC_2.99" in res.stdout + res.stderr, res.stdout + res.stderr


def test_install_refuses_a_musl_interpreter(stage, tmp_path):
    # Debian's python3.11 with its PT_INTERP pointed at musl's loader: what a
    # python built on Alpine looks like to pyshim, which reads the ELF only.
    data = PYTHON.resolve().read_bytes()
    old = b"/lib64/ld-linux-x86-64.so.2\0"
    if data.count(old) != 1:
        pytest.skip(f"{PYTHON} has no x86-64 glibc loader path to rewrite")
    new = b"/lib/ld-musl-x86_64.so.1\0"
    musl_python = tmp_path / "python3.11"
    musl_python.write_bytes(data.replace(old, new + b"\0" * (len(old) - len(new))))
    musl_python.chmod(0o755)
    venv = tmp_path / "venv"
    subprocess.run([str(PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True)
    res = tool(stage, "install", venv, "--python", musl_python)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "musl" in res.stderr and "glibc 2.17 or newer" in res.stderr, res.stderr
    assert not (venv / "pyshim.toml").exists()


def test_init_starts_the_new_venv(stage, tmp_path):
    venv = tmp_path / "venv"
    res = tool(stage, "init", venv, "--python", PYTHON)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"started {venv}/bin/python: it runs (sys.executable {venv}/bin/python)" in res.stdout
    assert "check it with" not in res.stdout


def test_init_reports_a_venv_that_does_not_start(stage, tmp_path):
    venv = tmp_path / "venv"
    res = tool(stage, "init", venv, "--python", PYTHON, "--env", "PYTHONHOME=/nonexistent")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "the new venv does not start" in res.stderr, res.stderr
    assert "No module named 'encodings'" in res.stderr, res.stderr
    assert (venv / "pyshim.toml").is_file()  # left for doctor


def test_install_refuses_a_glibc_older_than_the_floor(stage, tmp_path):
    # A C library that defines symbol versions up to GLIBC_2.16 only, beside
    # a loader that Debian's python3.11 (PT_INTERP rewritten) names: what an
    # interpreter on glibc 2.16 looks like to pyshim, which reads files only.
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found (Debian package gcc)")
    data = PYTHON.resolve().read_bytes()
    old = b"/lib64/ld-linux-x86-64.so.2\0"
    if data.count(old) != 1:
        pytest.skip(f"{PYTHON} has no x86-64 glibc loader path to rewrite")
    libdir = Path(tempfile.mkdtemp(prefix="pg", dir="/tmp"))  # short: fits PT_INTERP
    try:
        (libdir / "v.map").write_text("GLIBC_2.2.5 { global: f; local: *; };\n"
                                      "GLIBC_2.16 { global: g; } GLIBC_2.2.5;\n")
        (libdir / "c.c").write_text("int f(void) { return 0; } int g(void) { return 1; }\n")
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(libdir / "libc.so.6"),
                        f"-Wl,--version-script={libdir / 'v.map'}", "-Wl,-soname,libc.so.6",
                        str(libdir / "c.c")], check=True)
        (libdir / "ld.so").write_bytes(b"")
        loader = str(libdir / "ld.so").encode() + b"\0"
        assert len(loader) <= len(old)
        python = tmp_path / "python3.11"
        python.write_bytes(data.replace(old, loader + b"\0" * (len(old) - len(loader))))
        python.chmod(0o755)
        venv = tmp_path / "venv"
        subprocess.run([str(PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True)
        res = tool(stage, "install", venv, "--python", python)
        assert res.returncode == 1, res.stdout + res.stderr
        assert "is glibc 2.16, older than pyshim's floor, glibc 2.17" in res.stderr, res.stderr
        assert not (venv / "pyshim.toml").exists()
    finally:
        shutil.rmtree(libdir)
