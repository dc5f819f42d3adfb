"""The launcher's hot path stays at the physical limit (README "Benchmark": as
fast as a minimal static execve wrapper). Not timings: facts that hold on any Debian 12
kernel and fail the moment the hot path gains a static initialiser, a heap
allocation, a syscall or a page beyond what it is documented to make.

The hot path: a stamped launcher copy (`pyshim install`), started the usual
way, whose pyshim.toml is the stamped one, unchanged. It runs from the ELF
entry point, before glibc's start-up (src/launcher/entry.cpp), so its
syscalls before the interpreter's execve are exactly the lookups of
the README, and none of what glibc's static start-up makes (the
minimal wrapper's list: brk, arch_prctl, set_tid_address, ..., mprotect).
"""

import os
import re
import resource
import shutil
import struct
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from conftest import elf_section_header, main_launcher_name, plain_venv, pyshim_tool, run

HERE = Path(__file__).resolve().parent
MINIMAL_WRAPPER = HERE.parent / "bench" / "minimal_wrapper.c"

# What the hot path may do before it execs the interpreter, invoked by an
# absolute path in a venv without preloads: stat bin/pyshim.toml (absent) and
# pyshim.toml (the stamped one), readlink /proc/self/exe, stat the restore
# library, stat the interpreter; plus the execve that started the launcher.
# A relative invocation adds getcwd; each preload adds a stat.
HOT_PATH_SYSCALLS = Counter({"execve": 1, "newfstatat": 4, "readlink": 1})

# Made by glibc's static start-up (and so by the minimal wrapper): none of
# them may appear on the hot path. brk/mmap would be the heap; arch_prctl and
# set_tid_address the thread set-up that runs before any static initialiser.
GLIBC_STARTUP = {"brk", "mmap", "arch_prctl", "set_tid_address", "set_robust_list", "rseq",
                 "prlimit64", "getrandom", "mprotect"}


def _need(tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not found (Debian package {tool if tool != 'objdump' else 'binutils'})")


@pytest.fixture(scope="module")
def exit0(tmp_path_factory) -> Path:
    """A static program that only exits: the launcher's target, so whatever
    is measured is the launcher's."""
    _need("gcc")
    root = tmp_path_factory.mktemp("exit0")
    src = root / "exit0.c"
    src.write_text('void _start(void) { __asm__ volatile("mov $60, %eax; xor %edi, %edi; syscall"); }\n')
    out = root / "exit0"
    subprocess.run(["gcc", "-O2", "-static", "-nostdlib", "-o", str(out), str(src)], check=True)
    return out


@pytest.fixture(scope="module")
def minimal(exit0, tmp_path_factory) -> Path:
    """tests/bench/minimal_wrapper.c exec'ing exit0: glibc's static start-up
    and one execve."""
    root = tmp_path_factory.mktemp("minimal")
    out = root / "minimal"
    res = subprocess.run(["gcc", "-O2", "-static", f'-DTARGET="{exit0}"', "-o", str(out),
                          str(MINIMAL_WRAPPER)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"static linking unavailable: {res.stderr.decode()[-300:]}")
    return out


@pytest.fixture
def hot_venv(stage, py, exit0, tmp_path, base_env):
    """A venv made as users make it, whose interpreter is exit0."""
    root = tmp_path / "venv"
    plain_venv(py, root, base_env)
    res = pyshim_tool(stage, "install", root, "--python", exit0, env=base_env)
    assert res.returncode == 0, res.stderr.decode()
    return root / "bin" / main_launcher_name(py)


def syscalls_before_exec(tmp_path, argv, env, cwd="/"):
    """(name, arguments) of each syscall strace sees from the launcher's own
    execve up to, not including, the execve that starts its target."""
    _need("strace")
    trace = tmp_path / "trace"
    res = subprocess.run(["strace", "-qq", "-o", str(trace), *map(str, argv)], env=env, cwd=cwd,
                         capture_output=True)
    assert res.returncode == 0, res.stderr.decode()
    calls = []
    for line in trace.read_text().splitlines():
        m = re.match(r"(\w+)\((.*)", line)
        if not m:
            continue
        if m.group(1) == "execve" and calls:
            break
        calls.append((m.group(1), m.group(2)))
    return calls


def names(calls):
    return Counter(name for name, _ in calls)


def min_faults(argv, env, runs=9):
    """Fewest minor page faults of the whole process (launcher and target)
    over a few runs: rusage of the child, which any kernel keeps."""
    best = None
    for _ in range(runs):
        proc = subprocess.Popen([str(a) for a in argv], env=env, cwd="/")
        _, status, usage = os.wait4(proc.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        best = usage.ru_minflt if best is None else min(best, usage.ru_minflt)
    return best


def test_hot_path_makes_only_the_documented_syscalls(hot_venv, minimal, tmp_path, base_env):
    calls = syscalls_before_exec(tmp_path, [hot_venv], base_env)
    assert names(calls) == HOT_PATH_SYSCALLS, calls
    # No heap, no thread set-up: it ran before glibc's start-up, so before
    # any static initialiser (glibc runs those after the calls below).
    minimal_calls = names(syscalls_before_exec(tmp_path, [minimal], base_env))
    assert {"brk", "arch_prctl", "set_tid_address"} <= set(minimal_calls), minimal_calls
    assert not set(names(calls)) & GLIBC_STARTUP, calls
    # Fewer than glibc's static start-up alone.
    assert sum(names(calls).values()) <= sum(minimal_calls.values())
    # And it never read the config: the stamp is the config.
    assert not any(name in ("openat", "open", "read") for name, _ in calls), calls


def test_relative_invocation_and_preloads_add_only_their_lookups(stage, py, exit0, tmp_path,
                                                               base_env, jemalloc):
    root = tmp_path / "venv"
    plain_venv(py, root, base_env)
    res = pyshim_tool(stage, "install", root, "--python", exit0, "--preload", jemalloc,
                      env=base_env)
    assert res.returncode == 0, res.stderr.decode()
    launcher = Path("venv") / "bin" / main_launcher_name(py)
    calls = syscalls_before_exec(tmp_path, [launcher], base_env, cwd=tmp_path)
    assert names(calls) == HOT_PATH_SYSCALLS + Counter({"getcwd": 1, "newfstatat": 1}), calls
    assert any(str(jemalloc) in args for name, args in calls if name == "newfstatat"), calls


def test_hot_path_faults_fewer_pages_than_the_minimal_wrapper(hot_venv, minimal, exit0,
                                                              base_env):
    target = min_faults([exit0], base_env)
    wrapper = min_faults([minimal], base_env) - target
    launcher = min_faults([hot_venv], base_env) - target
    # The bound is 1.25x the wrapper's; the hot path is far below it.
    assert launcher <= wrapper, (launcher, wrapper)


def test_hot_code_calls_nothing_outside_itself(stage):
    """The ELF entry point is in .pyshim_hot, and no instruction there calls
    or jumps out of it (into libc: an unresolved IFUNC, malloc, a static
    initialiser) except the one jump of the entry stub to glibc's _start that
    hands over to the general path; nothing there uses thread-local storage
    (errno, the stack protector's canary), which is not set up yet. Works on
    the stripped launcher: sections and addresses only."""
    _need("objdump")
    data = stage.shim.read_bytes()
    if data[4] != 2 or struct.unpack_from("<H", data, 0x12)[0] != 62:
        pytest.skip("the hot path is x86-64 only")
    hot = elf_section_header(data, ".pyshim_hot", what=stage.shim)
    assert hot is not None, "the launcher has no .pyshim_hot section"
    start, _, size = hot
    entry = struct.unpack_from("<Q", data, 0x18)[0]
    assert start <= entry < start + size, f"entry {entry:#x} is not the hot path's"
    res = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-j", ".pyshim_hot",
                          str(stage.shim)], capture_output=True, text=True, check=True)
    outside, handover, tls, count = [], [], [], 0
    for line in res.stdout.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+(\S+)\s*(.*)", line)
        if not m:
            continue
        count += 1
        at, op, args = int(m.group(1), 16), m.group(2), m.group(3)
        if op in ("notrack", "bnd", "lock", "rep", "repz", "repnz"):
            op, _, args = args.partition(" ")
        if "%fs" in args or "%gs" in args:
            tls.append(line)
        if not op.startswith(("call", "j")):
            continue
        target = re.match(r"(?:0x)?([0-9a-f]+)\b", args)
        if target is None:  # indirect: a jump table stays in its function; a call could go anywhere
            if op.startswith("call"):
                outside.append(line)
            continue
        if start <= int(target.group(1), 16) < start + size:
            continue
        # The entry stub's jump to glibc's _start, a few instructions in.
        if op == "jmp" and entry <= at < entry + 64:
            handover.append(line)
        else:
            outside.append(line)
    assert count > 100, res.stdout[:2000]
    assert not outside, "\n".join(outside)
    assert not tls, "\n".join(tls)
    assert len(handover) == 1, "the hand-over to glibc's _start is missing"


def _dump_env_program(tmp_path) -> Path:
    src = tmp_path / "dump.c"
    src.write_text(
        "#include <fcntl.h>\n#include <string.h>\n#include <unistd.h>\n"
        "extern char **environ;\n"
        "int main(int argc, char **argv) {\n"
        "  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);\n"
        "  for (int i = 0; i < argc; ++i) write(fd, argv[i], strlen(argv[i]) + 1);\n"
        "  write(fd, \"--\", 3);\n"
        "  for (char **e = environ; *e; ++e) write(fd, *e, strlen(*e) + 1);\n"
        "  return 0;\n}\n")
    out = tmp_path / "dump"
    subprocess.run(["gcc", "-O1", "-static", "-o", str(out), str(src)], check=True)
    return out


def test_hot_and_general_path_exec_the_same(stage, py, tmp_path, base_env, jemalloc, testlibs):
    """The same launch through the hot path and, with PYSHIM_LOG=off set
    (which sends it to the general path), through prepare_launch: byte for
    byte the same argv and environment reach the interpreter."""
    _need("gcc")
    dump = _dump_env_program(tmp_path)
    root = tmp_path / "venv"
    plain_venv(py, root, base_env)
    res = pyshim_tool(stage, "install", root, "--python", dump, "--preload", jemalloc,
                      "--library-path", testlibs.libdir, "--env", "A=1", "--env", "HOME=/x",
                      env=base_env)
    assert res.returncode == 0, res.stderr.decode()
    launcher = root / "bin" / "python"
    callers = [
        dict(base_env),
        dict(base_env, LD_PRELOAD=f"{testlibs.caller} {jemalloc}", LD_LIBRARY_PATH="/a::/b"),
        dict(base_env, LD_PRELOAD="", LD_LIBRARY_PATH=""),
        dict(base_env, PYSHIM_ORIG_LD_LIBRARY_PATH="LD_LIBRARY_PATH=/o"),
    ]
    for caller in callers:
        hot_out, general_out = tmp_path / "hot", tmp_path / "general"
        r1 = run([launcher, hot_out, "", "x y"], caller)
        r2 = run([launcher, general_out, "", "x y"], dict(caller, PYSHIM_LOG="off"))
        assert r1.returncode == 0 and r2.returncode == 0, (r1.stderr, r2.stderr)
        # argv[0] is P, the rest untouched; then the environment.
        hot = hot_out.read_bytes().split(b"\0")
        general = [e for e in general_out.read_bytes().split(b"\0") if e != b"PYSHIM_LOG=off"]
        assert hot[:5] == [str(launcher).encode(), bytes(hot_out), b"", b"x y", b"--"]
        assert general[:5] == [str(launcher).encode(), bytes(general_out), b"", b"x y", b"--"]
        assert hot[5:] == general[5:], caller
        assert any(e.startswith(b"PYSHIM_ORIG_LD_PRELOAD=") for e in hot)


def test_what_the_hot_path_does_not_take_runs_the_general_path(hot_venv, tmp_path, base_env):
    """PYSHIM_LOG, an edited config: glibc starts and the general path runs
    (the edited file is read and parsed), with the same result."""
    res = run([hot_venv], dict(base_env, PYSHIM_LOG="debug"))
    assert res.returncode == 0, res.stderr.decode()
    assert b"(stamped in the launcher: not parsed)" in res.stderr
    config = hot_venv.parent.parent / "pyshim.toml"
    config.write_text(config.read_text() + "\n# edited by hand\n")
    calls = syscalls_before_exec(tmp_path, [hot_venv], base_env)
    assert any(name == "openat" and "pyshim.toml" in args for name, args in calls), calls
    assert "brk" in names(calls)
    res = run([hot_venv], dict(base_env, PYSHIM_LOG="debug"))
    assert res.returncode == 0
    assert b"not parsed" not in res.stderr


def test_a_small_stack_limit_and_a_long_caller_preload_never_crash_the_launcher(
        hot_venv, tmp_path, base_env):
    """The hot path's arena is on the stack: with `ulimit -s 1024` and a
    caller LD_PRELOAD of many short entries it is larger than what is left
    under the limit (0.2 died with SIGSEGV and no message). It must check
    the limit and leave the launch to the general path. The target is a
    static program (it ignores LD_PRELOAD), so only the launcher can fail;
    strace shows where the launch went."""
    preload = ":".join(["/x"] * 33000)
    env = {**base_env, "LD_PRELOAD": preload}

    def small_stack():
        resource.setrlimit(resource.RLIMIT_STACK, (1 << 20, 1 << 20))

    res = subprocess.run([hot_venv], env=env, preexec_fn=small_stack, capture_output=True)
    assert res.returncode == 0, (res.returncode, res.stderr[-500:])
    _need("strace")
    trace = tmp_path / "trace"
    res = subprocess.run(["strace", "-qq", "-o", str(trace), hot_venv], env=env,
                         preexec_fn=small_stack, capture_output=True)
    assert res.returncode == 0, (res.returncode, res.stderr[-500:])
    text = trace.read_text()
    # It asked for the limit, then went the general path (glibc's start-up,
    # whose first call is brk), and exec'd the target.
    before = text.split("execve(", 2)
    assert len(before) == 3, text[:3000]
    assert re.search(r"prlimit64\(0, RLIMIT_STACK, NULL, \{rlim_cur=1024\*1024", before[1]), \
        before[1][:3000]
    assert "brk(" in before[1], before[1][:3000]
    assert "SIGSEGV" not in text
    # With the usual limit the same launch is the hot path, limit asked or not.
    def usual_stack():
        resource.setrlimit(resource.RLIMIT_STACK, (8 << 20, 8 << 20))
    res = subprocess.run([hot_venv], env=env, preexec_fn=usual_stack, capture_output=True)
    assert res.returncode == 0, (res.returncode, res.stderr[-500:])
