"""Layered environments (README, "Layered environments"): `pyshim dynlib`
collects a venv's shared libraries into share/venv/dynlib; `pyshim install
UPPER --layer LOWER` puts that folder on the upper venv's library_path, so
an extension in the upper layer that links a lower layer's library (with no
RPATH) imports in the parent interpreter and in spawn/forkserver workers,
while non-Python children get the caller's LD_LIBRARY_PATH.

Self-contained: everything is built here with gcc against Debian's
python3.11 headers. Needs PYSHIM_PREFIX (an install prefix with bin/pyshim
and lib/pyshim/libpyshim-restore.so).

  layer A  foo_pkg/lib/libfoo.so.1 (SONAME libfoo.so.1, foo_value() = 42)
           foo_pkg/lib/libqux.so   (SONAME libqux.so.2: linked under both names)
           _a.so                   (extension with a bare .so name, RPATH to libfoo)
  layer B  _b.cpython-311-*.so     (links libfoo.so.1, no RPATH)
           baz_pkg/lib/libbaz.so.1 (links libfoo.so.1, no RPATH; baz_value() = 100 + foo_value())
  layer C  _c.cpython-311-*.so     (links libbaz.so.1, no RPATH)
"""

import json
import os
import shutil
import subprocess
import textwrap
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

PYTHON = Path("/usr/bin/python3.11")
PYTHON_INCLUDE = Path("/usr/include/python3.11")
EXT_SUFFIX = ".cpython-311-x86_64-linux-gnu.so"
SITE = Path("lib/python3.11/site-packages")
DYNLIB = Path("share/venv/dynlib")
LOADER_ERROR = "cannot open shared object file"

# The environment as the process was exec'd: the loader's view. os.environ
# shows the caller's values, because the restore library put them back.
LOADER_VIEW = textwrap.dedent(
    """
    def loader_library_path():
        for entry in open("/proc/self/environ", "rb").read().split(b"\\0"):
            if entry.startswith(b"LD_LIBRARY_PATH="):
                return entry[len(b"LD_LIBRARY_PATH="):].decode()
        return None
    """
)


# --------------------------------------------------------------------------
# helpers


def clean_env(home: Path, library_path=None):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    if library_path is not None:
        env["LD_LIBRARY_PATH"] = library_path
    return env


def run(cmd, env, check=False, timeout=120):
    res = subprocess.run(
        [str(c) for c in cmd], env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and res.returncode != 0:
        raise AssertionError(
            f"{cmd} exited {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
        )
    return res


def gcc(*args):
    res = subprocess.run(["gcc", "-shared", "-fPIC", "-O1", *map(str, args)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def library_source(name, body):
    return f"int {name}(void) {{ {body} }}\n"


def extension_source(module, dep):
    return textwrap.dedent(
        f"""
        #define PY_SSIZE_T_CLEAN
        #include <Python.h>
        int {dep}(void);
        static PyObject* value(PyObject* self, PyObject* unused) {{
          return PyLong_FromLong({dep}());
        }}
        static PyMethodDef methods[] = {{{{"value", value, METH_NOARGS, NULL}},
                                         {{NULL, NULL, 0, NULL}}}};
        static struct PyModuleDef def = {{PyModuleDef_HEAD_INIT, "{module}", NULL, -1, methods}};
        PyMODINIT_FUNC PyInit_{module}(void) {{ return PyModule_Create(&def); }}
        """
    )


def dynamic_section(path: Path) -> str:
    res = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout


def make_venv(path: Path, env) -> Path:
    run([PYTHON, "-m", "venv", "--without-pip", path], env, check=True)
    return path


def links_of(venv: Path):
    folder = venv / DYNLIB
    return {p.name: os.readlink(p) for p in folder.iterdir()} if folder.is_dir() else None


def read_config(venv: Path):
    return tomllib.loads((venv / "pyshim.toml").read_text())


# --------------------------------------------------------------------------
# fixtures


@dataclass(frozen=True)
class Tools:
    pyshim: Path
    home: Path

    def env(self, library_path=None):
        return clean_env(self.home, library_path)

    def __call__(self, *args, env=None, check=False):
        return run([self.pyshim, *args], env or self.env(), check=check)


@dataclass(frozen=True)
class Built:
    libfoo: Path
    libfoo_override: Path  # another libfoo.so.1, foo_value() = 7
    libqux: Path
    ext_a: Path
    ext_b: Path
    libbaz: Path
    ext_c: Path
    libbar_one: Path
    libbar_two: Path


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    missing = [str(p) for p in (PYTHON, PYTHON_INCLUDE / "Python.h") if not p.exists()]
    missing += [tool for tool in ("gcc", "readelf") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian: gcc, binutils, python3.11-dev)")
    prefix = Path(os.environ["PYSHIM_PREFIX"]).resolve()
    return Tools(prefix / "bin" / "pyshim", tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def built(tools, tmp_path_factory) -> Built:
    d = tmp_path_factory.mktemp("build")

    def source(name, text):
        (d / name).write_text(text)
        return d / name

    libfoo = d / "libfoo.so.1"
    gcc(source("foo.c", library_source("foo_value", "return 42;")), "-Wl,-soname,libfoo.so.1",
        "-o", libfoo)
    override = d / "override"
    override.mkdir()
    gcc(source("foo7.c", library_source("foo_value", "return 7;")), "-Wl,-soname,libfoo.so.1",
        "-o", override / "libfoo.so.1")
    libqux = d / "libqux.so"
    gcc(source("qux.c", library_source("qux_value", "return 3;")), "-Wl,-soname,libqux.so.2",
        "-o", libqux)
    ext_a = d / "_a.so"
    gcc(f"-I{PYTHON_INCLUDE}", source("a.c", extension_source("_a", "foo_value")), libfoo,
        "-Wl,-rpath,$ORIGIN/foo_pkg/lib", "-o", ext_a)
    ext_b = d / f"_b{EXT_SUFFIX}"
    gcc(f"-I{PYTHON_INCLUDE}", source("b.c", extension_source("_b", "foo_value")), libfoo,
        "-o", ext_b)
    libbaz = d / "libbaz.so.1"
    gcc(source("baz.c", "int foo_value(void);\n" +
               library_source("baz_value", "return 100 + foo_value();")),
        libfoo, "-Wl,-soname,libbaz.so.1", "-o", libbaz)
    ext_c = d / f"_c{EXT_SUFFIX}"
    gcc(f"-I{PYTHON_INCLUDE}", source("c.c", extension_source("_c", "baz_value")), libbaz,
        f"-Wl,-rpath-link,{d}", "-o", ext_c)
    (d / "bar_one").mkdir()
    (d / "bar_two").mkdir()
    gcc(source("bar1.c", library_source("bar_value", "return 1;")), "-o", d / "bar_one/libbar.so")
    gcc(source("bar2.c", library_source("bar_value", "return 2;")), "-o", d / "bar_two/libbar.so")

    # The premise of the whole test: nothing but LD_LIBRARY_PATH can tell
    # the loader where libfoo.so.1 / libbaz.so.1 are.
    for path in (ext_b, libbaz, ext_c):
        section = dynamic_section(path)
        assert "RPATH" not in section and "RUNPATH" not in section, section
    assert "[libfoo.so.1]" in dynamic_section(ext_b)
    assert "[libbaz.so.1]" in dynamic_section(ext_c)
    return Built(libfoo, override / "libfoo.so.1", libqux, ext_a, ext_b, libbaz, ext_c,
                 d / "bar_one/libbar.so", d / "bar_two/libbar.so")


def put(src: Path, venv: Path, rel: str):
    dest = venv / SITE / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)
    return dest


def fill_a(venv: Path, built: Built):
    put(built.libfoo, venv, "foo_pkg/lib/libfoo.so.1")
    put(built.libqux, venv, "foo_pkg/lib/libqux.so")
    (venv / SITE / "foo_pkg/__init__.py").write_text("")
    put(built.ext_a, venv, "_a.so")


def fill_b(venv: Path, built: Built):
    put(built.ext_b, venv, built.ext_b.name)
    put(built.libbaz, venv, "baz_pkg/lib/libbaz.so.1")


@pytest.fixture(scope="module")
def layer_a(tools, built, tmp_path_factory) -> Path:
    venv = make_venv(tmp_path_factory.mktemp("layers") / "A", tools.env())
    fill_a(venv, built)
    tools("dynlib", venv, check=True)
    return venv


@pytest.fixture(scope="module")
def layer_b(tools, built, layer_a) -> Path:
    venv = make_venv(layer_a.parent / "B", tools.env())
    fill_b(venv, built)
    tools("install", venv, "--layer", layer_a, check=True)
    return venv


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


# --------------------------------------------------------------------------
# pyshim dynlib


def test_dynlib_links_libraries_by_name_and_soname_but_not_extensions(tools, layer_a):
    site = layer_a / SITE
    links = links_of(layer_a)
    # _a.so has a bare .so name but exports PyInit__a: an extension, not linked.
    assert set(links) == {"libfoo.so.1", "libqux.so", "libqux.so.2"}
    folder = layer_a / DYNLIB
    assert (folder / "libfoo.so.1").resolve() == (site / "foo_pkg/lib/libfoo.so.1").resolve()
    assert (folder / "libqux.so").resolve() == (site / "foo_pkg/lib/libqux.so").resolve()
    assert (folder / "libqux.so.2").resolve() == (site / "foo_pkg/lib/libqux.so").resolve()
    # Relative links: the layer still works when mounted elsewhere.
    assert links["libfoo.so.1"] == "../../../lib/python3.11/site-packages/foo_pkg/lib/libfoo.so.1"
    # A's own extension, found through its RPATH, is unaffected.
    res = run([python_of(layer_a), "-c", "import _a; print(_a.value())"], tools.env())
    assert res.returncode == 0 and res.stdout == "42\n", res.stderr


def test_dynlib_is_idempotent_and_check_reports_up_to_date(tools, layer_a):
    folder = layer_a / DYNLIB
    before = {p.name: os.lstat(p).st_ino for p in folder.iterdir()}
    res = tools("dynlib", layer_a)
    assert res.returncode == 0, res.stderr
    assert "is up to date: 3 links" in res.stdout
    assert {p.name: os.lstat(p).st_ino for p in folder.iterdir()} == before
    res = tools("dynlib", layer_a, "--check")
    assert res.returncode == 0, res.stdout + res.stderr


def test_dynlib_removes_links_whose_library_is_gone_and_check_changes_nothing(
    tools, built, tmp_path
):
    venv = make_venv(tmp_path / "E", tools.env())
    lib = put(built.libfoo, venv, "gone_pkg/libfoo.so.1")
    res = tools("dynlib", venv, "--check")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "+ libfoo.so.1" in res.stdout
    assert links_of(venv) is None  # --check created nothing
    tools("dynlib", venv, check=True)
    assert set(links_of(venv)) == {"libfoo.so.1"}

    lib.unlink()
    res = tools("dynlib", venv, "--check")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "- libfoo.so.1" in res.stdout and "target gone" in res.stdout
    assert set(links_of(venv)) == {"libfoo.so.1"}  # still there: --check changes nothing
    res = tools("dynlib", venv)
    assert res.returncode == 0, res.stderr
    assert links_of(venv) == {}
    assert tools("dynlib", venv, "--check").returncode == 0


def test_name_clash_is_an_error_naming_both_and_exclude_resolves_it(tools, built, tmp_path):
    venv = make_venv(tmp_path / "D", tools.env())
    one = put(built.libbar_one, venv, "bar_one/libbar.so")
    two = put(built.libbar_two, venv, "bar_two/libbar.so")
    # Byte-identical copies in two packages are no clash.
    put(built.libfoo, venv, "dup_one/libfoo.so.1")
    put(built.libfoo, venv, "dup_two/libfoo.so.1")

    res = tools("dynlib", venv)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.startswith("pyshim: error: 2 different files would be linked as libbar.so")
    assert f"libbar.so: {one}\n" in res.stderr and f"libbar.so: {two}\n" in res.stderr
    assert "--exclude 'bar_two/libbar.so'" in res.stderr
    assert "libfoo.so.1" not in res.stderr
    assert links_of(venv) is None  # nothing changed

    res = tools("dynlib", venv, "--exclude", "bar_two/**")
    assert res.returncode == 0, res.stderr
    assert f"excluded: {two} (by 'bar_two/**', --exclude)" in res.stdout
    assert set(links_of(venv)) == {"libbar.so", "libfoo.so.1"}
    assert (venv / DYNLIB / "libbar.so").resolve() == one.resolve()
    assert (venv / DYNLIB / "libfoo.so.1").resolve() == (
        venv / SITE / "dup_one/libfoo.so.1"
    ).resolve()

    # In a shim venv the exclusion can live in pyshim.toml, and a later
    # `pyshim install` (which rewrites pyshim.toml) keeps it.
    tools("install", venv, check=True)
    config = venv / "pyshim.toml"
    config.write_text(config.read_text() + '\n[dynlib]\nexclude = ["bar_two"]\n')
    line = config.read_text().splitlines().index('exclude = ["bar_two"]') + 1
    shutil.rmtree(venv / DYNLIB)
    res = tools("dynlib", venv)
    assert res.returncode == 0, res.stderr
    assert f"excluded: {two} (by 'bar_two', {config}:{line}:12)" in res.stdout
    assert (venv / DYNLIB / "libbar.so").resolve() == one.resolve()
    tools("install", venv, "--env", "X=1", check=True)
    assert read_config(venv)["dynlib"]["exclude"] == ["bar_two"]
    assert read_config(venv)["env"] == {"X": "1"}
    assert tools("dynlib", venv, "--check").returncode == 0


# --------------------------------------------------------------------------
# --layer


def test_the_layer_is_what_fixes_the_import(tools, built, layer_a, tmp_path):
    venv = make_venv(tmp_path / "B0", tools.env())
    fill_b(venv, built)
    import_b = [python_of(venv), "-c", "import _b; print(_b.value())"]

    res = run(import_b, tools.env())  # a plain venv
    assert res.returncode == 1
    assert f"ImportError: libfoo.so.1: {LOADER_ERROR}" in res.stderr, res.stderr

    tools("install", venv, check=True)  # a shim venv, no layer
    res = run(import_b, tools.env())
    assert res.returncode == 1
    assert f"ImportError: libfoo.so.1: {LOADER_ERROR}" in res.stderr, res.stderr

    res = tools("install", venv, "--layer", layer_a)
    assert res.returncode == 0, res.stderr
    res = run(import_b, tools.env())
    assert res.returncode == 0, res.stderr
    assert res.stdout == "42\n"


def test_install_with_layer_writes_library_path_and_links_its_own_libraries(
    tools, layer_a, layer_b
):
    config = read_config(layer_b)
    assert config["library_path"] == [str(layer_b / DYNLIB), str(layer_a / DYNLIB)]
    assert config["library_path_position"] == "append"
    # install ran dynlib for B itself: the layer above B finds libbaz there.
    assert set(links_of(layer_b)) == {"libbaz.so.1"}
    # A second identical install changes nothing.
    res = tools("install", layer_b, "--layer", layer_a)
    assert res.returncode == 0, res.stderr
    assert "nothing changed" in res.stdout


def test_layer_refusals(tools, layer_a, layer_b, tmp_path):
    res = tools("install", layer_b, "--layer", layer_a, "--library-path", tmp_path)
    assert res.returncode == 2
    assert "--layer and --library-path cannot be mixed" in res.stderr
    bare = make_venv(tmp_path / "bare", tools.env())
    res = tools("install", layer_b, "--layer", bare)
    assert res.returncode == 2
    assert f"{bare / DYNLIB} does not exist" in res.stderr
    assert f"pyshim dynlib {bare}" in res.stderr
    res = tools("install", layer_b, "--layer", tmp_path / "nowhere")
    assert res.returncode == 2 and "not a virtual environment" in res.stderr
    # Nothing of that changed B.
    assert read_config(layer_b)["library_path"] == [str(layer_b / DYNLIB), str(layer_a / DYNLIB)]


WORKERS = LOADER_VIEW + textwrap.dedent(
    """
    import json, multiprocessing, os, sys

    def work(_):
        import _b
        return {"value": _b.value(), "pid": os.getpid(), "executable": sys.executable,
                "loader": loader_library_path()}

    if __name__ == "__main__":
        out = {"parent": work(0)}
        for method in ("spawn", "forkserver"):
            with multiprocessing.get_context(method).Pool(1) as pool:
                out[method] = pool.apply(work, (0,))
        print(json.dumps(out))
    """
)


def test_import_works_in_parent_spawn_and_forkserver_workers(tools, layer_a, layer_b, tmp_path):
    script = tmp_path / "workers.py"
    script.write_text(WORKERS)
    res = run([python_of(layer_b), script], tools.env())
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    layers = f"{layer_b / DYNLIB}:{layer_a / DYNLIB}"
    for who in ("parent", "spawn", "forkserver"):
        assert out[who]["value"] == 42, who
        assert out[who]["executable"] == str(python_of(layer_b)), who
        assert out[who]["loader"] == layers, who
    assert len({out[who]["pid"] for who in out}) == 3


SH_CHILD = (
    "import _b, subprocess; print(_b.value(), flush=True); "
    "subprocess.run(['/bin/sh', '-c', "
    "'printf \"%s|%s\" \"${LD_LIBRARY_PATH-<unset>}\" \"${PYSHIM_ORIG_LD_LIBRARY_PATH-<unset>}\"'])"
)


@pytest.mark.parametrize("caller", [None, "value"])
def test_sh_child_gets_the_callers_library_path(tools, layer_a, layer_b, tmp_path, caller):
    value = None
    if caller == "value":
        value = str(tmp_path / "caller-lib")
        os.mkdir(value)
    res = run([python_of(layer_b), "-c", SH_CHILD], tools.env(value))
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"42\n{value if value is not None else '<unset>'}|<unset>"


def test_a_callers_library_path_overrides_a_layer(tools, built, layer_b):
    # Layers are appended: a caller's LD_LIBRARY_PATH comes first.
    code = "import _b; print(_b.value())"
    res = run([python_of(layer_b), "-c", code], tools.env(str(built.libfoo_override.parent)))
    assert res.returncode == 0, res.stderr
    assert res.stdout == "7\n"


def test_three_layer_stack(tools, built, layer_a, layer_b, tmp_path):
    import_c = "import _c; print(_c.value())"

    # B's dynlib alone is not enough: libbaz.so.1 needs A's libfoo.so.1.
    partial = make_venv(tmp_path / "C0", tools.env())
    put(built.ext_c, partial, built.ext_c.name)
    res = run([python_of(partial), "-c", import_c], tools.env())
    assert f"ImportError: libbaz.so.1: {LOADER_ERROR}" in res.stderr, res.stderr
    tools("install", partial, "--library-path-append", layer_b / DYNLIB, check=True)
    res = run([python_of(partial), "-c", import_c], tools.env())
    assert f"ImportError: libfoo.so.1: {LOADER_ERROR}" in res.stderr, res.stderr

    # --layer B brings B's own library_path along, so C on B on A names only B.
    # (init: the walkthrough's way, creating the venv and installing at once.)
    venv = tmp_path / "C"
    tools("init", venv, "--python", PYTHON, "--layer", layer_b, check=True)
    assert links_of(venv) == {}  # its own dynlib folder exists for layers above it
    put(built.ext_c, venv, built.ext_c.name)
    assert read_config(venv)["library_path"] == [
        str(venv / DYNLIB), str(layer_b / DYNLIB), str(layer_a / DYNLIB)
    ]
    res = run([python_of(venv), "-c", import_c], tools.env())
    assert res.returncode == 0, res.stderr
    assert res.stdout == "142\n"
    spawn = (
        "import multiprocessing as mp\n"
        "def work(_):\n    import _c; return _c.value()\n"
        "if __name__ == '__main__':\n"
        "    with mp.get_context('spawn').Pool(1) as pool: print(pool.apply(work, (0,)))\n"
    )
    script = tmp_path / "spawn_c.py"
    script.write_text(spawn)
    res = run([python_of(venv), script], tools.env())
    assert res.returncode == 0, res.stderr
    assert res.stdout == "142\n"


NEST = LOADER_VIEW + textwrap.dedent(
    """
    import json, os, subprocess, sys
    import _b

    depth, last, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    with open(os.path.join(out, f"{depth:02d}.json"), "w") as f:
        json.dump({"loader": loader_library_path(), "environ": os.environ.get("LD_LIBRARY_PATH"),
                   "bookkeeping": sorted(k for k in os.environ if k.startswith("PYSHIM_")),
                   "value": _b.value(), "pid": os.getpid()}, f)
    if depth < last:
        child = subprocess.run([sys.executable, __file__, str(depth + 1), str(last), out])
        sys.exit(child.returncode)
    """
)


@pytest.mark.parametrize("caller", [None, "value"])
def test_no_growth_after_ten_nested_launches(tools, layer_a, layer_b, tmp_path, caller):
    value = None
    if caller == "value":
        value = str(tmp_path / "caller-lib")
        os.mkdir(value)
    script = tmp_path / "nest.py"
    script.write_text(NEST)
    out = tmp_path / "out"
    out.mkdir()
    res = run([python_of(layer_b), script, 1, 10, out], tools.env(value))
    assert res.returncode == 0, res.stderr
    seen = [json.loads((out / f"{d:02d}.json").read_text()) for d in range(1, 11)]
    layers = f"{layer_b / DYNLIB}:{layer_a / DYNLIB}"
    expected = layers if value is None else f"{value}:{layers}"
    for depth, hop in enumerate(seen, 1):
        assert hop["loader"] == expected, depth
        assert hop["environ"] == value, depth
        assert hop["bookkeeping"] == [], depth
        assert hop["value"] == 42, depth
    assert len({hop["pid"] for hop in seen}) == 10
