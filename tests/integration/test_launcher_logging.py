"""The launcher's logging: PYSHIM_LOG=debug prints what the launcher found and
computed (as `pyshim: debug: ...` lines on stderr); with PYSHIM_LOG unset
nothing at all is printed, by the launcher or the restore library, in the
interpreter or in its children."""

import pytest

from conftest import CONFIG_ENV, caller_env, make_venv, place_launcher, run

CODE = (
    "import subprocess, sys\n"
    "print('ran', sys.executable, flush=True)\n"
    "subprocess.run([sys.executable, '-c', 'print(\"child ran\")'], check=True)\n"
    "subprocess.run(['/bin/sh', '-c', 'echo sh ran'], check=True)\n"
)


@pytest.fixture
def venv(stage, py, tmp_path, base_env, jemalloc, testlibs):
    return make_venv(
        stage, py, tmp_path / "venv", base_env,
        preload=[jemalloc], library_path=[testlibs.libdir], env=CONFIG_ENV,
    )


def _expected_stdout(venv):
    return f"ran {venv.python}\nchild ran\nsh ran\n".encode()


def test_unset_prints_nothing(venv, base_env):
    assert "PYSHIM_LOG" not in base_env
    res = run([venv.python, "-c", CODE], base_env)
    assert res.returncode == 0
    assert res.stdout == _expected_stdout(venv)
    assert res.stderr == b""


@pytest.mark.parametrize("variant", ["empty", "set"])
def test_unset_prints_nothing_with_caller_loader_vars(venv, variant, base_env, tmp_path,
                                                       testlibs):
    env = caller_env(variant, base_env, tmp_path, testlibs)
    res = run([venv.python, "-c", CODE], env)
    assert res.returncode == 0
    assert res.stdout == _expected_stdout(venv)
    assert res.stderr == b""


# The launcher and the restore library share one rule: unset, empty, "off" or
# a level quieter than debug is silent.
QUIET_VALUES = ["", "off", "info", "warn", "warning", "err", "error", "critical"]


@pytest.mark.parametrize("value", QUIET_VALUES)
def test_logging_off_prints_nothing(venv, base_env, value):
    res = run([venv.python, "-c", CODE], dict(base_env, PYSHIM_LOG=value))
    assert res.returncode == 0
    assert res.stdout == _expected_stdout(venv)
    assert res.stderr == b""


def test_debug_logs_from_launcher_and_restore_library(venv, base_env):
    """Control for the quiet values: with debug, both the launcher and the
    restore library do print, in the interpreter and in its Python child."""
    res = run([venv.python, "-c", CODE], dict(base_env, PYSHIM_LOG="debug"))
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout == _expected_stdout(venv)
    lines = res.stderr.decode().splitlines()
    launcher = [line for line in lines if line.startswith("pyshim: debug: invoked as ")]
    restore = [line for line in lines if line.startswith("pyshim-restore: ")]
    assert len(launcher) == 2, lines
    # it restores LD_PRELOAD and LD_LIBRARY_PATH in each of the two interpreters
    assert len(restore) >= 2, lines
    assert any("LD_PRELOAD" in line for line in restore), lines


def _debug_lines(stderr):
    lines = stderr.decode().splitlines()
    return [line[len("pyshim: debug: "):] for line in lines if line.startswith("pyshim: debug: ")]


def test_debug_tells_what_was_found_and_computed(venv, stage, py, base_env, jemalloc, testlibs):
    env = dict(base_env, PYSHIM_LOG="debug")
    res = run([venv.python, "-c", "print('ran')"], env)
    assert res.returncode == 0, res.stderr.decode()
    # logging goes to stderr only: the program's output is untouched
    assert res.stdout == b"ran\n"
    debug = _debug_lines(res.stderr)
    for expected in [
        f"invoked as {venv.python}",
        f"real binary {stage.shim}",
        f"config {venv.config}",
        f"interpreter {py.path}",
        f"restore library {stage.restore}",
        f"env LD_PRELOAD={jemalloc}:{stage.restore}",
        f"env LD_LIBRARY_PATH={testlibs.libdir}",
        "env ITEST_FROM_CONFIG=set by [env]",
        f"exec {py.path} with argv[0]={venv.python}",
    ]:
        assert expected in debug, f"missing {expected!r} in:\n" + "\n".join(debug)
    # every line is the launcher's or the restore library's
    for line in res.stderr.decode().splitlines():
        assert line.startswith(("pyshim: debug: ", "pyshim-restore: ")), line


def test_debug_in_every_interpreter_of_a_chain(venv, base_env):
    """The variable is inherited: each launch through the shim logs."""
    env = dict(base_env, PYSHIM_LOG="debug")
    res = run([venv.python, "-c", CODE], env)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout == _expected_stdout(venv)
    invoked = [line for line in _debug_lines(res.stderr) if line.startswith("invoked as ")]
    assert invoked == [f"invoked as {venv.python}"] * 2


def test_debug_on_error(stage, tmp_path, base_env):
    """A failed launch says why in a debug line too, then the error."""
    p = tmp_path / "bin" / "python"
    place_launcher(stage, p)
    (tmp_path / "pyshim.toml").write_text('interpreter = "/nonexistent/python3"\n')
    res = run([p, "-c", "pass"], dict(base_env, PYSHIM_LOG="debug"))
    assert res.returncode == 127
    text = res.stderr.decode()
    assert "pyshim: debug: " in text
    assert "interpreter not found: /nonexistent/python3" in text
    quiet = run([p, "-c", "pass"], base_env)
    assert "pyshim: debug" not in quiet.stderr.decode()
    assert quiet.stderr.decode().startswith("pyshim: error: interpreter not found")
