"""Crash safety of `pyshim install` and `uninstall`, proved by killing the
real binary at every mutating syscall (strace -e inject=...:signal=SIGKILL)
and by failing each write with ENOSPC and EIO.

After every injection point: no interpreter file is lost (each original is in
bin/ or in .pyshim/backup/), every interpreter name in bin/ exists, and one
re-run of the same command brings the venv to the good new state; `uninstall`
then gives the original venv back byte for byte (and with the same inodes'
metadata). The number of injection points covered is printed."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import PROBE, pyshim_tool, run, run_json

PYTHON = Path("/usr/bin/python3.11")
JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
MUTATING = ("openat,write,fsync,fchmod,fchown,rename,renameat,renameat2,unlink,unlinkat,"
            "link,linkat,symlink,symlinkat,mkdir,mkdirat")
INTERPRETER_NAMES = ("python", "python3", "python3.11")


def snapshot(root: Path) -> dict:
    """Every path under root: (kind, bytes or link text, mode)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = p.lstat()
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p), st.st_mode)
            elif p.is_file():
                out[rel] = ("file", p.read_bytes(), st.st_mode, st.st_mtime_ns)
            else:
                out[rel] = ("dir", None, st.st_mode)
    return out


@pytest.fixture(scope="module")
def templates(tmp_path_factory, stage, strace):
    base = tmp_path_factory.mktemp("fi-templates")
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
    out = {}
    for layout, args in (("copies", ["--copies"]), ("links", [])):
        venv = base / layout
        subprocess.run([str(PYTHON), "-m", "venv", "--without-pip", *args, str(venv)],
                       check=True, env=env)
        out[f"plain-{layout}"] = venv
        installed = base / f"installed-{layout}"
        shutil.copytree(venv, installed, symlinks=True)
        res = pyshim_tool(stage, "install", installed, "--preload", JEMALLOC, env=env)
        assert res.returncode == 0, res.stderr
        out[f"installed-{layout}"] = installed
    return out


def originals(plain: Path) -> dict:
    return {name: (plain / "bin" / name) for name in INTERPRETER_NAMES}


def check_nothing_lost(venv: Path, plain: Path):
    """Every interpreter name exists in bin/, and every original regular file
    is still somewhere: in bin/ or in the backup."""
    for name, original in originals(plain).items():
        here = venv / "bin" / name
        assert here.is_symlink() or here.exists(), f"bin/{name} is missing"
        if original.is_symlink():
            continue
        data = original.read_bytes()
        backup = venv / ".pyshim" / "backup" / name
        in_bin = here.is_file() and not here.is_symlink() and here.read_bytes() == data
        in_backup = backup.is_file() and not backup.is_symlink() and backup.read_bytes() == data
        assert in_bin or in_backup, f"the original bin/{name} is lost"


def check_installed(venv: Path, env):
    """The new state: the shim runs and jemalloc is mapped."""
    res = run_json([venv / "bin" / "python", PROBE], env)
    assert res["parent"]["executable"] == str(venv / "bin" / "python")
    assert str(JEMALLOC) in res["parent"]["maps"]


def rerun(argv, venv: Path, plain: Path, env):
    """One re-run of the same command after an injected fault must succeed,
    except an uninstall whose kill came after its last change: the venv is
    already the original, and a second uninstall says there is nothing to
    undo."""
    res = run(argv, env)
    if res.returncode != 0 and argv[1] == "uninstall" and snapshot(venv) == snapshot(plain):
        assert b"is not a venv installed by `pyshim install`" in res.stderr
        return res
    assert res.returncode == 0, res.stderr.decode()
    return res


def summary(line: str):
    """The number of injection points covered, printed by scripts/dev.sh after
    the test run (pytest-xdist hides a worker's output)."""
    out = Path(os.environ.get("PYSHIM_BUILD", "/tmp")) / "fault-injection-summary.txt"
    with open(out, "a") as f:
        f.write(line + "\n")


def check_uninstalled(venv: Path, plain: Path):
    assert snapshot(venv) == snapshot(plain), "uninstall did not give the original venv back"


COMMANDS = {
    # name: (template the command starts from, argv after the venv, template to compare)
    "install": ("plain-copies", ["--preload", str(JEMALLOC)]),
    "install-symlink": ("plain-links", ["--preload", str(JEMALLOC), "--symlink"]),
    "reconfigure": ("installed-copies", ["--preload", str(JEMALLOC), "--env", "FI=1"]),
    "uninstall": ("installed-copies", None),
}


def count_calls(argv, trace: Path, env, syscalls=MUTATING) -> dict:
    """How many times the command makes each of these syscalls. strace's
    when=N counts per syscall, so the injection points are (name, N)."""
    subprocess.run(["strace", "-qq", "-o", str(trace), "-e", f"trace={syscalls}", *argv],
                   env=env, capture_output=True, check=True)
    counts = {}
    for line in trace.read_text().splitlines():
        if not line.startswith(("---", "+++")):
            name = line.split("(", 1)[0]
            counts[name] = counts.get(name, 0) + 1
    return counts


def points(counts: dict):
    return [(name, n) for name, count in sorted(counts.items()) for n in range(1, count + 1)]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_kill_at_every_mutating_syscall(command, templates, stage, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": str(tmp_path)}
    start, args = COMMANDS[command]
    plain = templates["plain-copies"] if command != "install-symlink" else templates["plain-links"]
    cli = "uninstall" if args is None else "install"

    def fresh(i):
        venv = tmp_path / f"v{i}"
        if venv.exists():
            shutil.rmtree(venv)
        shutil.copytree(templates[start], venv, symlinks=True)
        return venv

    def argv(venv):
        return [str(stage.cli), cli, str(venv)] + ([] if args is None else args)

    where = points(count_calls(argv(fresh(0)), tmp_path / "trace", env))
    total = len(where)
    assert total > 20, f"only {total} mutating calls traced: is strace working?"
    kills = 0
    for i, (syscall, n) in enumerate(where):
        venv = fresh(i)
        killed = subprocess.run(
            ["strace", "-qq", "-o", "/dev/null", "-e", f"trace={syscall}",
             "-e", f"inject={syscall}:signal=SIGKILL:when={n}", *argv(venv)],
            env=env, capture_output=True)
        kills += killed.returncode in (-9, 128 + 9)  # strace dies of its tracee's signal
        check_nothing_lost(venv, plain)
        try:
            rerun(argv(venv), venv, plain, env)
        except AssertionError as e:
            raise AssertionError(f"after a kill at {syscall} #{n}, re-running `{cli}`: {e}")
        if cli == "install":
            check_installed(venv, env)
            assert run([stage.cli, "uninstall", venv], env).returncode == 0
        check_uninstalled(venv, plain)
        shutil.rmtree(venv)
    assert kills == total, f"only {kills} of {total} injections killed the command"
    summary(f"{command}: SIGKILL at each of {total} mutating syscalls ({kills} killed it), "
            "each recovered by one re-run, then uninstall gave the original venv back")


@pytest.mark.parametrize("error", ["ENOSPC", "EIO"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_failing_writes_are_reported_and_recoverable(command, error, templates, stage, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": str(tmp_path)}
    start, args = COMMANDS[command]
    plain = templates["plain-copies"] if command != "install-symlink" else templates["plain-links"]
    cli = "uninstall" if args is None else "install"
    venv = tmp_path / "v"
    shutil.copytree(templates[start], venv, symlinks=True)
    argv = [str(stage.cli), cli, str(venv)] + ([] if args is None else args)
    where = points(count_calls(argv, tmp_path / "trace", env, "write,fsync"))
    writes = len(where)
    assert writes > 0
    shutil.rmtree(venv)
    message = {"ENOSPC": "No space left on device", "EIO": "Input/output error"}[error]
    for syscall, n in where:
        shutil.copytree(templates[start], venv, symlinks=True)
        failed = subprocess.run(
            ["strace", "-qq", "-o", "/dev/null", "-e", f"trace={syscall}",
             "-e", f"inject={syscall}:error={error}:when={n}", *argv],
            env=env, capture_output=True)
        if failed.returncode != 0:
            # The real cause, not a generic error.
            assert message in failed.stderr.decode(), failed.stderr.decode()
        check_nothing_lost(venv, plain)
        rerun(argv, venv, plain, env)
        if cli == "install":
            check_installed(venv, env)
            assert run([stage.cli, "uninstall", venv], env).returncode == 0
        check_uninstalled(venv, plain)
        shutil.rmtree(venv)
    summary(f"{command}: {error} at each of {writes} write/fsync calls, reported with its "
            "cause and recovered by one re-run")


def test_dynlib_kill_at_every_mutating_syscall(stage, tmp_path, strace):
    """`pyshim dynlib` killed at each of its own mutating syscalls (the
    venv's interpreter it asks is not traced): the folder holds old or new
    links, never a half-written one, and one re-run gives exactly what an
    uninterrupted run gives."""
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": str(tmp_path)}
    template = tmp_path / "template"
    subprocess.run([str(PYTHON), "-m", "venv", "--without-pip", str(template)], check=True,
                   env=env)
    site = next((template / "lib").glob("python3.*/site-packages"))
    for name in ("liba.so.1", "libb.so.2", "sub/libc.so"):
        (site / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(JEMALLOC, site / "pkg" / name)
    dynlib = Path("share/venv/dynlib")

    def fresh(i):
        venv = tmp_path / f"v{i}"
        shutil.copytree(template, venv, symlinks=True)
        return venv

    def argv(venv):
        return [str(stage.cli), "dynlib", str(venv)]

    expected_venv = fresh("expected")
    assert run(argv(expected_venv), env).returncode == 0
    expected = snapshot(expected_venv / dynlib)
    assert len(expected) >= 3, expected

    where = points(count_calls(argv(fresh(0)), tmp_path / "trace", env))
    kills = 0
    for i, (syscall, n) in enumerate(where, start=1):
        venv = fresh(i)
        killed = subprocess.run(
            ["strace", "-qq", "-o", "/dev/null", "-e", f"trace={syscall}",
             "-e", f"inject={syscall}:signal=SIGKILL:when={n}", *argv(venv)],
            env=env, capture_output=True)
        kills += killed.returncode in (-9, 128 + 9)
        folder = venv / dynlib
        if folder.is_dir():
            for entry in folder.iterdir():
                if entry.name.endswith(".pyshim-tmp"):
                    continue  # a temporary the re-run clears
                assert entry.is_symlink() and os.readlink(entry) == expected[entry.name][1], (
                    f"after a kill at {syscall} #{n}: {entry.name} is not an old or new link")
        res = run(argv(venv), env)
        assert res.returncode == 0, (syscall, n, res.stderr.decode())
        assert snapshot(folder) == expected, f"after a kill at {syscall} #{n} and a re-run"
        shutil.rmtree(venv)
    assert kills == len(where), f"only {kills} of {len(where)} injections killed the command"
    summary(f"dynlib: SIGKILL at each of {len(where)} mutating syscalls, each recovered by one "
            "re-run to the uninterrupted result")


@pytest.mark.parametrize("start", ["new", "empty-folder"])
def test_init_removes_what_it_made_when_a_file_system_call_fails(start, stage, tmp_path,
                                                                   strace):
    """`pyshim init` whose install fails with a file-system error (each write,
    fsync, mkdir, rename and symlink of the tool fails once with ENOSPC):
    it says why and leaves nothing behind (a folder it was given empty stays,
    empty), so the same command can simply be run again."""
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": str(tmp_path)}
    venv = tmp_path / "v"
    argv = [str(stage.cli), "init", str(venv), "--python", str(PYTHON), "-q"]

    def fresh():
        shutil.rmtree(venv, ignore_errors=True)
        if start == "empty-folder":
            venv.mkdir()

    fresh()
    syscalls = "write,fsync,mkdirat,renameat,symlinkat"
    where = points(count_calls(argv, tmp_path / "trace", env, syscalls))
    assert len(where) > 20
    failed = 0
    for syscall, n in where:
        fresh()
        res = subprocess.run(
            ["strace", "-qq", "-o", "/dev/null", "-e", f"trace={syscall}",
             "-e", f"inject={syscall}:error=ENOSPC:when={n}", *argv],
            env=env, capture_output=True)
        if res.returncode == 0:  # a write that did not matter (none so far)
            assert run([venv / "bin" / "python", "-c", "pass"], env).returncode == 0
            continue
        failed += 1
        err = res.stderr.decode()
        assert "No space left on device" in err, (syscall, n, err)
        assert "which init had created" in err, (syscall, n, err)
        if start == "new":
            assert not os.path.lexists(venv), (syscall, n, sorted(os.listdir(venv)))
        else:
            assert venv.is_dir() and list(venv.iterdir()) == [], (syscall, n)
        fresh()
        # The same command now succeeds: nothing in its way.
        assert run(argv, env).returncode == 0
    assert failed > 0
    summary(f"init ({start}): ENOSPC at each of {len(where)} file-system calls: {failed} failed "
            "it, each leaving nothing behind")
