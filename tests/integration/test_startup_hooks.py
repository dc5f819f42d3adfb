"""Startup hooks ([python] startup): a spawned worker re-runs the parent's
plugin loading before it unpickles its target (README, "Startup hooks").

Each test runs a real user-style program (hooks/app.py: plugins loaded by
path into sys.modules, then targets run in spawn/forkserver workers and a
spawn ProcessPoolExecutor), first with the plain interpreter to show the
failure, then through a shim venv made by `pyshim init --startup`."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
HOOKS = HERE / "hooks"
PYSHIM = Path(os.environ.get("PYSHIM_PREFIX", "/nonexistent")) / "bin" / "pyshim"

INTERPRETERS = {
    "debian-3.11": "/usr/bin/python3.11",
    "3.8": "/root/.pyenv/versions/3.8.18/bin/python3.8",
    "3.13": "/root/.pyenv/versions/3.13.0/bin/python3.13",
}


def interpreter(name):
    path = INTERPRETERS[name]
    if not os.access(path, os.X_OK):
        # Fall back to any pyenv build of that minor version.
        minor = name.split(".")[-1]
        found = sorted(Path("/root/.pyenv/versions").glob(f"3.{minor}.*/bin/python3.{minor}"))
        if not found:
            pytest.skip(f"no Python {name} on this machine ({path} missing)")
        path = str(found[-1])
    return path


def clean_env(**extra):
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")}
    env.update(extra)
    return env


def make_project(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(HOOKS, project)
    return project


def init_venv(tmp_path, python, project, hooks=("loader:load_plugins",), extra=()):
    venv = tmp_path / "venv"
    args = [str(PYSHIM), "init", str(venv), "--python", python, "--python-path", str(project)]
    for hook in hooks:
        args += ["--startup", hook]
    subprocess.run(args + list(extra), check=True, capture_output=True, text=True)
    return venv


@pytest.mark.parametrize("name", list(INTERPRETERS))
def test_plugin_targets_fail_plainly_and_work_through_the_shim(tmp_path, name):
    python = interpreter(name)
    project = make_project(tmp_path)

    plain = subprocess.run([python, str(project / "app.py")], cwd=tmp_path, env=clean_env(),
                           capture_output=True, text=True, timeout=120)
    assert plain.returncode == 1, plain.stdout + plain.stderr
    assert "No module named 'myplugin'" in plain.stderr
    assert "spawn exitcode 1" in plain.stdout
    assert "forkserver exitcode 1" in plain.stdout
    assert "pool failed" in plain.stdout

    venv = init_venv(tmp_path, python, project)
    log = tmp_path / "hook.log"
    shim = subprocess.run([str(venv / "bin/python"), str(project / "app.py")], cwd=tmp_path,
                          env=clean_env(HOOK_LOG=str(log)), capture_output=True, text=True,
                          timeout=120)
    assert shim.returncode == 0, shim.stdout + shim.stderr
    assert "spawn exitcode 0" in shim.stdout
    assert "forkserver exitcode 0" in shim.stdout
    assert "pool result 42" in shim.stdout
    assert shim.stderr == ""
    # The hook saw sys.executable = the shim in every interpreter it ran in.
    runs = log.read_text().splitlines()
    assert runs and all(f"executable={venv / 'bin/python'} " in line for line in runs), runs


def test_hooks_run_once_per_interpreter_in_order(tmp_path):
    python = interpreter("debian-3.11")
    project = make_project(tmp_path)
    venv = init_venv(tmp_path, python, project, hooks=("loader:load_plugins", "loader:second"))
    log = tmp_path / "hook.log"
    result = subprocess.run([str(venv / "bin/python"), str(project / "app.py")], cwd=tmp_path,
                            env=clean_env(HOOK_LOG=str(log)), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = log.read_text().splitlines()
    pids = [re.search(r"pid=(\d+)", line).group(1) for line in lines]
    by_pid = {}
    for pid, line in zip(pids, lines):
        by_pid.setdefault(pid, []).append(line.split()[0])
    # Every interpreter ran both hooks exactly once, in the configured order.
    assert all(order == ["load_plugins", "second"] for order in by_pid.values()), by_pid
    # parent, spawn worker, forkserver server, pool worker, resource tracker(s):
    # at least the first four are separate interpreters.
    assert len(by_pid) >= 4, by_pid
    # The parent is one of them: its argv is the app.
    assert any("app.py" in line for line in lines if line.startswith("load_plugins"))


def test_isolated_mode_runs_hooks_and_no_site_does_not(tmp_path):
    python = interpreter("debian-3.11")
    project = make_project(tmp_path)
    venv = init_venv(tmp_path, python, project)
    code = "import sys; print('myplugin' in sys.modules)"
    isolated = subprocess.run([str(venv / "bin/python"), "-I", "-c", code],
                              env=clean_env(), capture_output=True, text=True)
    assert isolated.stdout.strip() == "True", isolated.stderr
    no_site = subprocess.run([str(venv / "bin/python"), "-S", "-c", code],
                             env=clean_env(), capture_output=True, text=True)
    assert no_site.stdout.strip() == "False", no_site.stderr


def test_raising_hook_reports_once_and_the_interpreter_starts(tmp_path):
    python = interpreter("debian-3.11")
    project = make_project(tmp_path)
    venv = init_venv(tmp_path, python, project, hooks=("loader:broken", "loader:load_plugins"))
    result = subprocess.run([str(venv / "bin/python"), "-c",
                             "import sys; print('started', 'myplugin' in sys.modules)"],
                            env=clean_env(), capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.strip() == "started True"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0] == (f"pyshim: startup hook 'loader:broken' (from {venv / 'pyshim.toml'}) "
                        "raised ValueError: plugin registry unreachable")


def test_missing_hook_module_and_function_are_reported(tmp_path):
    python = interpreter("debian-3.11")
    project = make_project(tmp_path)
    venv = init_venv(tmp_path, python, project,
                     hooks=("no_such_module:load", "loader:no_such_function"))
    result = subprocess.run([str(venv / "bin/python"), "-c", "print('started')"],
                            env=clean_env(), capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.strip() == "started"
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("pyshim: startup hook 'no_such_module:load' (from "
                               f"{venv / 'pyshim.toml'}) could not be imported: "
                               "ModuleNotFoundError: No module named 'no_such_module' "
                               "(module 'no_such_module' searched in sys.path = [")
    assert str(project) in lines[0]
    assert lines[1].startswith("pyshim: startup hook 'loader:no_such_function' (from ")
    assert f"module 'loader' ({project / 'loader.py'}) has no 'no_such_function'" in lines[1]


def test_no_trace_of_hooks_reaches_a_shell_child(tmp_path):
    python = interpreter("debian-3.11")
    project = make_project(tmp_path)
    venv = init_venv(tmp_path, python, project)
    code = ("import os, subprocess; "
            "print('in-python', [k for k in os.environ if k.startswith('PYSHIM')], flush=True); "
            "subprocess.run(['/bin/sh', '-c', 'env | grep ^PYSHIM || echo sh-clean'])")
    result = subprocess.run([str(venv / "bin/python"), "-c", code], env=clean_env(),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["in-python []", "sh-clean"]


def test_without_hooks_nothing_is_installed_in_site_packages(tmp_path):
    python = interpreter("debian-3.11")
    venv = tmp_path / "venv"
    subprocess.run([str(PYSHIM), "init", str(venv), "--python", python], check=True,
                   capture_output=True)
    site = next((venv / "lib").glob("python3.*/site-packages"))
    assert not (site / "pyshim-startup.pth").exists()
    project = make_project(tmp_path)
    subprocess.run([str(PYSHIM), "install", str(venv), "--startup", "loader:load_plugins",
                    "--python-path", str(project)], check=True, capture_output=True)
    assert (site / "pyshim-startup.pth").exists()
    assert (site / "_pyshim_startup.py").exists()
    subprocess.run([str(PYSHIM), "uninstall", str(venv)], check=True, capture_output=True)
    assert not (site / "pyshim-startup.pth").exists()
    assert not (site / "_pyshim_startup.py").exists()


@pytest.mark.parametrize("name", ["3.10", "debian-3.11"])
def test_hooks_and_the_base_executable_share_one_pth(tmp_path, name):
    """site opens, reads and compiles every .pth file of site-packages in
    every start: pyshim writes at most one. Up to 3.10 the hook line also
    sets sys._base_executable; from 3.11 bin/python3.X links to the base
    launcher and getpath sets it (the README: "Why a `.pth`, and when")."""
    python = interpreter(name) if name in INTERPRETERS else None
    if python is None:
        found = sorted(Path("/root/.pyenv/versions").glob("3.10.*/bin/python3.10"))
        if not found:
            pytest.skip("no Python 3.10 under /root/.pyenv/versions")
        python = str(found[-1])
    project = make_project(tmp_path)
    venv = init_venv(tmp_path, python, project, hooks=("loader:second",))
    site = next((venv / "lib").glob("python3.*/site-packages"))
    minor = site.parent.name
    base = venv / ".pyshim" / "base" / "bin" / minor
    pth = sorted(p.name for p in site.glob("*.pth") if p.name.startswith("pyshim"))
    assert pth == ["pyshim-startup.pth"], pth
    text = (site / "pyshim-startup.pth").read_text()
    if name == "3.10":
        assert text == (f"import sys;sys._base_executable=sys.prefix+'/.pyshim/base/bin/{minor}';"
                        "import _pyshim_startup;_pyshim_startup.run()\n")
    else:
        assert text == "import _pyshim_startup; _pyshim_startup.run()\n"
    log = tmp_path / "hook.log"
    res = subprocess.run([str(venv / "bin/python"), "-c",
                          "import sys; print(sys._base_executable)"], cwd=tmp_path,
                         env=clean_env(HOOK_LOG=str(log)), capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"{base}\n"
    # The hook ran once in that interpreter.
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["second"]
