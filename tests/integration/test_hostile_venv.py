"""Root runs `pyshim install`/`uninstall` on a venv another user can write
(CI caches, container volumes, a checkout's .venv). Each test is one way
0.1 could be turned against root, done by a real second user (`nobody`, via
setpriv) with real links planted in the venv, and asserts that root's
command refuses or stays inside the venv, and that nothing outside changed."""

import fcntl
import os
import pty
import shutil
import stat
import subprocess
import tempfile
import termios
import threading
from pathlib import Path

import pytest

from conftest import PROBE, pyshim_tool, run, run_json

PYTHON = Path("/usr/bin/python3.11")
JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
NOBODY = 65534


@pytest.fixture(autouse=True)
def needs_root():
    if os.geteuid() != 0:
        pytest.skip("these tests run pyshim as root against a second user (setpriv)")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv not installed (Debian package util-linux)")


_HOMES = []


@pytest.fixture(autouse=True)
def remove_user_venvs():
    """user_venv's folders live in /tmp (pytest's are root-only): removed
    after each test."""
    yield
    while _HOMES:
        shutil.rmtree(_HOMES.pop(), ignore_errors=True)


def as_nobody(*argv, env):
    return run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv],
               env)


def user_venv(tmp_path: Path, env, copies=True) -> Path:
    """A venv that belongs to `nobody`, in a folder nobody can reach (pytest's
    own tmp folders are root's, mode 0700)."""
    home = Path(tempfile.mkdtemp(prefix="pyshim-hostile-", dir="/tmp"))
    _HOMES.append(home)
    home.chmod(0o755)
    venv = home / "venv"
    args = ["--copies"] if copies else []
    subprocess.run([str(PYTHON), "-m", "venv", "--without-pip", *args, str(venv)], check=True,
                   env=env)
    for p in [venv, *venv.rglob("*")]:
        os.lchown(p, NOBODY, NOBODY)
    return venv


@pytest.fixture
def env(tmp_path):
    return {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": str(tmp_path)}


@pytest.fixture
def secret(tmp_path):
    """A root-only file outside the venv."""
    path = tmp_path / "secret"
    path.write_text("root's data\n")
    path.chmod(0o600)
    return path


def test_uninstall_does_not_follow_a_planted_backup_link_or_set_modes(stage, tmp_path, env):
    venv = user_venv(tmp_path, env)
    assert pyshim_tool(stage, "install", venv, env=env).returncode == 0
    victim = tmp_path / "bash-copy"
    shutil.copy2("/bin/bash", victim)
    victim.chmod(0o755)
    backup = venv / ".pyshim" / "backup" / "python3.11"
    manifest = venv / ".pyshim" / "manifest.toml"
    # As the venv's owner: swap the backup for a link to root's file and ask
    # for setuid in a 0.1-style manifest entry with a path that leaves bin/.
    evil = ("schema = 1\n[[replaced]]\nname = 'python3.11'\nfile = 'backup/python3.11'\n"
            "mode = 3565\n[[replaced]]\nname = '../../x'\nfile = '../../../x'\n")
    assert backup.parent.stat().st_uid == NOBODY, "root's folders in the venv are the user's"
    script = f"rm -f {backup} && ln -s {victim} {backup} && printf %s \"$0\" > {manifest}"
    assert as_nobody("/bin/sh", "-c", script, evil, env=env).returncode == 0
    res = pyshim_tool(stage, "uninstall", venv, env=env)
    assert res.returncode == 2, res.stderr.decode()
    assert b"a manifest entry has no valid interpreter name" in res.stderr
    assert stat.S_IMODE(victim.stat().st_mode) == 0o755, "root's file got new mode bits"
    # With only the link planted (a valid manifest), uninstall refuses too.
    manifest.write_text("schema = 1\n[[replaced]]\nname = 'python3.11'\nfile = true\n")
    res = pyshim_tool(stage, "uninstall", venv, env=env)
    assert res.returncode == 2
    assert b"the backup of bin/python3.11 is missing or not a regular file" in res.stderr
    assert stat.S_IMODE(victim.stat().st_mode) == 0o755
    assert victim.read_bytes() == Path("/bin/bash").read_bytes()


# (A 3.11 venv has no pyshim-base-executable.pth to write: bin/python3.11
# links to the base launcher; the restore library's folder is the user's too.)
@pytest.mark.parametrize("planted", ["pyshim.toml.pyshim-tmp", "bin/python3.11.pyshim-tmp",
                                     "lib/pyshim/libpyshim-restore.so.pyshim-tmp"])
def test_install_never_writes_through_a_planted_temporary(planted, stage, tmp_path, env, secret):
    venv = user_venv(tmp_path, env)
    link = venv / planted
    assert as_nobody("mkdir", "-p", link.parent, env=env).returncode == 0
    assert as_nobody("ln", "-s", secret, link, env=env).returncode == 0
    res = pyshim_tool(stage, "install", venv, "--preload", JEMALLOC, env=env)
    assert res.returncode == 0, res.stderr.decode()
    assert secret.read_text() == "root's data\n"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert not link.is_symlink(), "the planted link was used instead of removed"
    assert str(JEMALLOC) in run_json([venv / "bin" / "python", PROBE], env)["parent"]["maps"]


def test_a_planted_manifest_link_is_refused(stage, tmp_path, env):
    venv = user_venv(tmp_path, env)
    target = tmp_path / "created-by-root"
    script = f"mkdir {venv}/.pyshim && ln -s {target} {venv}/.pyshim/manifest.toml"
    assert as_nobody("/bin/sh", "-c", script, env=env).returncode == 0
    for command in ("install", "uninstall"):
        res = pyshim_tool(stage, command, venv, env=env)
        assert res.returncode == 2, res.stderr.decode()
        assert b"manifest.toml is not a regular file" in res.stderr
        assert not target.exists() and not target.is_symlink() or target.is_symlink() is False
    assert not target.exists()
    assert (venv / "bin" / "python3.11").read_bytes() == PYTHON.read_bytes(), "bin/ was changed"


def test_a_planted_lib_link_keeps_uninstall_inside_the_venv(stage, tmp_path, env):
    venv = user_venv(tmp_path, env)
    assert pyshim_tool(stage, "install", venv, env=env).returncode == 0
    outside = tmp_path / "outside"
    (outside / "pyshim").mkdir(parents=True)
    (outside / "pyshim" / "keep").write_text("root's\n")
    script = f"mv {venv}/lib {venv}/lib.real && ln -s {outside} {venv}/lib"
    assert as_nobody("/bin/sh", "-c", script, env=env).returncode == 0
    res = pyshim_tool(stage, "uninstall", venv, env=env)
    assert res.returncode != 0
    assert b"refusing to follow a symlink" in res.stderr, res.stderr.decode()
    assert (outside / "pyshim" / "keep").read_text() == "root's\n"


def test_dynlib_stays_inside_the_venv_and_asks_its_interpreter_as_the_owner(
        stage, tmp_path, env, secret):
    """`pyshim dynlib` as root: a planted `share` link is refused, a planted
    link in the dynlib folder is replaced (never written through), and the
    venv's interpreter, which its owner controls, runs as that owner."""
    venv = user_venv(tmp_path, env)
    site = next((venv / "lib").glob("python3.*/site-packages"))
    pkg = site / "pkg"
    whoami = venv / "whoami"
    wrapper = ("#!/bin/sh\nid -u > {whoami}\nexec \"$(dirname \"$0\")/python3.11\" \"$@\"\n"
               .format(whoami=whoami))
    outside = tmp_path / "outside"
    outside.mkdir()
    script = (f"mkdir {pkg} && cp {JEMALLOC} {pkg}/libjm.so.2 && "
              f"rm {venv}/bin/python && printf %s \"$0\" > {venv}/bin/python && "
              f"chmod 755 {venv}/bin/python && "
              f"ln -s {outside} {venv}/share")
    assert as_nobody("/bin/sh", "-c", script, wrapper, env=env).returncode == 0

    res = pyshim_tool(stage, "dynlib", venv, env=env)
    assert res.returncode != 0, res.stdout.decode()
    assert b"refusing to follow a symlink" in res.stderr, res.stderr.decode()
    assert list(outside.iterdir()) == [], "root wrote through the planted link"
    assert whoami.read_text().strip() == str(NOBODY), "the venv's interpreter ran as root"

    dynlib = venv / "share" / "venv" / "dynlib"
    script = f"rm {venv}/share && mkdir -p {dynlib} && ln -s {secret} {dynlib}/libjm.so.2"
    assert as_nobody("/bin/sh", "-c", script, env=env).returncode == 0
    res = pyshim_tool(stage, "dynlib", venv, env=env)
    assert res.returncode == 0, res.stderr.decode()
    assert secret.read_text() == "root's data\n"
    assert os.readlink(dynlib / "libjm.so.2") == os.path.relpath(pkg / "libjm.so.2", dynlib)
    assert (dynlib / "libjm.so.2").lstat().st_uid == NOBODY, "root's links are the owner's"


# Run as bin/python by `pyshim dynlib`: records who it runs as, whether it
# can reach a terminal and which descriptors it got, then answers as the
# venv's real interpreter would.
WHO_AM_I = """#!/bin/sh
{{ id -u; id -g; id -G
   for fd in /proc/$$/fd/*; do printf '%s ' "$(readlink "$fd")"; done; echo
   if (exec 3</dev/tty) 2>/dev/null; then echo tty; else echo no-tty; fi
}} > {out}
exec "$(dirname "$0")/python3.11" "$@"
"""


@pytest.mark.parametrize("owner", ["root-only", "root-group-writable-bin", "nobody-group-root"])
def test_dynlib_runs_the_venvs_interpreter_as_root_only_if_only_root_can_write_it(
        owner, stage, tmp_path, env):
    """Root's `pyshim dynlib` runs bin/python as root only when every file of
    the venv is root's and writable by root alone. Otherwise it runs it as the
    venv's owner (nobody when root owns the venv), group nogroup and no other
    group, in a session of its own (no controlling terminal, though root runs
    it from one) and without root's other open files."""
    venv = user_venv(tmp_path, env)
    drop = Path(tempfile.mkdtemp(prefix="pyshim-whoami-", dir="/tmp"))
    _HOMES.append(drop)
    drop.chmod(0o1777)
    out = drop / "who"
    (venv / "bin" / "python").unlink()
    (venv / "bin" / "python").write_text(WHO_AM_I.format(out=out))
    (venv / "bin" / "python").chmod(0o755)
    for p in [venv, *venv.rglob("*")]:
        os.lchown(p, NOBODY if owner == "nobody-group-root" else 0, 0)
    if owner == "root-group-writable-bin":
        (venv / "bin").chmod(0o775)

    master, slave = pty.openpty()
    with open(tmp_path / "held-open", "w") as held:  # an fd root has open, not close-on-exec
        os.set_inheritable(held.fileno(), True)
        # Root's command runs with the terminal as its controlling tty, as
        # from an interactive shell.
        proc = subprocess.run([str(stage.cli), "dynlib", str(venv)], stdin=slave, stdout=slave,
                              stderr=slave, env=env, close_fds=False, timeout=120,
                              start_new_session=True,
                              preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    os.close(master)
    assert proc.returncode == 0
    uid, gid, groups, fds, tty = out.read_text().splitlines()
    if owner == "root-only":
        assert uid == "0", "a venv only root can write is asked as root"
        return
    assert (uid, gid, groups) == (str(NOBODY), str(NOBODY), str(NOBODY))
    assert "held-open" not in fds, f"root's open file reached the interpreter: {fds}"
    assert tty == "no-tty"


def test_dynlib_does_not_wait_on_a_planted_fifo_config(stage, tmp_path, env):
    venv = user_venv(tmp_path, env)
    assert as_nobody("mkfifo", venv / "pyshim.toml", env=env).returncode == 0
    res = run([stage.cli, "dynlib", venv], env, timeout=60)
    assert res.returncode == 0, res.stderr.decode()


def test_concurrent_installs_and_uninstalls_never_lose_the_interpreter(stage, tmp_path, env):
    venv = tmp_path / "venv"
    subprocess.run([str(PYTHON), "-m", "venv", "--without-pip", "--copies", str(venv)],
                   check=True, env=env)
    original = PYTHON.read_bytes()
    rounds = 50
    for r in range(rounds):
        commands = [["install", venv, "--preload", JEMALLOC] if i % 2 == 0 else
                    ["uninstall", venv] for i in range(8)]
        results = [None] * len(commands)

        def go(i):
            results[i] = pyshim_tool(stage, *commands[i], env=env)

        threads = [threading.Thread(target=go, args=(i,)) for i in range(len(commands))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for cmd, res in zip(commands, results):
            # An uninstall may find nothing to undo; nothing else may fail.
            ok = res.returncode == 0 or (cmd[0] == "uninstall" and
                                         b"is not a venv installed by" in res.stderr)
            assert ok, f"round {r}: {cmd[0]}: {res.stderr.decode()}"
        # Consistent: either installed (launcher + backup of the original) or
        # the original itself.
        main = venv / "bin" / "python3.11"
        if (venv / ".pyshim" / "manifest.toml").exists():
            assert (venv / ".pyshim" / "backup" / "python3.11").read_bytes() == original
            assert main.stat().st_size == stage.shim.stat().st_size
        else:
            assert main.read_bytes() == original, f"round {r}: the interpreter was lost"
    assert pyshim_tool(stage, "uninstall", venv, env=env).returncode in (0, 2)
    assert (venv / "bin" / "python3.11").read_bytes() == original


def test_option_values_that_are_not_utf8_are_refused_by_name(stage, tmp_path, env):
    venv = tmp_path / "venv"
    subprocess.run([str(PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True, env=env)
    for option in ("--library-path", "--env", "--python-path"):
        value = b"/tmp/caf\xe9" if option != "--env" else b"X=caf\xe9"
        res = run([stage.cli, "install", venv, option, value], env)
        assert res.returncode == 2
        assert f"pyshim: error: {option} ".encode() in res.stderr
        assert b"not valid UTF-8" in res.stderr
        assert not (venv / "pyshim.toml").exists()


def test_a_full_disk_says_so(stage, tmp_path, env, strace):
    venv = tmp_path / "venv"
    subprocess.run([str(PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True, env=env)
    res = run(["strace", "-qq", "-o", "/dev/null", "-e", "trace=write",
               "-e", "inject=write:error=ENOSPC:when=1", stage.cli, "install", venv], env)
    assert res.returncode != 0
    assert b"No space left on device" in res.stderr
    assert b"Input/output error" not in res.stderr


def test_launcher_refuses_dev_zero_and_a_fifo_as_config(stage, tmp_path, env):
    launcher = tmp_path / "python"
    shutil.copy2(stage.shim, launcher)
    res = run([launcher, "-c", "pass"], dict(env, PYSHIM_CONFIG="/dev/zero"), timeout=20)
    assert res.returncode == 125
    assert b"config /dev/zero is not a regular file" in res.stderr
    fifo = tmp_path / "pyshim.toml"
    os.mkfifo(fifo)
    res = run([launcher, "-c", "pass"], env, timeout=20)  # would block forever on 0.1
    assert res.returncode == 125
    assert f"config {fifo} is not a regular file".encode() in res.stderr


def test_a_setuid_launcher_refuses_to_run(stage, tmp_path, env):
    home = tmp_path / "suid"
    home.mkdir(mode=0o755)
    launcher = home / "python"
    shutil.copy2(stage.shim, launcher)
    (home / "pyshim.toml").write_text(f'interpreter = "{PYTHON}"\n')
    launcher.chmod(0o4755)
    res = as_nobody(launcher, "-c", "print('ran')", env=env)
    if b"ran" in res.stdout and res.returncode == 0:
        pytest.skip("this file system ignores setuid bits (nosuid mount)")
    assert res.returncode == 125, res.stderr.decode()
    assert b"refusing to run with elevated privileges" in res.stderr


def test_error_messages_escape_control_bytes(stage, tmp_path, env):
    home = tmp_path / "esc"
    (home / "bin").mkdir(parents=True)
    (home / "lib" / "pyshim").mkdir(parents=True)
    launcher = home / "bin" / "python"
    shutil.copy2(stage.shim, launcher)
    shutil.copy2(stage.restore, home / "lib" / "pyshim" / stage.restore.name)
    (home / "pyshim.toml").write_text('interpreter = "/nonexistent/\\u001b[31mpython"\n')
    res = run([launcher, "-c", "pass"], env)
    assert res.returncode == 127
    assert b"\x1b" not in res.stderr
    assert b"/nonexistent/\\x1b[31mpython" in res.stderr


@pytest.mark.parametrize("command", ["doctor", "show"])
def test_doctor_and_show_do_not_wait_on_a_fifo_named_as_the_launcher(command, stage, tmp_path,
                                                                     env):
    """A FIFO where the launcher should be (planted as a venv's bin/python,
    or named by mistake): the stamp reader does not open it for reading
    until a writer comes; doctor and show answer at once that it is not a
    launcher they can use."""
    venv = user_venv(tmp_path, env)
    python = venv / "bin" / "python"
    assert as_nobody("/bin/sh", "-c", f"rm {python} && mkfifo {python}", env=env).returncode == 0
    res = pyshim_tool(stage, command, python, env=env, timeout=20)
    assert res.returncode != 0
    out = (res.stdout + res.stderr).decode()
    assert str(python) in out, out
