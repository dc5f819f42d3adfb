"""Derived environments: environments derived from a shim venv keep its
native setup (the README).

A shim venv is made as a user makes one, `pyshim init V --python PY --preload
jemalloc`, with Debian's python3.11 and pyenv's 3.8 and 3.13. From it, each
SCENARIO derives an interpreter the way a user or a tool does:

    realpath             os.path.realpath(sys.executable), run directly (3.11+: the
                         base launcher, so the base interpreter's prefix)
    realpath-subprocess  the same, started by the venv's python with subprocess
    venv-N               `python -m venv`, N deep (each made by the previous one)
    venv-copies-N        `python -m venv --copies`, N deep
    virtualenv           /usr/bin/python3 -m virtualenv -p V/bin/python
    virtualenv-inside    V/bin/python -m virtualenv (Debian's, via PYTHONPATH)
    virtualenv-copies    /usr/bin/python3 -m virtualenv --copies -p V/bin/python
    tox                  a tox env with basepython = V/bin/python
    nox-virtualenv       a nox session, venv_backend="virtualenv"
    nox-venv             a nox session, venv_backend="venv"
    build-virtualenv     `python -m build` run by V/bin/python: the probe runs in
    build-venv             setup.py, in the build backend of the isolated env
                           (made by virtualenv, or by venv)
    cp                   `cp` of the venv's launcher into another folder, with no
                         pyshim.toml near it (only the stamp tells it what to do)

and the shared probe (derived/probe.py) reports, for the derived interpreter
and its multiprocessing spawn worker: sys.executable, sys.prefix, the mapped
preloads and the loader variables; and for a `/bin/sh -c` child of each: the
environment it was given and what the shell and a grep map. Checked: jemalloc
is mapped in both Python processes, each reports the expected executable and
prefix, and the /bin/sh children get the caller's LD_PRELOAD / LD_LIBRARY_PATH
back exactly (unset stays unset) with no preload of the shim mapped.

Then: an edit of V/pyshim.toml (a second preload, an [env] variable) reaches
the next launch of the venv, of its base launcher and of derived venvs with
no reinstall; and venvs under a path with a space, a tab, quotes and
non-ASCII letters work in both layouts (default copies and --symlink).

Everything runs offline. How each tool is made to:
- virtualenv: --no-seed (VIRTUALENV_NO_SEED=1 for tox and nox). Seeding is
  beside the point here, and Debian's virtualenv has no pip wheel for 3.13.
- tox 3: skipsdist, and list_dependencies_command not calling pip.
- nox: venv_params=--no-seed / --without-pip.
- build: PIP_NO_INDEX=1 PIP_FIND_LINKS=/usr/share/python-wheels (Debian's
  setuptools and wheel wheels); derived/run_debian_tool.py says why build is
  not reached through PYTHONPATH, derived/buildproj/setup.py how Debian's
  setuptools wheel is made to build a wheel on pyenv's interpreters.
When a tool step fails, the same scenario is tried on a plain venv of the same
interpreter (no pyshim): if that fails too, the tool cannot do it on this
machine and the test is skipped with the tool's message; otherwise it fails.
"""

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

from conftest import HERE, all_interpreters, caller_env, links_to_base_launcher, run

DERIVED = HERE / "derived"
PROBE = DERIVED / "probe.py"
RUN_DEBIAN_TOOL = DERIVED / "run_debian_tool.py"
BUILD_PROJECT = DERIVED / "buildproj"

DEBIAN_PYTHON = Path("/usr/bin/python3")
DEBIAN_DIST_PACKAGES = "/usr/lib/python3/dist-packages"
DEBIAN_WHEELS = Path("/usr/share/python-wheels")

INTERPRETERS = ("debian3.11", "cpython3.8", "cpython3.13")
CALLERS = ("unset", "set")  # the caller's LD_PRELOAD / LD_LIBRARY_PATH

# Run with `python -c SNIPPET SCRIPT ARGS...` by the venv's python: runs
# SCRIPT ARGS through the real file behind sys.executable, as code that
# resolves sys.executable does (CPython's test_subprocess among them).
VIA_REALPATH_SUBPROCESS = (
    "import os, subprocess, sys; "
    "sys.exit(subprocess.run([os.path.realpath(sys.executable)] + sys.argv[1:]).returncode)"
)


def interp_params():
    out = []
    for it in all_interpreters():
        if it.id in INTERPRETERS:
            marks = [pytest.mark.skip(reason=it.missing_reason)] if it.path is None else []
            out.append(pytest.param(it, id=it.id, marks=marks))
    assert len(out) == len(INTERPRETERS)
    return out


def cli(stage) -> Path:
    """The management CLI: PREFIX/bin/pyshim (stage.cli from 0.2 on; in 0.1
    one binary was both the CLI and the launcher)."""
    return getattr(stage, "cli", stage.shim)


def minimal_env(home: Path) -> Dict[str, str]:
    """conftest's base_env for a given HOME (virtualenv keeps a cache there)."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
            "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}


# --------------------------------------------------------------------------
# Running steps


class ToolFailed(Exception):
    """A step that makes the derived environment failed (not an assertion)."""

    def __init__(self, message: str, last_line: str):
        super().__init__(message)
        self.last_line = last_line


def output(res) -> str:
    return (f"stdout: {res.stdout.decode(errors='replace')[-3000:]}\n"
            f"stderr: {res.stderr.decode(errors='replace')[-3000:]}")


def step(argv, env, **kw) -> subprocess.CompletedProcess:
    res = run(argv, env, timeout=300, **kw)
    if res.returncode != 0:
        shown = " ".join(os.fspath(a) for a in argv)
        lines = (res.stderr or res.stdout).decode(errors="replace").strip().splitlines()
        raise ToolFailed(f"`{shown}` exited {res.returncode}\n{output(res)}",
                         lines[-1] if lines else f"exit {res.returncode}")
    return res


def run_probe(command: List, env: Dict[str, str]) -> dict:
    res = run([*command, PROBE], env)
    assert res.returncode == 0, (
        f"the probe through {[os.fspath(c) for c in command]} exited {res.returncode}\n"
        f"{output(res)}")
    return json.loads(res.stdout)


def python_fact(python: Path, expr: str, env: Dict[str, str]):
    res = run([python, "-c", f"import json, os, sys; print(json.dumps({expr}))"], env)
    assert res.returncode == 0, f"{python} -c {expr!r} exited {res.returncode}\n{output(res)}"
    return json.loads(res.stdout)


_real_prefixes: Dict[str, str] = {}


def real_prefix(interp) -> str:
    """The real interpreter's prefix: every derived interpreter's
    sys.base_prefix, and the sys.prefix of a launcher outside any venv (CPython
    falls back to its compiled-in prefix)."""
    if interp.id not in _real_prefixes:
        _real_prefixes[interp.id] = python_fact(
            interp.path, "sys.base_prefix", minimal_env(Path("/nonexistent")))
    return _real_prefixes[interp.id]


def has_module(module: str) -> bool:
    res = subprocess.run(
        [str(DEBIAN_PYTHON), "-c", f"import importlib.util as u, sys; "
         f"sys.exit(u.find_spec({module!r}) is None)"], capture_output=True)
    return res.returncode == 0


def require_debian_module(module: str, package: str):
    if not DEBIAN_PYTHON.exists() or not has_module(module):
        pytest.skip(f"{module} is not importable by {DEBIAN_PYTHON} "
                    f"(apt-get install {package})")


# --------------------------------------------------------------------------
# Shim venvs


@dataclass(frozen=True)
class SourceVenv:
    """What a scenario derives from: a shim venv, or the control (a plain
    venv of the same interpreter)."""

    root: Path
    interp: object

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def config(self) -> Path:
        return self.root / "pyshim.toml"


def pyshim_init(stage, interp, root: Path, env, *options) -> SourceVenv:
    res = run([cli(stage), "init", root, "--python", interp.path, "--preload", "jemalloc",
               *options], env)
    assert res.returncode == 0, (
        f"pyshim init {root} --python {interp.path} --preload jemalloc "
        f"{' '.join(options)} exited {res.returncode}\n{output(res)}")
    return SourceVenv(root, interp)


def plain_venv(interp, root: Path, env) -> SourceVenv:
    """The control: a venv of the same interpreter without pyshim."""
    step([interp.path, "-m", "venv", "--without-pip", root], env)
    return SourceVenv(root, interp)


@pytest.fixture(scope="session")
def shim_venv(stage, jemalloc, tmp_path_factory) -> Callable[[object], SourceVenv]:
    """One shim venv per interpreter, shared by the scenarios (which only
    read it: what they derive goes to their own tmp_path)."""
    made: Dict[str, SourceVenv] = {}

    def get(interp) -> SourceVenv:
        if interp.id not in made:
            root = tmp_path_factory.mktemp(f"shim-{interp.id}") / "venv"
            made[interp.id] = pyshim_init(stage, interp, root, minimal_env(root.parent))
        return made[interp.id]

    return get


@pytest.fixture(scope="session")
def tcmalloc() -> Path:
    path = Path("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4")
    if not path.exists():
        pytest.skip(f"{path} not installed (apt-get install libtcmalloc-minimal4)")
    return path


# --------------------------------------------------------------------------
# Deriving interpreters


@dataclass
class Derived:
    """One derived interpreter and what it must report."""

    executable: Path  # its sys.executable
    prefix: Path  # its sys.prefix
    # argv that runs a script (appended) through it; None once it is gone
    # (build deletes its isolated environment)
    command: Optional[List] = None
    # probe results the tool produced itself, with the caller variant "unset"
    tool_reports: List[dict] = field(default_factory=list)


def realpath_of(venv: SourceVenv, env) -> Path:
    return Path(python_fact(venv.python, "os.path.realpath(sys.executable)", env))


def realpath_prefix(venv: SourceVenv) -> Path:
    """sys.prefix of realpath(sys.executable) run directly. Up to 3.10 that
    is the venv's own launcher, so it finds the venv; on CPython 3.11+ it is
    the base launcher (bin/python3.X links to it, the README), which runs the
    base interpreter, as a plain venv's realpath does."""
    if links_to_base_launcher(venv.root):
        assert realpath_of(venv, minimal_env(venv.root.parent)).parent == (
            venv.root / ".pyshim/base/bin")
        return Path(real_prefix(venv.interp))
    return venv.root


def derive_realpath(venv: SourceVenv, work: Path, env, via_subprocess: bool) -> List[Derived]:
    real = realpath_of(venv, env)
    command = [venv.python, "-c", VIA_REALPATH_SUBPROCESS] if via_subprocess else [real]
    return [Derived(real, realpath_prefix(venv), command)]


def derive_venv_chain(venv: SourceVenv, work: Path, env, depth: int, copies: bool) -> List[Derived]:
    python = venv.python
    for level in range(1, depth + 1):
        root = work / f"venv{level}"
        step([python, "-m", "venv", "--without-pip", *(["--copies"] if copies else []), root], env)
        python = root / "bin" / "python"
    return [Derived(python, root, [python])]


def derive_virtualenv(venv: SourceVenv, work: Path, env, inside: bool = False,
                      copies: bool = False) -> List[Derived]:
    require_debian_module("virtualenv", "python3-virtualenv")
    root = work / "virtualenv"
    options = ["--no-seed", *(["--copies"] if copies else [])]
    if inside:
        # virtualenv run by the shim venv itself: Debian's virtualenv is not in
        # it, PYTHONPATH reaches it (the venv has no system site-packages, and
        # pyenv's interpreters have other ones anyway).
        step([venv.python, "-m", "virtualenv", *options, root],
             {**env, "PYTHONPATH": DEBIAN_DIST_PACKAGES})
    else:
        step([DEBIAN_PYTHON, "-m", "virtualenv", *options, "-p", venv.python, root], env)
    python = root / "bin" / "python"
    return [Derived(python, root, [python])]


TOX_INI = """\
[tox]
skipsdist = true
envlist = shim

[testenv:shim]
basepython = {python}
passenv = LD_PRELOAD LD_LIBRARY_PATH
# tox 3 lists the env's packages with pip, which --no-seed envs lack
list_dependencies_command = python -c "print()"
commands = python {probe} --out {{toxinidir}}/report.json
"""


def derive_tox(venv: SourceVenv, work: Path, env) -> List[Derived]:
    require_debian_module("tox", "tox")
    project = work / "toxproject"
    project.mkdir()
    (project / "tox.ini").write_text(TOX_INI.format(python=venv.python, probe=PROBE))
    step([DEBIAN_PYTHON, "-m", "tox", "-c", project / "tox.ini", "--workdir", work / "toxwork",
          "-e", "shim"], {**env, "VIRTUALENV_NO_SEED": "1"}, cwd=project)
    root = work / "toxwork" / "shim"
    report = json.loads((project / "report.json").read_text())
    return [Derived(root / "bin" / "python", root, [root / "bin" / "python"], [report])]


NOXFILE = """\
import nox

@nox.session(python={python!r}, venv_backend={backend!r}, venv_params=[{no_pip!r}])
def shim(session):
    session.run("python", {probe!r}, "--out", {out!r})
"""


def derive_nox(venv: SourceVenv, work: Path, env, backend: str) -> List[Derived]:
    require_debian_module("nox", "python3-nox")
    if backend == "virtualenv":
        require_debian_module("virtualenv", "python3-virtualenv")
    project = work / "noxproject"
    project.mkdir()
    report_file = project / "report.json"
    no_pip = "--no-seed" if backend == "virtualenv" else "--without-pip"
    (project / "noxfile.py").write_text(NOXFILE.format(
        python=str(venv.python), backend=backend, no_pip=no_pip, probe=str(PROBE),
        out=str(report_file)))
    step([DEBIAN_PYTHON, "-m", "nox", "-f", project / "noxfile.py", "--envdir",
          work / "noxenvs", "-s", "shim"], env, cwd=project)
    # nox names the env after the session and its python, or a hash of that
    # when the path would be long: the one folder in --envdir
    envs = list((work / "noxenvs").iterdir())
    assert len(envs) == 1, envs
    root = envs[0]
    report = json.loads(report_file.read_text())
    return [Derived(root / "bin" / "python", root, [root / "bin" / "python"], [report])]


def derive_build(venv: SourceVenv, work: Path, env, isolation: str) -> List[Derived]:
    """`python -m build --sdist --wheel` by the shim venv's python, with the
    isolated build environment made by virtualenv or by venv. setup.py runs
    the probe in the backend, in each of them."""
    require_debian_module("build", "python3-build")
    if isolation == "virtualenv":
        require_debian_module("virtualenv", "python3-virtualenv")
    wheels = sorted(p.name for p in DEBIAN_WHEELS.glob("*.whl")) if DEBIAN_WHEELS.is_dir() else []
    for name, package in (("setuptools-", "python3-setuptools-whl"), ("wheel-", "python3-wheel-whl")):
        if not any(w.startswith(name) for w in wheels):
            pytest.skip(f"no {name}*.whl in {DEBIAN_WHEELS} (apt-get install {package})")
    project, reports, tmpdir = work / "project", work / "reports", work / "tmp"
    shutil.copytree(BUILD_PROJECT, project)
    reports.mkdir()
    tmpdir.mkdir()
    build_env = {
        **env,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(DEBIAN_WHEELS),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "NO_VIRTUALENV": "1" if isolation == "venv" else "0",
        "TMPDIR": str(tmpdir),  # the isolated environments are made here
        "PROBE_DIR": str(DERIVED),
        "PROBE_REPORTS": str(reports),
    }
    step([venv.python, RUN_DEBIAN_TOOL, "build", "--sdist", "--wheel", "--outdir", work / "dist",
          project], build_env, cwd=project)
    built = sorted(p.name for p in (work / "dist").iterdir())
    assert any(n.endswith(".tar.gz") for n in built) and any(n.endswith(".whl") for n in built), built
    out = []
    for path in sorted(reports.iterdir()):
        report = json.loads(path.read_text())
        prefix = Path(report["parent"]["prefix"])
        # the backend ran in an isolated environment of build, not in V
        assert prefix.parent == tmpdir and prefix.name.startswith("build-env-"), (
            f"setup.py ran in {prefix}, not in an isolated build environment")
        out.append(Derived(prefix / "bin" / "python", prefix, None, [report]))
    hooks = [r.tool_reports[0]["hook"][:1] for r in out]
    assert ["sdist"] in hooks and ["bdist_wheel"] in hooks, f"setup.py ran for {hooks}"
    return out


def derive_cp(venv: SourceVenv, work: Path, env) -> List[Derived]:
    real = realpath_of(venv, env)
    dest = work / "elsewhere" / "python3"
    dest.parent.mkdir()
    step(["cp", real, dest], env)
    for folder in (dest.parent, dest.parent.parent):
        assert not (folder / "pyshim.toml").exists()
    # outside any venv: CPython falls back to its compiled-in prefix
    return [Derived(dest, Path(real_prefix(venv.interp)), [dest])]


SCENARIOS: Dict[str, Callable[..., List[Derived]]] = {
    "realpath": partial(derive_realpath, via_subprocess=False),
    "realpath-subprocess": partial(derive_realpath, via_subprocess=True),
    "venv-1": partial(derive_venv_chain, depth=1, copies=False),
    "venv-2": partial(derive_venv_chain, depth=2, copies=False),
    "venv-3": partial(derive_venv_chain, depth=3, copies=False),
    "venv-copies-1": partial(derive_venv_chain, depth=1, copies=True),
    "venv-copies-2": partial(derive_venv_chain, depth=2, copies=True),
    "virtualenv": derive_virtualenv,
    "virtualenv-inside": partial(derive_virtualenv, inside=True),
    "virtualenv-copies": partial(derive_virtualenv, copies=True),
    "tox": derive_tox,
    "nox-virtualenv": partial(derive_nox, backend="virtualenv"),
    "nox-venv": partial(derive_nox, backend="venv"),
    "build-virtualenv": partial(derive_build, isolation="virtualenv"),
    "build-venv": partial(derive_build, isolation="venv"),
    "cp": derive_cp,
}


def derive_or_skip(scenario: str, venv: SourceVenv, work: Path, env) -> List[Derived]:
    """Run the scenario on the shim venv. If a tool step fails, run it on a
    plain venv of the same interpreter: a failure there too means the tool
    cannot do it here (skip, with its message); else the shim is to blame."""
    derive = SCENARIOS[scenario]
    (work / "shim").mkdir()
    (work / "control").mkdir()
    try:
        return derive(venv, work / "shim", env)
    except ToolFailed as with_shim:
        try:
            derive(plain_venv(venv.interp, work / "control" / "venv", env), work / "control", env)
        except ToolFailed as without_shim:
            pytest.skip(f"{scenario} fails with {venv.interp.id} even without pyshim: "
                        f"{without_shim.last_line}")
        pytest.fail(f"{scenario} works from a plain {venv.interp.id} venv but not from "
                    f"the shim venv:\n{with_shim}", pytrace=False)


# --------------------------------------------------------------------------
# What every probe result must show


def watched(env: Dict[str, str]) -> Dict[str, str]:
    """The variables the probe reports (see probe._watched_env)."""
    return {k: v for k, v in env.items()
            if k in ("LD_PRELOAD", "LD_LIBRARY_PATH") or k.startswith(("PYSHIM_", "ITEST_"))}


def assert_probe(result: dict, *, executable: Path, prefix: Path, base_prefix: str,
                 caller: Dict[str, str], preloads, config_env=None):
    """Python processes (the interpreter, its spawn worker): the expected
    sys.executable and sys.prefix, every configured preload mapped and no
    other, and the caller's environment (plus [env]). /bin/sh children: given
    exactly that environment, and mapping only what the caller preloads."""
    # /proc/PID/maps names the file a soname link leads to
    caller_preloads = {os.path.realpath(p)
                       for p in caller.get("LD_PRELOAD", "").replace(":", " ").split() if p}
    preloads = {os.path.realpath(p) for p in preloads}
    expected_env = {**watched(caller), **(config_env or {})}
    for name in ("parent", "spawn"):
        r, where = result[name], f"[{name} of {executable}]"
        assert r["executable"] == str(executable), where
        assert r["prefix"] == str(prefix), f"{where} sys.prefix"
        assert r["base_prefix"] == base_prefix, f"{where} sys.base_prefix"
        mapped = {m for m in r["mapped"] if "libpyshim-restore" not in m}
        assert mapped == preloads | caller_preloads, (
            f"{where} mapped {sorted(mapped)}, expected the preloads {sorted(preloads)}"
            f" and the caller's {sorted(caller_preloads)}")
        assert r["env"] == expected_env, f"{where} environment"
    assert result["spawn"]["ppid"] == result["parent"]["pid"]
    for name in ("sh", "spawn_sh"):
        r, where = result[name], f"[{name} of {executable}]"
        assert r["env"] == expected_env, f"{where} environment of a non-Python child"
        assert set(r["mapped"]) == caller_preloads, f"{where} /bin/sh maps {r['mapped']}"
        assert set(r["grep_mapped"]) == caller_preloads, f"{where} grep maps {r['grep_mapped']}"


# --------------------------------------------------------------------------
# The tests


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("interp", interp_params())
def test_derived_interpreter_keeps_the_preload(interp, scenario, shim_venv, jemalloc, testlibs,
                                               base_env, tmp_path):
    venv = shim_venv(interp)
    derived = derive_or_skip(scenario, venv, tmp_path, base_env)
    assert derived, "nothing was derived"
    expect = dict(base_prefix=real_prefix(interp), preloads=[jemalloc])
    for d in derived:
        for report in d.tool_reports:
            assert_probe(report, executable=d.executable, prefix=d.prefix, caller=base_env,
                         **expect)
        if d.command is not None:
            for variant in CALLERS:
                env = caller_env(variant, base_env, tmp_path, testlibs)
                assert_probe(run_probe(d.command, env), executable=d.executable,
                             prefix=d.prefix, caller=env, **expect)


def edit_config(config: Path, add_preload: Path, env_name: str, env_value: str):
    """A hand edit of a pyshim.toml written by `pyshim init`: one more
    preload, one more [env] variable; the rest kept as written."""
    import tomllib  # the suite runs with /usr/bin/python3.11

    text = config.read_text()
    before = tomllib.loads(text)
    assert "preload = [" in text, text
    text = text.replace("preload = [", f"preload = [{json.dumps(str(add_preload))}, ", 1)
    line = f"{env_name} = {json.dumps(env_value)}\n"
    if "\n[env]\n" in text:
        text = text.replace("\n[env]\n", f"\n[env]\n{line}", 1)
    else:
        text += f"\n[env]\n{line}"
    after = tomllib.loads(text)
    assert after["preload"] == [str(add_preload), *before["preload"]], text
    assert after["env"] == {**before.get("env", {}), env_name: env_value}, text
    config.write_text(text)


@pytest.mark.parametrize("interp", interp_params())
def test_config_edit_is_seen_by_base_launcher_and_derived_venvs(
        interp, stage, jemalloc, tcmalloc, base_env, tmp_path):
    venv = pyshim_init(stage, interp, tmp_path / "venv", base_env)
    base = Path(python_fact(venv.python, "sys._base_executable", base_env))
    # the README: a stamped file of its own, two levels below the venv root
    assert not base.is_symlink() and base.is_file(), base
    assert venv.root in base.parents and base.parent != venv.root / "bin", base
    for name, options in (("derived", []), ("derived-copies", ["--copies"])):
        step([venv.python, "-m", "venv", "--without-pip", *options, tmp_path / name], base_env)
    real = real_prefix(interp)
    launchers = {  # launcher -> its sys.prefix
        venv.python: venv.root,
        base: Path(real),
        tmp_path / "derived" / "bin" / "python": tmp_path / "derived",
        tmp_path / "derived-copies" / "bin" / "python": tmp_path / "derived-copies",
    }
    for launcher, prefix in launchers.items():
        assert_probe(run_probe([launcher], base_env), executable=launcher, prefix=prefix,
                     base_prefix=real, caller=base_env, preloads=[jemalloc])

    edit_config(venv.config, tcmalloc, "ITEST_EDITED", "by hand, no reinstall")

    for launcher, prefix in launchers.items():
        assert_probe(run_probe([launcher], base_env), executable=launcher, prefix=prefix,
                     base_prefix=real, caller=base_env, preloads=[jemalloc, tcmalloc],
                     config_env={"ITEST_EDITED": "by hand, no reinstall"})


# A space (the loader splits LD_PRELOAD on it: the README), a tab, both
# quotes (TOML and shell quoting) and non-ASCII letters.
ODD_NAME = "my venvs\t'q\" Grüße-日本"


@pytest.mark.parametrize("layout", ["copy", "symlink"])
@pytest.mark.parametrize("interp", interp_params())
def test_venv_at_an_odd_path(interp, layout, stage, jemalloc, testlibs, base_env, tmp_path):
    odd = tmp_path / ODD_NAME
    odd.mkdir()
    venv = pyshim_init(stage, interp, odd / "shim venv é", base_env,
                       *(["--symlink"] if layout == "symlink" else []))
    derived = odd / "derived venv ü"
    step([venv.python, "-m", "venv", "--without-pip", derived], base_env)
    launchers = {venv.python: venv.root, derived / "bin" / "python": derived}
    if layout == "copy":
        launchers[realpath_of(venv, base_env)] = realpath_prefix(venv)
    for launcher, prefix in launchers.items():
        for variant in CALLERS:
            env = caller_env(variant, base_env, tmp_path, testlibs)
            assert_probe(run_probe([launcher], env), executable=launcher, prefix=prefix,
                         base_prefix=real_prefix(interp), caller=env, preloads=[jemalloc])


# --------------------------------------------------------------------------
# No site-time cost for sys._base_executable on CPython 3.11+


@pytest.mark.parametrize("interp", interp_params())
def test_base_executable_without_a_pth_from_311(interp, shim_venv, jemalloc, tmp_path):
    """From 3.11 the shim venv's site-packages holds no file of pyshim's (no
    .pth for site to open and compile at every start): bin/python3.X links to
    the base launcher and getpath makes that sys._base_executable. Up to
    3.10 the .pth stays. Either way sys._base_executable is the base
    launcher and a venv made from the shim venv runs with its preload."""
    venv = shim_venv(interp)
    env = minimal_env(tmp_path)
    main = f"python{interp.version[0]}.{interp.version[1]}"
    base = venv.root / ".pyshim" / "base" / "bin" / main
    ours = sorted(p.name for p in venv.root.glob("lib/*/site-packages/*pyshim*"))
    if interp.version >= (3, 11):
        assert ours == [], ours
        assert os.readlink(venv.root / "bin" / main) == f"../.pyshim/base/bin/{main}"
    else:
        assert ours == ["pyshim-base-executable.pth"], ours
    assert python_fact(venv.python, "sys._base_executable", env) == str(base)
    derived = tmp_path / "derived"
    step([venv.python, "-m", "venv", "--without-pip", derived], env)
    maps = python_fact(derived / "bin" / "python",
                       "[l.split()[-1] for l in open('/proc/self/maps') if 'jemalloc' in l][:1]", env)
    assert [os.path.realpath(m) for m in maps] == [os.path.realpath(jemalloc)], maps
