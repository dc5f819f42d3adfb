"""Passthrough: arguments and process semantics pass through untouched.

Each case runs the same command through the shim and directly with the real
interpreter, and compares what the interpreter reports (argv as bytes,
/proc/self/cmdline, flags, options, stdin, exit status, stdout, stderr),
besides asserting the specific values the options must produce."""

import json
import os
import shutil
import signal
import subprocess

import pytest

from conftest import HERE, default_interp, place_launcher, run, second_interp, write_config

ARGS = [b"", b"plain", b"\xff\xfe", b"caf\xc3\xa9", b"\xc3\x28", b"with space", b"",
        b"-I", b"-S", b"--version", b"-c", b"x=y", b"\t", b"--"]


def _interps():
    out = [default_interp()]
    older = second_interp()
    if older is not None:
        out.append(older)
    return [pytest.param(i, id=i.id) for i in out]


@pytest.fixture(params=_interps())
def env_setup(request, stage, tmp_path, base_env, jemalloc):
    """A standalone launcher for the interpreter, and argv_report.py copied to
    a work dir (so no bytecode lands in the source tree)."""
    interp = request.param
    launcher = tmp_path / "shim" / "bin" / "python"
    place_launcher(stage, launcher)
    write_config(tmp_path / "shim", interp.path, preload=[jemalloc])
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(HERE / "argv_report.py", work / "argv_report.py")
    return interp, launcher, work, base_env


def _both(interp, launcher, args, env, **kw):
    """(shim result, direct result) of the same command."""
    shim = run([launcher, *args], env, **kw)
    direct = run([interp.path, *args], env, **kw)
    return shim, direct


def _reports(shim, direct):
    assert shim.returncode == 0, shim.stderr.decode(errors="replace")
    assert direct.returncode == 0, direct.stderr.decode(errors="replace")
    a, b = json.loads(shim.stdout), json.loads(direct.stdout)
    for r in (a, b):
        r.pop("pid")
        r.pop("ppid")
    assert a == b
    assert shim.stderr == direct.stderr
    return a


def _hex(args):
    return [a.hex() for a in args]


def test_dash_c(env_setup):
    interp, launcher, work, env = env_setup
    code = (work / "argv_report.py").read_text()
    r = _reports(*_both(interp, launcher, ["-c", code, *ARGS], env))
    assert r["argv"] == _hex([b"-c", *ARGS])
    assert r["cmdline_tail"] == _hex([b"-c", code.encode(), *ARGS])
    assert r["name"] == "__main__"


def test_dash_m(env_setup):
    interp, launcher, work, env = env_setup
    env = dict(env, PYTHONPATH=str(work))
    r = _reports(*_both(interp, launcher, ["-m", "argv_report", *ARGS], env, cwd="/"))
    assert r["argv"] == _hex([bytes(work / "argv_report.py"), *ARGS])
    assert r["cmdline_tail"] == _hex([b"-m", b"argv_report", *ARGS])
    assert r["name"] == "__main__"


def test_dash_stdin(env_setup):
    interp, launcher, work, env = env_setup
    code = (work / "argv_report.py").read_bytes()
    r = _reports(*_both(interp, launcher, ["-", *ARGS], env, input=code))
    assert r["argv"] == _hex([b"-", *ARGS])
    assert r["cmdline_tail"] == _hex([b"-", *ARGS])


def test_script_path_and_stdin_data(env_setup):
    interp, launcher, work, env = env_setup
    args = ["argv_report.py", *ARGS, b"--read-stdin"]
    data = "line one\nline two \u00e9\n"
    r = _reports(*_both(interp, launcher, args, env, cwd=work, input=data.encode()))
    assert r["argv"] == _hex([b"argv_report.py", *ARGS, b"--read-stdin"])
    assert r["stdin"] == data


def test_interpreter_options(env_setup):
    interp, launcher, work, env = env_setup
    opts = ["-O", "-B", "-u", "-W", "error", "-X", "dev"]
    r = _reports(*_both(interp, launcher, [*opts, "argv_report.py", *ARGS], env, cwd=work))
    assert r["argv"] == _hex([b"argv_report.py", *ARGS])
    assert r["cmdline_tail"] == _hex([o.encode() for o in opts] + [b"argv_report.py", *ARGS])
    assert r["optimize"] == 1 and r["debug"] is False and r["asserts"] == "disabled"
    assert r["dont_write_bytecode"] == 1
    assert r["stdout_buffer"] == "FileIO"  # -u: no buffer under the text layer
    # -X dev puts "default" first on some versions; -W error comes last and wins
    assert r["warnoptions"][-1] == "error" and r["warning"] == "raised"
    assert r["xoptions"] == {"dev": "True"} and r["dev_mode"] is True
    # and without them, the defaults (the options above did change something)
    plain = _reports(*_both(interp, launcher, ["argv_report.py"], env, cwd=work))
    assert plain["optimize"] == 0 and plain["asserts"] == "enabled"
    assert plain["stdout_buffer"] == "BufferedWriter" and plain["warning"] != "raised"


@pytest.mark.parametrize("args", [["--version"], ["-V"], ["-c", "import sys; print(sys.argv)",
                                                          "--help"]])
def test_launcher_consumes_no_option(env_setup, args):
    """Options that a CLI would handle go to the interpreter untouched."""
    interp, launcher, work, env = env_setup
    shim, direct = _both(interp, launcher, args, env)
    assert (shim.returncode, shim.stdout, shim.stderr) == (
        direct.returncode, direct.stdout, direct.stderr)
    assert b"pyshim" not in shim.stdout + shim.stderr
    assert shim.stdout.strip()


@pytest.mark.parametrize("code,status,stderr", [
    ("pass", 0, b""),
    ("import sys; sys.exit(3)", 3, b""),
    ("import sys; sys.exit('msg')", 1, b"msg\n"),
    ("import os; os._exit(255)", 255, b""),
    ("raise SystemExit(0)", 0, b""),
    ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", -signal.SIGTERM, b""),
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", -signal.SIGKILL, b""),
])
def test_exit_status(env_setup, code, status, stderr):
    interp, launcher, work, env = env_setup
    shim, direct = _both(interp, launcher, ["-c", code], env)
    assert shim.returncode == status
    assert shim.stderr == stderr
    assert (shim.returncode, shim.stdout, shim.stderr) == (
        direct.returncode, direct.stdout, direct.stderr)


def test_uncaught_exception(env_setup):
    interp, launcher, work, env = env_setup
    shim, direct = _both(interp, launcher, ["-c", "raise ValueError('boom')"], env)
    assert shim.returncode == 1 == direct.returncode
    assert shim.stderr == direct.stderr
    assert shim.stderr.endswith(b"ValueError: boom\n")


WORKER_SCRIPT = r"""
import json, multiprocessing as mp, os, sys

def worker(ev, q):
    q.put(os.getpid())
    ev.set()
    import time
    time.sleep(60)

if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    ev, q = ctx.Event(), ctx.Queue()
    p = ctx.Process(target=worker, args=(ev, q))
    p.start()
    assert ev.wait(30), "worker did not start"
    worker_pid = q.get(timeout=30)
    p.terminate()
    p.join(30)
    print(json.dumps({"exitcode": p.exitcode, "pid_matches": worker_pid == p.pid}))
"""


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_sigterm_worker_status(env_setup, method):
    """A worker killed by SIGTERM reports the same status as without the
    shim, and the pid multiprocessing holds is the worker interpreter's."""
    interp, launcher, work, env = env_setup
    script = work / "worker.py"
    script.write_text(WORKER_SCRIPT)
    shim, direct = _both(interp, launcher, [script, method], env)
    for res in (shim, direct):
        assert res.returncode == 0, res.stderr.decode()
    assert json.loads(shim.stdout) == json.loads(direct.stdout) == {
        "exitcode": -signal.SIGTERM, "pid_matches": True}


def _sigterm_running(argv, env):
    p = subprocess.Popen([os.fspath(a) for a in argv], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        line = p.stdout.readline()
        assert line == b"ready\n", p.stderr.read()
        p.send_signal(signal.SIGTERM)
        return p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()


def test_sigterm_launched_process(env_setup):
    interp, launcher, work, env = env_setup
    code = "import time; print('ready', flush=True); time.sleep(60)"
    shim = _sigterm_running([launcher, "-c", code], env)
    direct = _sigterm_running([interp.path, "-c", code], env)
    assert shim == direct == -signal.SIGTERM


def test_pid_is_the_interpreters(env_setup):
    """No process stays in between: Popen.pid is the interpreter's pid, its
    parent is the caller, and /proc/PID/exe is the real interpreter."""
    interp, launcher, work, env = env_setup
    code = ("import os, sys; print(os.getpid(), os.getppid(), flush=True); "
            "sys.stdin.readline()")
    p = subprocess.Popen([str(launcher), "-c", code], env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    try:
        pid, ppid = map(int, p.stdout.readline().split())
        exe = os.readlink(f"/proc/{p.pid}/exe")
        p.stdin.write(b"\n")
        p.stdin.flush()
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdin.close()
        p.stdout.close()
    assert pid == p.pid
    assert ppid == os.getpid()
    assert os.path.samefile(exe, interp.path)
