"""`--dry-run` on `pyshim install`, `uninstall` and `dynlib` (README,
"Dry run"): the venv is left exactly as it was (every path, mode, content,
link target, inode and mtime), and the plan it prints names exactly the files
the real run then changes."""

import hashlib
import os
import re
import shutil
import stat
from pathlib import Path

import pytest

from conftest import install_venv, plain_venv, pyshim_tool

PLAN_LINE = re.compile(
    r"^would (create folder|write|replace by a symlink|replace by a hard link|replace"
    r"|make a symlink|make a hard link|remove folder|remove) (\S+)"
)


def tree(root: Path) -> dict:
    """Every entry under root (root included), never followed: what a dry
    run must not change."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in [""] + dirnames + filenames:
            path = Path(dirpath) / name if name else Path(dirpath)
            if not name and path != root:
                continue  # each folder is listed once, by its parent
            st = os.lstat(path)
            entry = {"mode": st.st_mode, "ino": st.st_ino, "mtime": st.st_mtime_ns,
                     "uid": st.st_uid, "size": st.st_size}
            if stat.S_ISLNK(st.st_mode):
                entry["target"] = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
            out[str(path)] = entry
    return out


def changed_paths(before: dict, after: dict) -> set:
    """The entries a real run made, replaced or removed. A folder counts when
    it appeared or went: its mtime moves with any change in it."""
    changed = set()
    for path in before.keys() | after.keys():
        old, new = before.get(path), after.get(path)
        if old is None or new is None:
            changed.add(path)
        elif not stat.S_ISDIR(old["mode"]) and old != new:
            changed.add(path)
        elif stat.S_ISDIR(old["mode"]) and stat.S_IFMT(old["mode"]) != stat.S_IFMT(new["mode"]):
            changed.add(path)
    return changed


def planned_paths(stdout: str) -> set:
    return {m.group(2) for m in map(PLAN_LINE.match, stdout.splitlines()) if m}


def dry_then_real(stage, base_env, venv: Path, *args):
    """Runs `pyshim ARGS --dry-run` (the tree must not move), then the real
    command; returns the dry run's stdout."""
    before = tree(venv)
    dry = pyshim_tool(stage, *args, "--dry-run", env=base_env)
    assert dry.returncode == 0, dry.stderr.decode()
    out = dry.stdout.decode()
    assert "nothing was changed" in out, out
    assert tree(venv) == before, "the dry run changed the venv"
    real = pyshim_tool(stage, *args, env=base_env)
    assert real.returncode == 0, real.stderr.decode()
    changed = changed_paths(before, tree(venv))
    planned = planned_paths(out)
    assert changed, "the real run changed nothing: the test would prove nothing"
    assert planned == changed, (
        f"dry run printed:\n{out}\nnot planned: {sorted(changed - planned)}\n"
        f"planned, not changed: {sorted(planned - changed)}"
    )
    return out


def test_install_on_a_plain_venv(stage, py, tmp_path, base_env):
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    out = dry_then_real(stage, base_env, venv, "install", venv)
    assert f"would write {venv}/pyshim.toml" in out
    # The stamp's source: the config the launchers will be stamped with.
    assert f"would stamp the launchers with {venv}/pyshim.toml" in out


def test_install_again_with_changed_options(stage, py, tmp_path, base_env):
    venv = tmp_path / "venv"
    install_venv(stage, py, venv, base_env)
    out = dry_then_real(stage, base_env, venv, "install", venv, "--env", "DRY_RUN_TEST=1")
    assert f"would replace {venv}/pyshim.toml" in out
    assert "+ DRY_RUN_TEST" in out  # the config diff, as the real run prints it


def test_install_with_nothing_to_change_plans_nothing(stage, py, tmp_path, base_env):
    venv = tmp_path / "venv"
    install_venv(stage, py, venv, base_env)
    before = tree(venv)
    dry = pyshim_tool(stage, "install", venv, "--dry-run", env=base_env)
    assert dry.returncode == 0, dry.stderr.decode()
    assert planned_paths(dry.stdout.decode()) == set(), dry.stdout.decode()
    assert "nothing would change" in dry.stdout.decode()
    assert tree(venv) == before


def test_uninstall(stage, py, tmp_path, base_env):
    venv = tmp_path / "venv"
    install_venv(stage, py, venv, base_env, "--startup", "os:getcwd")
    out = dry_then_real(stage, base_env, venv, "uninstall", venv)
    assert f"would remove {venv}/pyshim.toml" in out
    assert f"would remove folder {venv}/.pyshim" in out


def test_dynlib(stage, py, tmp_path, base_env, testlibs):
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    site = next((venv / "lib").glob("*/site-packages"))
    (site / "pkg").mkdir()
    shutil.copy2(testlibs.libdir / "libpyshimtest.so", site / "pkg" / "libpyshimtest.so")
    out = dry_then_real(stage, base_env, venv, "dynlib", venv)
    assert f"would make a symlink {venv}/share/venv/dynlib/libpyshimtest.so -> " in out
    # and again with nothing to do: no plan line, nothing changed
    before = tree(venv)
    again = pyshim_tool(stage, "dynlib", venv, "--dry-run", env=base_env)
    assert again.returncode == 0
    assert planned_paths(again.stdout.decode()) == set()
    assert tree(venv) == before


def test_dry_run_and_check_are_exclusive(stage, py, tmp_path, base_env):
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    res = pyshim_tool(stage, "dynlib", venv, "--dry-run", "--check", env=base_env)
    assert res.returncode == 2


def test_install_with_startup_hooks_names_the_compile_and_changes_nothing(
        stage, py, tmp_path, base_env):
    # The hook module's bytecode is written by the interpreter, not by a Dir
    # step: the dry run names it and does not run it.
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    before = tree(venv)
    dry = pyshim_tool(stage, "install", venv, "--startup", "os:getcwd", "--dry-run", env=base_env)
    assert dry.returncode == 0, dry.stderr.decode()
    out = dry.stdout.decode()
    site = next((venv / "lib").glob("*/site-packages"))
    assert f"would write {site}/_pyshim_startup.py" in out, out
    assert f"would compile {site}/_pyshim_startup.py into {site}/__pycache__" in out, out
    assert tree(venv) == before


def test_install_dry_run_verbose_prints_the_whole_plan_first(stage, py, tmp_path, base_env):
    # The plan is made before anything is applied: with -v it is printed as
    # a whole (backups and manifest, the config, the stamp's late identity,
    # every launcher, the site-packages files), before the first step, and
    # the dry run still changes nothing.
    from conftest import links_to_base_launcher, main_launcher_name
    venv = tmp_path / "venv"
    plain_venv(py, venv, base_env)
    before = tree(venv)
    # 3.11+: bin/<main> links to the base launcher (README "Why a `.pth`,
    # and when"); before, it is a launcher copy of its own.
    bin_main = (f"pyshim: debug: plan: link bin/{main_launcher_name(py)} as a symlink -> "
                f"../.pyshim/base/bin/{main_launcher_name(py)}"
                if links_to_base_launcher(venv) else
                f"pyshim: debug: plan: write bin/{main_launcher_name(py)}: the stamped launcher "
                "(mode 0755)")
    res = pyshim_tool(stage, "install", "-v", venv, "--dry-run", env=base_env)
    assert res.returncode == 0, res.stderr.decode()
    err = res.stderr.decode()
    main = main_launcher_name(py)
    planned = [line for line in err.splitlines()
               if line.startswith("pyshim: debug: plan: ") and " (fd " not in line]
    for expected in ("pyshim: debug: plan: sync .pyshim/backup",
                     "pyshim: debug: plan: write .pyshim/manifest.toml (",
                     "pyshim: debug: plan: write pyshim.toml (",
                     "pyshim: debug: plan: stamp the launchers with pyshim.toml as written",
                     bin_main,
                     f"pyshim: debug: plan: write .pyshim/base/bin/{main}: the stamped launcher",
                     "pyshim: debug: plan: write lib/"):
        assert any(line.startswith(expected) for line in planned), (expected, err)
    assert tree(venv) == before
    # The real run logs the same plan, all of it before the first step is
    # taken (each step logs itself with its folder's fd).
    real = pyshim_tool(stage, "install", "-v", venv, env=base_env)
    assert real.returncode == 0, real.stderr.decode()
    lines = real.stderr.decode().splitlines()
    assert [line for line in lines
            if line.startswith("pyshim: debug: plan: ") and " (fd " not in line] == planned
    first_step = min(i for i, line in enumerate(lines) if " (fd " in line)
    last_plan = max(i for i, line in enumerate(lines) if line in planned)
    assert last_plan < first_step, real.stderr.decode()
