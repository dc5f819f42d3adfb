"""Tool-mode logging (README, "Tool mode", "Verbose"): `-v/--verbose` or
PYSHIM_LOG=debug makes the pyshim CLI log, on stderr, each change it is
about to make and each change made, with the folder's fd, the name relative
to it and the result; without either nothing extra is printed. spdlog does
it, in the CLI only: the launcher binary carries none of it."""

import shutil
from pathlib import Path

import pytest

from conftest import links_to_base_launcher, main_launcher_name, plain_venv, pyshim_tool


def _applied(stderr: str, verb: str, name: str, folder: Path) -> bool:
    """A 'done' line: `pyshim: debug: VERB NAME (fd N = FOLDER): ok`."""
    for line in stderr.splitlines():
        if (line.startswith(f"pyshim: debug: {verb} {name}") and line.endswith(f" = {folder}): ok")
                and " (fd " in line):
            return True
    return False


@pytest.mark.parametrize("how", ["-v", "--verbose", "PYSHIM_LOG=debug"])
def test_install_logs_each_planned_and_applied_step(stage, py, tmp_path, base_env, how):
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    env = dict(base_env)
    args = ["install", venv]
    if how.startswith("PYSHIM_LOG="):
        env["PYSHIM_LOG"] = how.split("=", 1)[1]
    else:
        args.insert(1, how)  # after the subcommand: -v is accepted anywhere
    res = pyshim_tool(stage, *args, env=env)
    assert res.returncode == 0, res.stderr.decode()
    err = res.stderr.decode()
    main = main_launcher_name(py)
    # the plan line comes before the step, then the step with its result
    plan = f"pyshim: debug: plan: write pyshim.toml (fd "
    assert plan in err, err
    assert _applied(err, "write", "pyshim.toml", venv), err
    assert err.index(plan) < err.index("pyshim: debug: write pyshim.toml (fd ")
    # each launcher copy, with its folder (3.11+: bin/python3.X becomes a
    # link to the base launcher, the README's "Why a `.pth`, and when")
    verb = "replace by a symlink" if links_to_base_launcher(venv) else "replace"
    assert _applied(err, verb, main, venv / "bin"), err
    assert _applied(err, "write", main, venv / ".pyshim" / "base" / "bin"), err
    assert _applied(err, "write", "manifest.toml", venv / ".pyshim"), err
    # the result on stdout is as without -v
    assert res.stdout.decode().startswith(f"installed pyshim into {venv}\n")


@pytest.mark.parametrize("level", [None, "", "off", "info", "warn", "warning", "err", "error",
                                   "critical"])
def test_without_verbose_nothing_extra_is_printed(stage, py, tmp_path, base_env, level):
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    env = dict(base_env)
    if level is not None:
        env["PYSHIM_LOG"] = level
    res = pyshim_tool(stage, "install", venv, env=env)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stderr == b""  # stderr is not a terminal: no progress lines either
    res = pyshim_tool(stage, "uninstall", venv, env=env)
    assert res.returncode == 0
    assert res.stderr == b""


def test_pyshim_log_debug_shows_the_links_dynlib_makes(stage, py, tmp_path, base_env, testlibs):
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    site = next((venv / "lib").glob("*/site-packages"))
    (site / "pkg").mkdir()
    shutil.copy2(testlibs.libdir / "libpyshimtest.so", site / "pkg" / "libpyshimtest.so")
    res = pyshim_tool(stage, "dynlib", venv, env={**base_env, "PYSHIM_LOG": "debug"})
    assert res.returncode == 0, res.stderr.decode()
    err = res.stderr.decode()
    dynlib = venv / "share/venv/dynlib"
    target = "../../../lib/" + site.parent.name + "/site-packages/pkg/libpyshimtest.so"
    assert f"pyshim: debug: plan: link libpyshimtest.so -> {target}" in err, err
    assert _applied(err, "make a symlink", f"libpyshimtest.so -> {target}", dynlib), err
    assert _applied(err, "create folder", "dynlib", dynlib.parent), err
    assert (dynlib / "libpyshimtest.so").is_symlink()


def test_uninstall_verbose_logs_the_restore_plan(stage, py, tmp_path, base_env):
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    assert pyshim_tool(stage, "install", venv, env=base_env).returncode == 0
    res = pyshim_tool(stage, "-v", "uninstall", venv, env=base_env)
    assert res.returncode == 0, res.stderr.decode()
    err = res.stderr.decode()
    assert "pyshim: debug: plan: restore bin/" in err, err
    assert _applied(err, "remove", "pyshim.toml", venv), err
    assert _applied(err, "remove folder", ".pyshim", venv), err


def test_logged_names_are_escaped(stage, py, tmp_path, base_env):
    venv = tmp_path / "venv\x1b[31m"
    plain_venv(py, venv, base_env)
    res = pyshim_tool(stage, "install", "-v", venv, env=base_env)
    assert res.returncode == 0, res.stderr.decode()
    assert b"\x1b" not in res.stderr
    assert b"pyshim: debug: write pyshim.toml (fd " in res.stderr


def test_the_launcher_has_no_spdlog(stage):
    launcher = stage.shim.read_bytes()
    cli = stage.cli.read_bytes()
    assert b"spdlog" in cli  # the search finds it where it is
    assert b"spdlog" not in launcher
    assert b"spdlog" not in stage.restore.read_bytes()
