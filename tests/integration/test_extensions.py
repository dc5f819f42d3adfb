"""`pyshim doctor --extensions` and install's warnings: what a venv's
extension modules need from the loader (a sanitizer runtime preloaded first,
every DT_NEEDED library found), read from the files before a worker dies of
it, and checked against what really happens when the module is imported."""
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import pyshim_tool, run

PY = "/usr/bin/python3.11"

EXTENSION = r"""
#include <Python.h>
%(decl)s
static PyObject* call(PyObject* self, PyObject* args) { return PyLong_FromLong(%(body)s); }
static PyMethodDef methods[] = {{"call", call, METH_NOARGS, ""}, {0}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "%(name)s", 0, -1, methods};
PyMODINIT_FUNC PyInit_%(name)s(void) { return PyModule_Create(&def); }
"""


def includes():
    res = subprocess.run(["python3.11-config", "--includes"], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip("python3.11-config not found (python3.11-dev): cannot build an extension")
    return res.stdout.split()


def build_extension(site: Path, name: str, *flags, decl="", body="42"):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found: cannot build an extension module")
    src = site / f"{name}.c"
    src.write_text(EXTENSION % {"name": name, "decl": decl, "body": body})
    out = site / f"{name}.cpython-311-x86_64-linux-gnu.so"
    subprocess.run(["gcc", "-shared", "-fPIC", *includes(), str(src), "-o", str(out), *flags],
                   check=True)
    src.unlink()
    return out


def build_library(path: Path, soname: str, *flags):
    path.parent.mkdir(parents=True, exist_ok=True)
    src = path.with_suffix(".c")
    src.write_text("int layer_answer(void) { return 42; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", f"-Wl,-soname,{soname}", str(src), "-o", str(path),
                    *flags], check=True)
    src.unlink()


def init(stage, root: Path, env, *args):
    res = pyshim_tool(stage, "init", root, "--python", PY, "-q", *args, env=env)
    assert res.returncode == 0, res.stderr.decode()
    return res


def site_packages(root: Path) -> Path:
    return root / "lib" / "python3.11" / "site-packages"


def doctor(stage, root: Path, env, *args):
    return pyshim_tool(stage, "doctor", root / "bin" / "python", "--extensions", "--json", *args,
                       env=env)


def checks(res, ident):
    doc = json.loads(res.stdout)
    return [c for c in doc["checks"] if c["id"] == ident]


def imports(root: Path, module: str, env):
    """Imports the module in the interpreter and in a spawn worker (a script
    file: a spawn worker re-imports the parent's main module)."""
    script = root / f"import_{module}.py"
    script.write_text(
        "import multiprocessing as mp, sys\n"
        "def f(_):\n"
        f"    import {module}; return {module}.call()\n"
        "if __name__ == '__main__':\n"
        f"    import {module}; print({module}.call(), flush=True)\n"
        "    with mp.get_context('spawn').Pool(1) as p:\n"
        "        r = p.map_async(f, [0])\n"
        "        print(r.get(timeout=60))\n")
    return run([root / "bin" / "python", script], env)


def test_asan_extension_without_and_with_the_asan_preset(stage, tmp_path, base_env):
    if not Path("/usr/lib/x86_64-linux-gnu/libasan.so.8").exists():
        pytest.skip("libasan.so.8 not installed (libasan8)")
    root = tmp_path / "v"
    init(stage, root, base_env)
    build_extension(site_packages(root), "asanext", "-fsanitize=address")
    # The fact being predicted: importing it without the runtime dies.
    assert imports(root, "asanext", base_env).returncode != 0

    res = doctor(stage, root, base_env)
    assert res.returncode == 1, res.stdout.decode()
    [finding] = [c for c in checks(res, "extension_runtime") if not c["ok"]]
    assert "asanext.cpython-311-x86_64-linux-gnu.so" in finding["message"]
    assert "address" in finding["message"]
    assert finding["fix"] == f"pyshim install {root} --preload asan"

    # install warns about the same (and still succeeds).
    res = pyshim_tool(stage, "install", root, "--env", "X=1", env=base_env)
    assert res.returncode == 0
    assert "warning: asanext.cpython-311-x86_64-linux-gnu.so" in res.stdout.decode()
    assert f"fix: pyshim install {root} --preload asan" in res.stdout.decode()

    # Running the suggested command fixes it, doctor agrees, and the import works
    # in the interpreter and its spawn worker.
    res = pyshim_tool(stage, *finding["fix"].split()[1:], env=base_env)
    assert res.returncode == 0, res.stderr.decode()
    assert "warning:" not in res.stdout.decode()
    res = doctor(stage, root, base_env)
    assert all(c["ok"] for c in checks(res, "extension_runtime")), res.stdout.decode()
    assert all(c["ok"] for c in checks(res, "extension_libraries")), res.stdout.decode()
    ran = imports(root, "asanext", {**base_env, "ASAN_OPTIONS": "detect_leaks=0"})
    assert ran.returncode == 0 and ran.stdout.split() == [b"42", b"[42]"], ran.stderr.decode()


def test_asan_runtime_preloaded_after_another_library_is_flagged(stage, tmp_path, base_env, jemalloc):
    if not Path("/usr/lib/x86_64-linux-gnu/libasan.so.8").exists():
        pytest.skip("libasan.so.8 not installed (libasan8)")
    root = tmp_path / "v"
    init(stage, root, base_env, "--preload", str(jemalloc), "--preload", "asan")
    # install puts a sanitizer runtime first; a hand edit can undo that.
    config = root / "pyshim.toml"
    text = config.read_text()
    asan_line = next(line for line in text.splitlines() if "libasan.so" in line and
                     line.startswith("  "))
    text = text.replace(asan_line + "\n", "").replace("preload = [\n", "preload = [\n", 1)
    text = text.replace("libjemalloc.so.2',\n", "libjemalloc.so.2',\n" + asan_line + "\n", 1)
    config.write_text(text)
    assert text.index("libjemalloc") < text.index("libasan.so.8'"), text
    build_extension(site_packages(root), "asanext", "-fsanitize=address")
    # The fact being predicted: ASan refuses to start when it is not first.
    ran = imports(root, "asanext", base_env)
    assert ran.returncode != 0 and b"does not come first" in ran.stderr, ran.stderr.decode()
    res = doctor(stage, root, base_env)
    assert res.returncode == 1
    [finding] = [c for c in checks(res, "extension_runtime") if not c["ok"]]
    assert "preload 2 of 2: it must come first" in finding["message"]


def test_two_layers_without_and_with_layer(stage, tmp_path, base_env):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    init(stage, lower, base_env)
    build_library(site_packages(lower) / "framework" / "libframework.so.1", "libframework.so.1")
    res = pyshim_tool(stage, "dynlib", lower, env=base_env)
    assert res.returncode == 0, res.stderr.decode()

    init(stage, upper, base_env)
    build_extension(site_packages(upper), "app", "-L" + str(site_packages(lower) / "framework"),
                    "-l:libframework.so.1", decl="int layer_answer(void);", body="layer_answer()")
    # The fact being predicted: the import fails for want of the library.
    ran = imports(upper, "app", base_env)
    assert ran.returncode != 0 and b"libframework.so.1" in ran.stderr

    res = doctor(stage, upper, base_env, "--layer-candidates", str(lower))
    assert res.returncode == 1, res.stdout.decode()
    [finding] = [c for c in checks(res, "extension_libraries") if not c["ok"]]
    assert "app.cpython-311-x86_64-linux-gnu.so" in finding["message"]
    assert "needs libframework.so.1" in finding["message"]
    assert finding["fix"].endswith(f"pyshim install {upper} --layer {lower}"), finding["fix"]

    res = pyshim_tool(stage, "install", upper, "--env", "X=1", env=base_env)
    assert "warning: app.cpython-311-x86_64-linux-gnu.so: needs libframework.so.1" in \
        res.stdout.decode()

    res = pyshim_tool(stage, "install", upper, "--layer", lower, env=base_env)
    assert res.returncode == 0, res.stderr.decode()
    res = doctor(stage, upper, base_env)
    assert res.returncode == 0, res.stdout.decode()
    ran = imports(upper, "app", base_env)
    assert ran.returncode == 0 and ran.stdout.split() == [b"42", b"[42]"], ran.stderr.decode()


def test_runpath_origin_that_resolves_is_not_flagged(stage, tmp_path, base_env):
    root = tmp_path / "v"
    init(stage, root, base_env)
    site = site_packages(root)
    build_library(site / "pkg.libs" / "libbundled.so.3", "libbundled.so.3")
    (site / "pkg").mkdir()
    build_extension(site / "pkg", "bundled", "-L" + str(site / "pkg.libs"), "-l:libbundled.so.3",
                    "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../pkg.libs",
                    decl="int layer_answer(void);", body="layer_answer()")
    (site / "pkg" / "__init__.py").write_text("")
    ran = run([root / "bin" / "python", "-c", "import pkg.bundled as b; print(b.call())"], base_env)
    assert ran.returncode == 0 and ran.stdout.strip() == b"42", ran.stderr.decode()
    res = doctor(stage, root, base_env)
    assert res.returncode == 0, res.stdout.decode()
    [ok] = checks(res, "extension_libraries")
    assert ok["ok"] and "2 shared objects read" in ok["message"]
    # And a RUNPATH that does not lead to it is flagged.
    (site / "pkg.libs" / "libbundled.so.3").rename(site / "libbundled.so.3.moved")
    res = doctor(stage, root, base_env)
    assert res.returncode == 1
    assert any("needs libbundled.so.3" in c["message"] for c in checks(res, "extension_libraries"))


def test_foreign_machine_library_is_flagged(stage, tmp_path, base_env):
    """A library for another machine (an x86-64 build with e_machine set to
    aarch64, as a wheel for the wrong platform would bring): the loader
    refuses it, and doctor says so."""
    root = tmp_path / "v"
    init(stage, root, base_env)
    lib = site_packages(root) / "libforeign.so"
    build_library(lib, "libforeign.so")
    image = bytearray(lib.read_bytes())
    image[18:20] = (183).to_bytes(2, "little")  # e_machine = EM_AARCH64
    lib.write_bytes(bytes(image))
    loaded = run([root / "bin" / "python", "-c",
                  f"import ctypes; ctypes.CDLL({str(lib)!r})"], base_env)
    # glibc skips an object of another machine and then reports it missing.
    assert loaded.returncode != 0, loaded.stderr.decode()
    assert b"cannot open shared object file" in loaded.stderr, loaded.stderr.decode()
    res = doctor(stage, root, base_env)
    assert res.returncode == 1, res.stdout.decode()
    [finding] = [c for c in checks(res, "extension_libraries") if not c["ok"]]
    assert "libforeign.so" in finding["message"]
    assert "is aarch64, 64-bit, the interpreter is x86-64, 64-bit" in finding["message"]


def test_a_large_venv_is_read_once_per_file(stage, tmp_path, base_env):
    """Thousands of shared objects (copies of one real extension): every one
    is read and none is flagged. The time the scan adds to doctor is printed
    (the README quotes it); it is not asserted, CI machines differ."""
    root = tmp_path / "v"
    init(stage, root, base_env)
    site = site_packages(root)
    one = build_extension(site, "seed")
    for i in range(3000):
        folder = site / f"pkg{i // 100}"
        folder.mkdir(exist_ok=True)
        shutil.copyfile(one, folder / f"mod{i}.cpython-311-x86_64-linux-gnu.so")
    launcher = root / "bin" / "python"
    timings = {}
    for label, extra in (("without", ()), ("with", ("--extensions",))):
        start = time.monotonic()
        res = pyshim_tool(stage, "doctor", launcher, "--json", *extra, env=base_env)
        timings[label] = time.monotonic() - start
        assert res.returncode == 0, res.stdout.decode()
    [ok] = checks(res, "extension_libraries")
    assert ok["ok"] and "3001 shared objects read" in ok["message"]
    print(f"\ndoctor on a venv of 3001 shared objects: {timings['without']:.2f} s, "
          f"with --extensions {timings['with']:.2f} s "
          f"(the scan: {timings['with'] - timings['without']:+.2f} s)")
