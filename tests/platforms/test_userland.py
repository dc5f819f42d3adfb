"""The product's tests in another Debian userland: run INSIDE the chroot that
tests/platforms/run.sh made, by that userland's own python3 (3.9 on Debian 11,
3.13 on Debian 13, the arm64 3.11 under qemu-user), with the standard library
only (no pytest there).

  PYSHIM_PREFIX=/opt/pyshim PYTHON=/usr/bin/python3.X python3 test_userland.py

Each test_* function is one check; the script prints "ok NAME",
"skip NAME (why)" or "FAIL NAME" with the reason, then "platforms: N passed,
N failed, N skipped", and exits 1 on any failure. Optional: PYSHIM_DEB=X.deb
also installs that package with dpkg and uses it; PYSHIM_WHEEL=X.whl installs
that wheel with pip into a fresh venv and uses it; HOT_PATH_TRACE=1 (under
qemu-user) counts the stamped hot path's syscalls with QEMU_STRACE.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections import Counter
from pathlib import Path

# The tests' ELF and maps readers: beside this file in the chroot (run.sh
# copies them there), in tests/integration in the source tree.
sys.path.append(str(Path(__file__).resolve().parent.parent / "integration"))
from elf_and_maps import elf_section_header, mapped_files  # noqa: E402

PREFIX = Path(os.environ.get("PYSHIM_PREFIX", "/opt/pyshim"))
PYSHIM = PREFIX / "bin/pyshim"
PYTHON = Path(os.environ["PYTHON"])
WORK = Path(tempfile.mkdtemp(prefix="pyshim-platform-"))
VENV = WORK / "venv"
BASE_ENV = {"PATH": "/usr/bin:/bin", "HOME": str(WORK), "LANG": "C.UTF-8"}

MAPS = "import pathlib, sys; sys.stdout.write(pathlib.Path('/proc/self/maps').read_text())"
WORKER_MAPS = r"""
import multiprocessing, pathlib, sys
if __name__ == "__main__":
    with multiprocessing.get_context(sys.argv[1]).Pool(1) as pool:
        sys.stdout.write(pool.apply(pathlib.Path("/proc/self/maps").read_text))
"""


def run(argv, env=None, **kw):
    return subprocess.run([str(a) for a in argv], env=env or BASE_ENV, capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL, **kw)


def ok(res, what):
    assert res.returncode == 0, f"{what}: exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res


def jemalloc() -> str:
    out = run(["/sbin/ldconfig", "-p"]).stdout
    m = re.search(r"libjemalloc\.so\.2 \(.*\) => (\S+)", out)
    assert m, "libjemalloc2 is not installed in the userland"
    return os.path.realpath(m.group(1))


def mapped(maps: str, path: str) -> bool:
    return path in mapped_files(maps)


def test_init_starts_the_venv():
    res = ok(run([PYSHIM, "init", VENV, "--python", PYTHON, "--preload", "jemalloc"]), "init")
    assert f"started {VENV}/bin/python: it runs" in res.stdout, res.stdout


def test_launch_sys_executable():
    info = json.loads(ok(run([VENV / "bin/python", "-c",
                              "import json, sys; print(json.dumps([sys.executable, sys.prefix]))"]),
                         "launch").stdout)
    assert info == [str(VENV / "bin/python"), str(VENV)], info


def test_preload_in_the_interpreter():
    maps = ok(run([VENV / "bin/python", "-c", MAPS]), "maps").stdout
    assert mapped(maps, jemalloc()), "jemalloc is not mapped in the interpreter"


def worker_maps(python, context):
    script = WORK / "worker.py"
    script.write_text(WORKER_MAPS)
    return ok(run([python, script, context]), f"{context} worker").stdout


def test_preload_in_a_spawn_worker():
    assert mapped(worker_maps(VENV / "bin/python", "spawn"), jemalloc())


def test_preload_in_a_forkserver_worker():
    assert mapped(worker_maps(VENV / "bin/python", "forkserver"), jemalloc())


def test_sh_child_gets_the_callers_environment():
    env = dict(BASE_ENV, CALLER_MARK="from-the-caller")
    script = ("import subprocess; subprocess.run(['/bin/sh', '-c', "
              "'echo \"preload=${LD_PRELOAD-unset} mark=$CALLER_MARK\"; env; "
              "cat /proc/self/maps'], check=True)")
    out = ok(run([VENV / "bin/python", "-c", script], env=env), "sh child").stdout
    assert out.splitlines()[0] == "preload=unset mark=from-the-caller", out.splitlines()[0]
    assert "PYSHIM_" not in out.replace("pyshim-platform-", ""), "bookkeeping reached /bin/sh"
    assert jemalloc() not in out and "libpyshim-restore" not in out, "/bin/sh maps the preload"


def test_derived_venv_keeps_the_preload():
    derived = WORK / "derived"
    ok(run([VENV / "bin/python", "-m", "venv", "--without-pip", derived]), "derived venv")
    res = ok(run([derived / "bin/python", "-c",
                  "import sys; print(sys.executable); print(sys.prefix)"]), "derived launch")
    assert res.stdout.split() == [str(derived / "bin/python"), str(derived)], res.stdout
    maps = ok(run([derived / "bin/python", "-c", MAPS]), "derived maps").stdout
    assert mapped(maps, jemalloc()), "the derived venv lost the preload"


def test_doctor_passes():
    res = run([PYSHIM, "doctor", VENV / "bin/python"])
    assert res.returncode == 0, res.stdout + res.stderr
    glibc = os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.31"
    assert f"C library loads the restore library and preloads: {glibc} (" in res.stdout, res.stdout


def test_a_preload_for_a_newer_glibc_is_refused_by_name():
    # The userland's jemalloc with its base version renamed to one no glibc
    # defines (same length: the file stays valid).
    data = Path(jemalloc()).read_bytes()
    for old, new in ((b"GLIBC_2.2.5\0", b"GLIBC_9.9.9\0"), (b"GLIBC_2.17\0", b"GLIBC_9.99\0")):
        if data.count(old) == 1:
            break
    else:
        raise AssertionError("no base glibc version to rename in jemalloc")
    lib = WORK / "libjemalloc-newer.so.2"
    lib.write_bytes(data.replace(old, new))
    name = new.rstrip(b"\0").decode()
    loader = run([PYTHON, "-c", "pass"], env=dict(BASE_ENV, LD_PRELOAD=str(lib)))
    assert name in loader.stderr, f"the loader does not refuse it: {loader.stderr}"
    venv = WORK / "refused"
    res = run([PYSHIM, "init", venv, "--python", PYTHON, "--preload", lib])
    assert res.returncode == 1 and name in res.stderr, res.stdout + res.stderr
    assert not venv.exists()


def test_the_debian_package_installs_and_works():
    """Only where run.sh put a .deb of this architecture in (PYSHIM_DEB)."""
    deb = os.environ.get("PYSHIM_DEB")
    if not deb:
        return "skipped: no .deb for this architecture was built"
    root_env = dict(BASE_ENV, PATH="/usr/sbin:/usr/bin:/sbin:/bin")
    ok(run(["dpkg", "-i", deb], env=root_env), "dpkg -i")
    try:
        venv = WORK / "from-deb"
        res = ok(run(["/usr/bin/pyshim", "init", venv, "--python", PYTHON, "--preload",
                      "jemalloc"]), "init")
        assert "/usr/lib/pyshim/pyshim-launcher" in res.stdout, res.stdout
        assert mapped(worker_maps(venv / "bin/python", "spawn"), jemalloc())
    finally:
        ok(run(["dpkg", "--purge", "pyshim"], env=root_env), "dpkg --purge")
    return f"{Path(deb).name} installed, used and purged"


def test_the_wheel_installs_with_pip_and_works():
    """Only where run.sh put a wheel of this architecture in (PYSHIM_WHEEL)."""
    wheel = os.environ.get("PYSHIM_WHEEL")
    if not wheel:
        return "skipped: no wheel for this architecture was built"
    env = dict(BASE_ENV, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    tools = WORK / "tools"
    ok(run([PYTHON, "-m", "venv", tools], env=env), "venv")
    ok(run([tools / "bin/python", "-m", "pip", "install", "--no-deps", wheel], env=env), "pip")
    venv = WORK / "from-wheel"
    res = ok(run([tools / "bin/pyshim", "init", venv, "--python", PYTHON, "--preload",
                  "jemalloc"]), "init")
    assert f"{tools}/lib/pyshim/pyshim-launcher" in res.stdout, res.stdout
    assert mapped(worker_maps(venv / "bin/python", "spawn"), jemalloc())
    return f"{Path(wheel).name} installed with pip and used"


def stamp_offset(path: Path) -> int:
    section = elf_section_header(path.read_bytes(), ".pyshim.stamp", what=path)
    assert section is not None, f"{path} has no .pyshim.stamp section"
    return section[1]


def test_a_damaged_stamp_is_refused_with_125():
    venv = WORK / "damaged"
    ok(run([PYSHIM, "init", venv, "--python", PYTHON]), "init")
    launcher = Path(os.path.realpath(venv / "bin/python"))
    at = stamp_offset(launcher) + 45  # a byte of the stamp's payload
    with open(launcher, "r+b") as f:
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0xFF]))
    (venv / "pyshim.toml").unlink()  # so the launcher needs its stamp
    res = run([venv / "bin/python", "-c", "pass"])
    assert res.returncode == 125, (res.returncode, res.stderr)
    assert "stamped config is damaged" in res.stderr, res.stderr


def test_hot_path_syscalls_under_qemu():
    """Only with HOT_PATH_TRACE=1 (qemu-user): the guest's syscalls from the
    stamped launcher's start up to its execve, as QEMU_STRACE prints them."""
    if os.environ.get("HOT_PATH_TRACE") != "1":
        return ("skipped: runs under qemu-user only; on x86-64 tests/integration/"
                "test_hot_path.py traces the hot path with strace")
    venv = WORK / "hot"
    ok(run([PYSHIM, "init", venv, "--python", PYTHON]), "init")
    res = run([venv / "bin/python", "-c", "pass"], env=dict(BASE_ENV, QEMU_STRACE="1"))
    calls = []
    for line in res.stderr.splitlines():
        m = re.match(r"\d+ (\w+)\(", line)
        if not m:
            continue
        if m.group(1) == "execve":
            break
        calls.append(m.group(1))
    # x86-64's documented list (tests/integration/test_hot_path.py) with
    # readlinkat for readlink, which aarch64's syscall table lacks.
    assert Counter(calls) == Counter({"newfstatat": 4, "readlinkat": 1}), calls
    # Minor page faults under qemu-user are the emulator's own (it maps and
    # translates the guest), so they are reported beside the same count for
    # the interpreter started directly, not compared with x86-64's.
    def faults(argv):
        best = None
        for _ in range(5):
            proc = subprocess.Popen([str(a) for a in argv], env=BASE_ENV)
            _, _, usage = os.wait4(proc.pid, 0)
            best = usage.ru_minflt if best is None else min(best, usage.ru_minflt)
        return best
    return (f"hot path: {len(calls) + 1} syscalls ({', '.join(calls)}, execve); minor faults "
            f"under qemu: launcher+python {faults([venv / 'bin/python', '-c', 'pass'])}, "
            f"python alone {faults([PYTHON, '-c', 'pass'])}")


def main():
    passed = failed = skipped = 0
    for name, fn in list(globals().items()):
        if not name.startswith("test_") or not callable(fn):
            continue
        try:
            note = fn()
            if note and note.startswith("skipped: "):
                print(f"skip {name}  ({note[len('skipped: '):]})", flush=True)
                skipped += 1
                continue
            print(f"ok {name}" + (f"  ({note})" if note else ""), flush=True)
            passed += 1
        except Exception:  # noqa: BLE001 - every failure is reported, the run goes on
            failed += 1
            print(f"FAIL {name}\n" + "".join("    " + l for l in
                                             traceback.format_exc().splitlines(True)), flush=True)
    shutil.rmtree(WORK, ignore_errors=True)
    print(f"platforms: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
