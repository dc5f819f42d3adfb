"""The machine-readable output: `pyshim doctor --json` (schema 1: every
check an object with exactly id/ok/message/fix, ids stable snake_case
names) and the JSON error document that `show --json` and `doctor --json`
print on stdout when there is nothing else to print, with the exit code the
command exits with. The README's "pyshim doctor" section documents both."""

import json
import re
from pathlib import Path

import pytest

from conftest import DEBIAN_JEMALLOC, DEBIAN_PYTHON, run

PYTHON = DEBIAN_PYTHON
JEMALLOC = DEBIAN_JEMALLOC
pytestmark = pytest.mark.usefixtures("needs_debian_python_and_jemalloc")
ID = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")

# A fresh, stamped `pyshim init` venv with one preload, checked in this order.
GOOD_IDS = [
    "launcher_version", "stamp", "config", "interpreter_exists", "interpreter_executable",
    "interpreter_not_shim", "interpreter_dynamic", "preload", "restore_library", "libc",
    "base_launcher", "sys_executable", "preload_mapped", "spawn_preload_mapped",
    "sh_ld_preload", "sh_ld_library_path", "sh_nothing_mapped", "sh_no_bookkeeping",
]


@pytest.fixture
def venv(stage, base_env, tmp_path) -> Path:
    root = tmp_path / "v"
    res = run([stage.cli, "init", root, "--python", PYTHON, "--preload", "jemalloc"], base_env)
    assert res.returncode == 0, res.stderr.decode()
    return root


def break_preload(venv: Path) -> Path:
    config = venv / "pyshim.toml"
    config.write_text(f'interpreter = "{PYTHON}"\npreload = ["/nonexistent/libnope.so"]\n')
    return config


def doctor_json(stage, launcher, env, code):
    res = run([stage.cli, "doctor", launcher, "--json"], env)
    assert res.returncode == code, (res.stdout.decode(), res.stderr.decode())
    assert res.stderr == b"", res.stderr.decode()
    return json.loads(res.stdout)


def assert_schema(doc, launcher):
    assert set(doc) == {"schema", "launcher", "ok", "checks"}, doc
    assert doc["schema"] == 1
    assert doc["launcher"] == str(launcher)
    assert isinstance(doc["ok"], bool)
    assert doc["checks"], doc
    for check in doc["checks"]:
        assert set(check) == {"id", "ok", "message", "fix"}, check
        assert ID.fullmatch(check["id"]), check["id"]
        assert isinstance(check["ok"], bool)
        assert isinstance(check["message"], str) and check["message"], check
        assert isinstance(check["fix"], str)
    assert doc["ok"] == all(check["ok"] for check in doc["checks"])


def test_doctor_json_on_a_good_venv(stage, base_env, venv):
    launcher = venv / "bin" / "python"
    doc = doctor_json(stage, launcher, base_env, 0)
    assert_schema(doc, launcher)
    assert doc["ok"] is True
    assert [check["id"] for check in doc["checks"]] == GOOD_IDS
    assert all(check["fix"] == "" for check in doc["checks"])


def test_doctor_json_says_what_the_text_says(stage, base_env, venv):
    launcher = venv / "bin" / "python"
    break_preload(venv)
    doc = doctor_json(stage, launcher, base_env, 1)
    text = run([stage.cli, "doctor", launcher], base_env)
    assert text.returncode == 1
    # One text line per check: its mark, then the message's first line.
    marks = {True: "✓ ", False: ("✗ ", "- ")}
    lines = [line for line in text.stdout.decode().splitlines() if not line.startswith(" ")]
    assert len(lines) == len(doc["checks"]), (lines, doc)
    for line, check in zip(lines, doc["checks"]):
        assert line.startswith(marks[check["ok"]]), (line, check)
        assert line[2:] == check["message"].split("\n")[0], (line, check)


def test_doctor_json_failed_check_has_fix_and_context(stage, base_env, venv):
    launcher = venv / "bin" / "python"
    config = break_preload(venv)
    doc = doctor_json(stage, launcher, base_env, 1)
    assert_schema(doc, launcher)
    assert doc["ok"] is False
    by_id = {}
    for check in doc["checks"]:
        by_id.setdefault(check["id"], []).append(check)
    (preload,) = by_id["preload"]
    assert preload["ok"] is False
    assert preload["message"] == (f"preload: preload not found: /nonexistent/libnope.so\n"
                                  f"config: {config}:2:12")
    assert preload["fix"].startswith("install the library or fix 'preload'")
    (round_trip,) = by_id["round_trip"]
    assert round_trip["ok"] is False
    assert round_trip["message"].startswith("live round trip: skipped (")


def test_doctor_json_when_there_is_no_launcher(stage, base_env, tmp_path):
    missing = tmp_path / "nope" / "python"
    res = run([stage.cli, "doctor", missing, "--json"], base_env)
    assert res.returncode == 2
    doc = json.loads(res.stdout)
    assert doc == {"schema": 1, "error": {"message": f"launcher not found: {missing}",
                                          "context": [], "hint": doc["error"]["hint"],
                                          "exit_code": 2}}
    assert f"launcher not found: {missing}" in res.stderr.decode()


def test_show_json_error_carries_the_launchers_exit_code(stage, base_env, venv):
    launcher = venv / "bin" / "python"
    config = break_preload(venv)
    res = run([stage.cli, "show", launcher, "--json"], base_env)
    assert res.returncode == 125
    doc = json.loads(res.stdout)
    assert set(doc) == {"schema", "error"}
    assert set(doc["error"]) == {"message", "context", "hint", "exit_code"}
    assert doc["schema"] == 1
    assert doc["error"]["exit_code"] == 125
    assert doc["error"]["message"] == "preload not found: /nonexistent/libnope.so"
    assert f"config: {config}:2:12" in doc["error"]["context"]
    assert doc["error"]["hint"]
    # People still get the usual message on stderr.
    assert "pyshim: error: preload not found: /nonexistent/libnope.so\n" in res.stderr.decode()


def test_show_json_interpreter_missing_is_127(stage, base_env, venv):
    launcher = venv / "bin" / "python"
    (venv / "pyshim.toml").write_text('interpreter = "/nonexistent/python3"\n')
    res = run([stage.cli, "show", launcher, "--json"], base_env)
    assert res.returncode == 127
    assert json.loads(res.stdout)["error"]["exit_code"] == 127


def test_show_without_json_prints_nothing_on_failure(stage, base_env, venv):
    break_preload(venv)
    res = run([stage.cli, "show", venv / "bin" / "python"], base_env)
    assert res.returncode == 125
    assert res.stdout == b""


def test_show_json_success_has_no_error_key(stage, base_env, venv):
    res = run([stage.cli, "show", venv / "bin" / "python", "--json"], base_env)
    assert res.returncode == 0, res.stderr.decode()
    doc = json.loads(res.stdout)
    assert doc["schema"] == 1 and "error" not in doc


def documented_show_keys() -> set:
    """The top-level keys of the README's `show --json` schema block."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### `pyshim show`", 1)[1].split("\n### ", 1)[0]
    block = section.split("```", 2)[1]
    return set(re.findall(r"^([a-z_0-9]+):", block, re.MULTILINE))


def test_show_json_keys_are_the_documented_ones(stage, base_env, venv):
    res = run([stage.cli, "show", venv / "bin" / "python", "--json"], base_env)
    assert res.returncode == 0, res.stderr.decode()
    assert set(json.loads(res.stdout)) == documented_show_keys()
