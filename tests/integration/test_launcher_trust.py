"""The launcher's trust rule (README "Trust"): every path it takes from a
file or derives without /proc (the config beside P, the stamped config, the
restore library found or stamped) is owned by root or the caller, or else by
the launcher binary's own owner in a folder nobody else can write; links are
judged by their own owner (lstat). Without a usable /proc/self/exe nothing is
looked up relative to the current folder.

The attacks are done for real: /proc is hidden in a private mount namespace
(`unshare -m`, tmpfs over /proc), and the second user is `nobody` (setpriv)
planting files that root's launch would otherwise load. A planted library
announces itself in its constructor (a marker file and a line on stderr), so
a test fails the moment it is loaded."""

import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import links_to_base_launcher, run, toml_str

PYTHON = Path("/usr/bin/python3.11")
NOBODY = 65534

PLANTED_C = r"""
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void planted(void) {
  int fd = open(MARKER, O_WRONLY | O_CREAT | O_APPEND, 0666);
  if (fd >= 0) { write(fd, "loaded\n", 7); close(fd); }
  write(2, "PLANTED LIBRARY RAN\n", 20);
}
"""


@pytest.fixture(autouse=True)
def needs_root():
    if os.geteuid() != 0:
        pytest.skip("these tests hide /proc in a mount namespace and act as a second user")


def planted_library(dest: Path, marker: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = dest.with_suffix(".c")
    src.write_text(PLANTED_C)
    subprocess.run(["gcc", "-shared", "-fPIC", f'-DMARKER="{marker}"', "-o", str(dest), str(src)],
                   check=True)
    src.unlink()
    return dest


def without_proc(argv, env, cwd):
    """argv run with an empty tmpfs over /proc (a private mount namespace), so
    /proc/self/exe and /proc/self/fd do not exist, from cwd."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare not installed (Debian package util-linux)")
    script = 'mount -t tmpfs none /proc && cd "$1" && shift && exec "$@"'
    res = run(["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script, "sh", cwd,
               *argv], env, cwd="/")
    if b"mount: " in res.stderr and b"permission denied" in res.stderr.lower():
        pytest.skip(f"cannot mount in a new namespace here: {res.stderr.decode()}")
    return res


def installed_venv(stage, root: Path, env) -> Path:
    subprocess.run([str(PYTHON), "-m", "venv", "--without-pip", str(root)], check=True, env=env)
    res = run([stage.cli, "install", root], env)
    assert res.returncode == 0, res.stderr.decode()
    return root


# What the interpreter reports: whether LD_PRELOAD leaked past the restore
# library (it must not), and the [env] marker of the config used.
REPORT = ("import os; print(os.environ.get('LD_PRELOAD', '<unset>'), "
          "os.environ.get('PYSHIM_ORIG_LD_PRELOAD', '<unset>'), os.environ.get('MARK', '<unset>'))")


@pytest.fixture
def env(tmp_path):
    return {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": str(tmp_path)}


@pytest.fixture
def plant(tmp_path):
    """A folder holding ./lib/pyshim/libpyshim-restore.so and
    ./bin/libpyshim-restore.so (the planted library): what 0.2 preloaded from
    the current folder when /proc/self/exe was unreadable."""
    cwd = tmp_path / "cwd"
    marker = tmp_path / "planted-ran"
    planted_library(cwd / "lib/pyshim/libpyshim-restore.so", marker)
    shutil.copy2(cwd / "lib/pyshim/libpyshim-restore.so", cwd / "libpyshim-restore.so")
    return cwd, marker


def test_no_proc_absolute_invocation_uses_the_venvs_own_restore_library(
        stage, tmp_path, env, plant):
    cwd, marker = plant
    venv = installed_venv(stage, tmp_path / "venv", env)
    res = without_proc([venv / "bin/python", "-c", REPORT], env, cwd)
    assert res.returncode == 0, res.stderr.decode()
    assert not marker.exists(), res.stderr.decode()
    # The restore library ran: nothing of the shim's leaked into the interpreter.
    assert res.stdout.decode() == "<unset> <unset> <unset>\n"


def test_no_proc_relative_invocation_never_looks_in_the_current_folder(
        stage, tmp_path, env, plant):
    """An unstamped launcher started by a relative path, with no /proc: it
    cannot tell where its binary is, so it exits 125 saying so (0.2 preloaded
    ./lib/pyshim/libpyshim-restore.so)."""
    cwd, marker = plant
    (cwd / "bin").mkdir()
    (cwd / "bin/python").symlink_to(stage.shim)
    (cwd / "pyshim.toml").write_text(f"interpreter = {toml_str(str(PYTHON))}\n")
    res = without_proc(["bin/python", "-c", REPORT], env, cwd)
    assert not marker.exists(), res.stderr.decode()
    assert res.returncode == 125, (res.stdout, res.stderr)
    err = res.stderr.decode()
    assert err.startswith("pyshim: error: restore library libpyshim-restore.so not found\n"), err
    assert "/proc/self/exe is unreadable" in err and "relative to the current folder" in err, err
    assert "hint: mount /proc, or start the launcher by its absolute path" in err, err


def test_no_proc_relative_invocation_of_a_stamped_launcher_uses_the_stamped_library(
        stage, tmp_path, env, plant):
    """A stamped launcher copy started by a relative path without /proc: its
    stamped restore library (absolute, and root's) is used, not the cwd's."""
    cwd, marker = plant
    venv = installed_venv(stage, tmp_path / "venv", env)
    (cwd / "bin").mkdir()
    shutil.copy2(venv / "bin/python3.11", cwd / "bin/python")
    res = without_proc(["bin/python", "-c", REPORT], env, cwd)
    assert not marker.exists(), res.stderr.decode()
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.decode() == "<unset> <unset> <unset>\n"


def test_no_proc_and_a_restore_library_path_with_a_space_is_125(stage, tmp_path, env, plant):
    """A venv whose path the loader would split preloads the restore library
    as /proc/self/fd/N; without /proc the loader would skip it and LD_PRELOAD
    would leak into every child: 125 instead."""
    cwd, _ = plant
    venv = installed_venv(stage, tmp_path / "my venv", env)
    ok = run([venv / "bin/python", "-c", REPORT], env)
    assert ok.returncode == 0 and ok.stdout.decode() == "<unset> <unset> <unset>\n", ok.stderr
    res = without_proc([venv / "bin/python", "-c", REPORT], env, cwd)
    assert res.returncode == 125, (res.stdout, res.stderr)
    assert res.stdout == b""
    err = res.stderr.decode()
    assert err.startswith("pyshim: error: cannot preload the restore library "), err
    assert "/proc is not usable" in err and "hint: mount /proc" in err, err


# --------------------------------------------------------------------------
# A second user


def as_nobody(*argv, env):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv not installed (Debian package util-linux)")
    return run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv],
               env)


@pytest.fixture
def shared_tmp():
    """A folder in /tmp that root made and then left, as a finished CI job or
    a deleted checkout does; removed after the test."""
    home = Path(tempfile.mkdtemp(prefix="pyshim-trust-", dir="/tmp"))
    home.chmod(0o755)
    yield home
    shutil.rmtree(home, ignore_errors=True)


def test_a_stamped_path_recreated_by_a_stranger_is_not_trusted(stage, tmp_path, env, shared_tmp):
    """Root derives a venv with --copies from a shim venv in /tmp, then deletes
    the origin. `nobody` recreates the origin's paths (the stamped config with
    a preload of theirs and [env], and the stamped restore library). Root's
    launch of the derived venv loads neither: the stamped config is used as
    stamped, and the stranger's restore library is refused (125, named)."""
    shared_tmp.chmod(0o1777)  # as /tmp itself is
    origin = installed_venv(stage, shared_tmp / "origin", env)
    derived = tmp_path / "derived"
    res = run([origin / "bin/python", "-m", "venv", "--copies", "--without-pip", derived], env)
    assert res.returncode == 0, res.stderr.decode()
    ok = run([derived / "bin/python", "-c", REPORT], env)
    assert ok.returncode == 0 and ok.stdout.decode() == "<unset> <unset> <unset>\n", ok.stderr

    shutil.rmtree(origin)
    marker = Path(tempfile.mkdtemp(prefix="pyshim-marker-", dir="/tmp")) / "ran"
    marker.parent.chmod(0o777)
    evil = planted_library(marker.parent / "evil.so", marker)
    evil.chmod(0o755)
    script = (f'mkdir -p "$1/lib/pyshim" && cp "$2" "$1/lib/pyshim/libpyshim-restore.so" && '
              f'cp "$2" "$1/evil.so" && printf "%s" "$3" > "$1/pyshim.toml"')
    config = (f"interpreter = {toml_str(str(PYTHON))}\npreload = [{toml_str(str(origin / 'evil.so'))}]\n"
              "[env]\nMARK = \"strangers-config\"\n")
    planted = as_nobody("/bin/sh", "-c", script, "sh", origin, evil, config, env=env)
    assert planted.returncode == 0, planted.stderr.decode()
    try:
        assert (origin / "pyshim.toml").stat().st_uid == NOBODY

        res = run([derived / "bin/python", "-c", REPORT], env)
        assert not marker.exists(), res.stderr.decode()
        assert b"PLANTED" not in res.stderr
        assert res.returncode == 125, (res.stdout, res.stderr)
        err = res.stderr.decode()
        assert err.startswith("pyshim: error: restore library libpyshim-restore.so not found\n"), err
        assert (f"searched: {origin}/lib/pyshim/libpyshim-restore.so (stamped) (skipped: owned by "
                f"uid {NOBODY}") in err, err

        # With a restore library of its own beside it, the derived venv runs
        # with the stamped config (no MARK), never the stranger's file.
        (derived / "lib/pyshim").mkdir(parents=True)
        shutil.copy2(stage.restore, derived / "lib/pyshim/libpyshim-restore.so")
        res = run([derived / "bin/python", "-c", REPORT], env)
        assert not marker.exists(), res.stderr.decode()
        assert res.returncode == 0, res.stderr.decode()
        assert res.stdout.decode() == "<unset> <unset> <unset>\n"
        debug = run([derived / "bin/python", "-c", "pass"], {**env, "PYSHIM_LOG": "debug"})
        assert f"config {origin}/pyshim.toml (stamped in the launcher: not parsed)" in \
            debug.stderr.decode(), debug.stderr.decode()
    finally:
        shutil.rmtree(marker.parent, ignore_errors=True)


def test_a_strangers_link_named_pyshim_toml_is_judged_by_its_own_owner(
        stage, tmp_path, env, shared_tmp):
    """In a folder anyone can write (sticky, like /tmp), `nobody` makes
    pyshim.toml a link to a config root owns. 0.2 followed the link and
    trusted it by its target's owner; the link is nobody's, so it is skipped."""
    shared_tmp.chmod(0o1777)
    (shared_tmp / "bin").mkdir()
    (shared_tmp / "bin/python").symlink_to(stage.shim)
    roots = tmp_path / "roots.toml"
    roots.write_text(f"interpreter = {toml_str(str(PYTHON))}\n[env]\nMARK = \"roots-config\"\n")
    tmp_path.chmod(0o755)
    made = as_nobody("ln", "-s", roots, shared_tmp / "pyshim.toml", env=env)
    assert made.returncode == 0, made.stderr.decode()
    assert os.lstat(shared_tmp / "pyshim.toml").st_uid == NOBODY

    res = run([shared_tmp / "bin/python", "-c", REPORT], env)
    assert res.returncode == 125, (res.stdout, res.stderr)
    err = res.stderr.decode()
    assert err.startswith(f"pyshim: error: no pyshim.toml found for {shared_tmp}/bin/python\n"), err
    assert (f"searched: {shared_tmp}/pyshim.toml (skipped: a link owned by uid {NOBODY})"
            in err), err

    # Control: root's own link there is followed, and the config it names used.
    os.unlink(shared_tmp / "pyshim.toml")
    os.symlink(roots, shared_tmp / "pyshim.toml")
    res = run([shared_tmp / "bin/python", "-c", REPORT], env)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.decode() == "<unset> <unset> roots-config\n"


def test_a_strangers_restore_library_beside_a_launcher_is_skipped(stage, tmp_path, env,
                                                                  shared_tmp):
    """A launcher copy in a folder anyone can write: `nobody` plants
    lib/pyshim/libpyshim-restore.so beside it. Root's launch skips it (it is
    not root's, nor is the launcher nobody's) and says so."""
    shared_tmp.chmod(0o1777)
    marker = Path(tempfile.mkdtemp(prefix="pyshim-marker-", dir="/tmp")) / "ran"
    marker.parent.chmod(0o777)
    try:
        (shared_tmp / "bin").mkdir()
        shutil.copy2(stage.shim, shared_tmp / "bin/python")
        (shared_tmp / "pyshim.toml").write_text(f"interpreter = {toml_str(str(PYTHON))}\n")
        evil = planted_library(marker.parent / "evil.so", marker)
        evil.chmod(0o755)
        made = as_nobody("/bin/sh", "-c", 'mkdir -p "$1/lib/pyshim" && cp "$2" "$1/lib/pyshim/"'
                         'libpyshim-restore.so', "sh", shared_tmp, evil, env=env)
        assert made.returncode == 0, made.stderr.decode()
        res = run([shared_tmp / "bin/python", "-c", REPORT], env)
        assert not marker.exists(), res.stderr.decode()
        assert res.returncode == 125, (res.stdout, res.stderr)
        err = res.stderr.decode()
        assert (f"searched: {shared_tmp}/lib/pyshim/libpyshim-restore.so (skipped: owned by uid "
                f"{NOBODY}") in err, err
    finally:
        shutil.rmtree(marker.parent, ignore_errors=True)


def test_install_leaves_a_stamp_that_is_not_racily_clean(stage, tmp_path, env):
    """The stamp's clock is the config's ctime recorded in it; install moves
    the config's mtime back by the timestamp granularity (2 s) before it
    stamps, so launches use the stamp without parsing, and a same-size edit
    in the same tick still changes the identity (its mtime is now)."""
    venv = installed_venv(stage, tmp_path / "venv", env)
    st = os.stat(venv / "pyshim.toml")
    assert st.st_ctime_ns - st.st_mtime_ns >= 2_000_000_000, (st.st_mtime_ns, st.st_ctime_ns)
    debug = run([venv / "bin/python", "-c", "pass"], {**env, "PYSHIM_LOG": "debug"})
    assert debug.returncode == 0, debug.stderr.decode()
    assert f"config {venv}/pyshim.toml (stamped in the launcher: not parsed)" in \
        debug.stderr.decode(), debug.stderr.decode()
    # A same-size edit right away is seen at the next launch.
    text = (venv / "pyshim.toml").read_text()
    assert "interpreter = " in text
    with open(venv / "pyshim.toml", "r+") as f:
        f.write(text.replace("[", "#", 1) if text.startswith("[") else "#" + text[1:])
    debug = run([venv / "bin/python", "-c", "pass"], {**env, "PYSHIM_LOG": "debug"})
    assert f"config {venv}/pyshim.toml\n" in debug.stderr.decode(), debug.stderr.decode()


def found_as(venv: Path) -> Path:
    """The path the launcher names the venv's restore library by: on CPython
    3.11+ bin/python3.11 links to the base launcher, which finds it through
    its own ../lib (.pyshim/base/lib -> ../../lib: the same file)."""
    if links_to_base_launcher(venv):
        return venv / ".pyshim/base/lib/pyshim/libpyshim-restore.so"
    return venv / "lib/pyshim/libpyshim-restore.so"


@pytest.mark.parametrize("kind", ["empty", "text", "static executable", "32-bit"])
def test_a_restore_library_the_loader_would_skip_is_125(stage, tmp_path, env, kind):
    """An empty, non-ELF, non-shared or wrong-class restore library: the
    loader would warn, skip it and let LD_PRELOAD leak into every child; the
    launcher exits 125 naming it instead. An empty one is caught by the hot
    path's free checks (size from lstat); the content by the general path
    (here: after a hand edit of the config, which the general path parses)."""
    venv = installed_venv(stage, tmp_path / "venv", env)
    lib = venv / "lib/pyshim/libpyshim-restore.so"
    if kind == "empty":
        lib.write_bytes(b"")
    elif kind == "text":
        lib.write_text("not a library\n" * 1000)
    elif kind == "static executable":
        shutil.copy2(stage.shim, lib)  # static, ET_EXEC
    else:
        # The ELF header of an i386 shared object (all the check reads).
        header = struct.pack("<16sHHIIIIIHHHHHH", b"\x7fELF\x01\x01\x01" + bytes(9), 3, 3, 1,
                             0, 0, 0, 0, 52, 32, 0, 40, 0, 0)
        lib.write_bytes(header + bytes(4096))
    if kind != "empty":
        (venv / "pyshim.toml").write_text(f"interpreter = {toml_str(str(PYTHON))}\n")
    res = run([venv / "bin/python", "-c", REPORT], env)
    assert res.returncode == 125, (res.stdout, res.stderr)
    assert res.stdout == b""
    err = res.stderr.decode()
    first = err.splitlines()[0]
    why = {"empty": "is not an ELF file", "text": "is not an ELF file",
           "static executable": "is not a shared object", "32-bit": "is "}[kind]
    assert first.startswith(f"pyshim: error: restore library {found_as(venv)} {why}"), err
    assert "LD_PRELOAD would leak into every child" in err, err
    if kind == "32-bit":
        assert f"32-bit, the interpreter {PYTHON} is" in first, first


def test_a_restore_library_the_caller_cannot_read_is_125(stage, env, shared_tmp):
    """Root's venv, its restore library readable by root only; `nobody` runs
    the venv's python. 0.2 exec'd the interpreter, whose loader could not
    open the library, warned and went on with LD_PRELOAD leaking. The hot
    path sees from lstat that the caller cannot read it; the general path
    says so (125)."""
    venv = installed_venv(stage, shared_tmp / "venv", env)
    lib = venv / "lib/pyshim/libpyshim-restore.so"
    ok = as_nobody(venv / "bin/python", "-c", REPORT, env=env)
    assert ok.returncode == 0 and ok.stdout.decode() == "<unset> <unset> <unset>\n", ok.stderr
    lib.chmod(0o600)
    res = as_nobody(venv / "bin/python", "-c", REPORT, env=env)
    assert res.returncode == 125, (res.stdout, res.stderr)
    assert res.stdout == b""
    err = res.stderr.decode()
    assert err.startswith(f"pyshim: error: restore library {found_as(venv)} cannot be read: "
                          "Permission "
                          "denied\n"), err
