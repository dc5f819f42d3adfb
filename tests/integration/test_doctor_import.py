"""`pyshim doctor LAUNCHER --import MOD`: MOD is imported through the
launcher in the interpreter and in a multiprocessing spawn worker; a failure
names the process that could not import it and quotes its stderr, escaped
and capped (README, "pyshim doctor").
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from conftest import install_venv, pyshim_tool

NOBODY = 65534

MODULES = {
    "fine_mod": "WHO = 'fine'\n",
    # Imports in a parent, not in a process multiprocessing started.
    "parent_only": (
        "import multiprocessing\n"
        "if multiprocessing.parent_process() is not None:\n"
        "    raise ImportError('parent_only refuses a worker process')\n"
    ),
    # Its error holds an escape sequence and is long: doctor must escape and cap it.
    "noisy": "raise ImportError('\\x1b[31mred' + 'x' * 100000)\n",
    "not_as_root": (
        "import os\n"
        "if os.getuid() == 0:\n"
        "    raise ImportError('imported as root')\n"
    ),
}


@pytest.fixture
def mods(tmp_path):
    folder = tmp_path / "mods"
    folder.mkdir()
    for name, text in MODULES.items():
        (folder / f"{name}.py").write_text(text)
    return folder


@pytest.fixture
def venv(stage, py, tmp_path, base_env, mods):
    # The module folder comes from the config, as a build would give it.
    return install_venv(stage, py, tmp_path / "venv", base_env,
                        "--env-prepend", f"PYTHONPATH={mods}")


def doctor(stage, launcher, env, *modules, json_out=False):
    args = ["doctor", launcher, *(a for m in modules for a in ("--import", m))]
    if json_out:
        args.append("--json")
    res = pyshim_tool(stage, *args, env=env)
    return res.returncode, res.stdout.decode(), res.stderr.decode()


def test_an_importable_module_passes_in_both_processes(stage, venv, base_env):
    code, out, err = doctor(stage, venv.python, base_env, "fine_mod", "json", json_out=True)
    assert code == 0, out + err
    checks = json.loads(out)["checks"]
    imports = [(c["id"], c["message"], c["ok"]) for c in checks if c["id"].startswith("import")]
    assert imports == [
        ("import", "fine_mod imports in the interpreter", True),
        ("import_spawn", "fine_mod imports in a spawn worker", True),
        ("import", "json imports in the interpreter", True),
        ("import_spawn", "json imports in a spawn worker", True),
    ]


def test_a_module_only_the_parent_can_import_fails_naming_the_worker(stage, venv, base_env):
    code, out, err = doctor(stage, venv.python, base_env, "parent_only")
    assert code == 1, out + err
    assert "✓ parent_only imports in the interpreter\n" in out, out
    failed = out[out.index("✗ parent_only imports in a spawn worker"):]
    assert failed.startswith(
        "✗ parent_only imports in a spawn worker: it could not import it (exit status 1)\n"), out
    # The worker's own traceback, ending with its error.
    assert "  stderr: ImportError: parent_only refuses a worker process\n  fix: " in failed, out
    assert "parent_only.py" in failed


def test_a_missing_module_fails_naming_the_interpreter(stage, venv, base_env):
    code, out, err = doctor(stage, venv.python, base_env, "no_such_module_here")
    assert code == 1, out + err
    assert ("✗ no_such_module_here imports in the interpreter: it could not import it "
            "(exit status 1)\n") in out, out
    assert "  stderr: ModuleNotFoundError: No module named 'no_such_module_here'\n" in out, out
    assert ("- no_such_module_here imports in a spawn worker: skipped (the interpreter "
            "cannot import it)\n") in out, out


def test_the_stderr_quoted_is_escaped_and_capped(stage, venv, base_env):
    code, out, err = doctor(stage, venv.python, base_env, "noisy")
    assert code == 1
    line = next(l for l in out.splitlines() if l.startswith("  stderr: ImportError: "))
    assert "\x1b" not in out
    assert line.startswith("  stderr: ImportError: \\x1b[31mredxxx"), line
    assert len(line) < 1200 and line.endswith("more bytes)"), line[-80:]


def test_a_bad_module_name_is_a_usage_error(stage, venv, base_env):
    code, out, err = doctor(stage, venv.python, base_env, "os; import shutil")
    assert code == 2
    assert "--import os; import shutil: not a module name" in err


def test_a_launcher_that_would_refuse_to_start_skips_the_imports(stage, venv, base_env):
    venv.config.write_text('interpreter = "/nonexistent/python3"\n')
    code, out, err = doctor(stage, venv.python, base_env, "json")
    assert code == 1
    assert "- json imports in the interpreter: skipped (the launcher would refuse to start" in out


def test_as_root_the_imports_run_as_the_owner_of_a_venv_someone_else_controls(
        stage, py, tmp_path, base_env):
    """The root rule of tool mode: root runs the venv's interpreter as root
    only when only root controls the venv; otherwise as its owner."""
    if os.geteuid() != 0:
        pytest.skip("needs root: checks who root's doctor runs the imports as")
    home = Path(tempfile.mkdtemp(prefix="pyshim-import-", dir="/tmp"))
    try:
        home.chmod(0o755)
        mods = home / "mods"
        mods.mkdir()
        (mods / "not_as_root.py").write_text(MODULES["not_as_root"])
        for p in (mods, mods / "not_as_root.py"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        env = dict(base_env, PYTHONPATH=str(mods))

        # Root's own venv (only root can write it): run as root, so the module refuses.
        own = install_venv(stage, py, tmp_path / "own", base_env)
        code, out, err = doctor(stage, own.python, env, "not_as_root")
        assert code == 1, out + err
        assert "  stderr: ImportError: imported as root\n" in out, out
        assert "run as uid" not in out

        # A venv that belongs to nobody: run as nobody, so it imports.
        theirs = install_venv(stage, py, home / "venv", base_env)
        for p in [theirs.root, *theirs.root.rglob("*")]:
            os.lchown(p, NOBODY, NOBODY)
        code, out, err = doctor(stage, theirs.python, env, "not_as_root")
        assert "✓ not_as_root imports in the interpreter\n" in out, out + err
        assert "✓ not_as_root imports in a spawn worker\n" in out, out + err

        # A failure there says whom it ran as.
        code, out, err = doctor(stage, theirs.python, env, "no_such_module_here")
        assert code == 1
        assert f"  run as uid {NOBODY}, gid {NOBODY}\n" in out, out
    finally:
        shutil.rmtree(home, ignore_errors=True)
