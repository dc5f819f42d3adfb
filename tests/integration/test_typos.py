"""A mistyped command or option is answered with the nearest valid one
(edit distance, over the names the CLI itself defines), exit 2, and nothing
is done; a bare `pyshim` prints the usage and exits 2."""

import re

import pytest

from conftest import run

COMMANDS = ["init", "install", "uninstall", "show", "doctor", "dynlib", "launcher", "entrypoint"]


def pyshim_err(stage, args, base_env, cwd):
    res = run([stage.cli, *args], base_env, cwd=cwd)
    assert res.returncode == 2, (args, res)
    assert res.stdout == b"", res.stdout.decode()
    return res.stderr.decode()


@pytest.mark.parametrize("typed, meant", [
    ("isntall", "install"),
    ("instal", "install"),
    ("shwo", "show"),
    ("docter", "doctor"),
    ("unistall", "uninstall"),
    ("dynlb", "dynlib"),
    ("launchr", "launcher"),
    ("entrypiont", "entrypoint"),
])
def test_mistyped_command(stage, base_env, tmp_path, typed, meant):
    err = pyshim_err(stage, [typed, "V"], base_env, tmp_path)
    assert err == f"pyshim: error: unknown command '{typed}'\n  hint: did you mean '{meant}'?\n"


@pytest.mark.parametrize("args, typed, meant", [
    (["install", "--pyhton", "/usr/bin/python3.11", "V"], "--pyhton", "--python"),
    # CLI11 alone says "--python is required" here: the typo is the cause.
    (["init", "V", "--pyhton", "/usr/bin/python3.11"], "--pyhton", "--python"),
    (["init", "V", "--python", "/usr/bin/python3.11", "--prelaod=jemalloc"], "--prelaod",
     "--preload"),
    (["install", "V", "--symlnk"], "--symlnk", "--symlink"),
    (["show", "--jsno"], "--jsno", "--json"),
    (["doctor", "V/bin/python", "--josn"], "--josn", "--json"),
    (["dynlib", "V", "--chekc"], "--chekc", "--check"),
    (["uninstall", "V", "--hlep"], "--hlep", "--help"),
    # CLI11 alone says "--python is required" here too.
    (["launcher", "OUT", "--pyton", "/usr/bin/python3.11"], "--pyton", "--python"),
    (["entrypoint", "OUT", "--launcher", "L", "--modul", "m"], "--modul", "--module"),
])
def test_mistyped_option(stage, base_env, tmp_path, args, typed, meant):
    command = args[0]
    err = pyshim_err(stage, args, base_env, tmp_path)
    assert err == (f"pyshim: error: unknown option '{typed}' for `pyshim {command}`\n"
                   f"  hint: did you mean '{meant}'? (`pyshim {command} --help` lists its "
                   "options)\n")
    assert not (tmp_path / "V").exists(), "a command with a typo must do nothing"


def test_mistyped_top_level_option(stage, base_env, tmp_path):
    err = pyshim_err(stage, ["--verison"], base_env, tmp_path)
    assert err == ("pyshim: error: unknown option '--verison' for `pyshim`\n"
                   "  hint: did you mean '--version'? (`pyshim --help` lists its options)\n")


def test_nothing_close_lists_what_there_is(stage, base_env, tmp_path):
    err = pyshim_err(stage, ["frobnicate"], base_env, tmp_path)
    assert err == ("pyshim: error: unknown command 'frobnicate'\n"
                   f"  hint: the commands are {', '.join(COMMANDS)}\n")
    err = pyshim_err(stage, ["install", "--zzzzzzzz", "V"], base_env, tmp_path)
    assert err == ("pyshim: error: unknown option '--zzzzzzzz' for `pyshim install`\n"
                   "  hint: `pyshim install --help` lists its options\n")


def test_commands_listed_are_the_clis_own(stage, base_env, tmp_path):
    """COMMANDS above is what --help lists, so the expected hints stay true."""
    out = run([stage.cli, "--help"], base_env, cwd=tmp_path).stdout.decode()
    block = out[out.index("Subcommands:\n"):].split("\n\n")[0].splitlines()[1:]
    assert [line.split()[0] for line in block if re.match(r"  \S", line)] == COMMANDS


def test_bare_pyshim_prints_usage_and_exits_2(stage, base_env, tmp_path):
    err = pyshim_err(stage, [], base_env, tmp_path)
    help_text = run([stage.cli, "--help"], base_env, cwd=tmp_path).stdout.decode()
    assert err == help_text
    assert "Usage: pyshim [OPTIONS] [SUBCOMMAND]" in err
    for command in COMMANDS:
        assert re.search(rf"^  {command}\s", err, re.M), command


def test_other_usage_errors_keep_cli11s_message(stage, base_env, tmp_path):
    """An extra word that is no typo of anything: CLI11's own wording, exit 2."""
    err = pyshim_err(stage, ["show", "a", "b"], base_env, tmp_path)
    assert "not expected: b" in err, err
