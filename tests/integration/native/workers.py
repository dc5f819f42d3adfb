"""The program the native-runtime tests run (test_native_runtimes.py).

    PYTHON workers.py PLAN.json

PLAN (JSON object; every key optional):
    out            where to write the result JSON (default: stdout)
    workdir        folder for the workers' stderr files and loader logs
    modules        extension modules to import (and call ok()) in the parent
                   and in every worker
    kinds          worker kinds to start, any of WORKER_KINDS
    overflow       an extension module whose overflow() a spawn worker calls
    children       names from CHILDREN run with subprocess.run from the parent
                   and from a spawn worker
    child_env      variables added to the children's environment (the
                   "libasan left in LD_PRELOAD" contrast)
    child_timeout  seconds a child may take (default 20)
    drop_preload   remove LD_PRELOAD from os.environ before starting any
                   worker, as a dev-mode entrypoint's prologue does
    executable     passed to multiprocessing.set_executable()

The result: {"parent": REPORT, "workers": {KIND: RUN}, "overflow": RUN}.
REPORT (one Python process):
    pid, executable, imports {module: ok() or "error: ..."},
    exec_ld_preload   LD_PRELOAD in /proc/self/environ, i.e. the environment
                      the interpreter was exec'd with (os.environ is the
                      restored one), None when unset
    os_ld_preload     LD_PRELOAD in os.environ, None when unset
    asan_options      ASAN_OPTIONS in os.environ
    maps              files mapped in /proc/self/maps, real paths
    link_map          object names in dl_iterate_phdr order (load order:
                      the main program, preloads in LD_PRELOAD order, ...)
    children          {name: CHILD} when asked
RUN (one worker): exitcode (Process kinds), report (None if the worker died
    before writing it), stderr (everything the worker wrote to fd 2), error.
CHILD: argv, returncode (None on timeout), timed_out, seconds, stdout,
    stderr, loaded (every object the dynamic loader mapped in the child and
    its own children, from LD_DEBUG=files).

Nothing imports an extension at module level: spawn workers re-import this
file as __mp_main__, and a worker must reach probe() (which points fd 2 at
its own file) before the import that may kill it.
"""

import ctypes
import json
import multiprocessing
import os
import subprocess
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor

WORKER_KINDS = ("spawn", "forkserver", "pool-spawn", "ppe-spawn")

# Non-Python children. The shell prints its own memory map: $$ is the shell
# itself (grep or cat would show their own maps, which only repeat the
# environment the shell passed on).
CHILDREN = {
    "sh": ["/bin/sh", "-c", 'cat /proc/$$/maps; printf "LD_PRELOAD=%s\\n" "${LD_PRELOAD-<unset>}"'],
    "curl": ["curl", "--version"],
    "perl": ["perl", "-e", "1"],
    "sort": ["sort"],  # stdin is /dev/null
}

JOIN_TIMEOUT = 60


def _exec_environ():
    with open("/proc/self/environ", "rb") as f:
        entries = f.read().split(b"\0")
    env = {}
    for entry in entries:
        if b"=" in entry:
            key, _, value = entry.partition(b"=")
            env.setdefault(key.decode(), value.decode(errors="replace"))
    return env


def _maps():
    seen = []
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(None, 5)
            if len(fields) == 6 and fields[5].startswith("/"):
                path = fields[5].strip()
                if path not in seen:
                    seen.append(path)
    return seen


class _PhdrInfo(ctypes.Structure):
    _fields_ = [
        ("dlpi_addr", ctypes.c_void_p),
        ("dlpi_name", ctypes.c_char_p),
        ("dlpi_phdr", ctypes.c_void_p),
        ("dlpi_phnum", ctypes.c_uint16),
    ]


_PHDR_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_PhdrInfo), ctypes.c_size_t, ctypes.c_void_p)


def _link_map():
    names = []

    def visit(info, size, data):
        names.append((info.contents.dlpi_name or b"").decode(errors="replace"))
        return 0

    ctypes.CDLL(None).dl_iterate_phdr(_PHDR_CALLBACK(visit), None)
    return names


def _loader_log(prefix_dir):
    """Every object the loader mapped, from LD_DEBUG=files logs (one file per
    process: the child and anything it started)."""
    loaded = []
    for name in sorted(os.listdir(prefix_dir)):
        with open(os.path.join(prefix_dir, name), errors="replace") as f:
            for line in f:
                text = line.split(":", 1)[-1].strip()
                if text.startswith("file=") and text.endswith("generating link map"):
                    loaded.append(text[len("file=") :].split(" [", 1)[0])
    return loaded


def run_children(names, workdir, tag, extra_env, timeout):
    results = {}
    for name in names:
        logdir = os.path.join(workdir, "ld-debug", f"{tag}-{name}")
        os.makedirs(logdir, exist_ok=True)
        # LD_DEBUG only adds a log: which objects the loader mapped is decided
        # by LD_PRELOAD (from this process's os.environ, the environment under
        # test), the binary's DT_NEEDED and dlopen; all of them are logged.
        env = dict(os.environ, **(extra_env or {}))
        env["LD_DEBUG"] = "files"
        env["LD_DEBUG_OUTPUT"] = os.path.join(logdir, "ld")
        start = time.monotonic()
        try:
            proc = subprocess.run(
                CHILDREN[name], env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout
            )
            rc, out, err, timed_out = proc.returncode, proc.stdout, proc.stderr, False
        except subprocess.TimeoutExpired as e:
            rc, out, err, timed_out = None, e.stdout or b"", e.stderr or b"", True
        results[name] = {
            "argv": CHILDREN[name],
            "returncode": rc,
            "timed_out": timed_out,
            "seconds": round(time.monotonic() - start, 3),
            "stdout": out.decode(errors="replace"),
            "stderr": err.decode(errors="replace")[-2000:],
            "loaded": _loader_log(logdir),
        }
    return results


def report(plan, tag, children=False):
    imports = {}
    for module in plan.get("modules", []):
        try:
            imports[module] = __import__(module).ok()
        except Exception as e:  # an ImportError is a result, not a crash
            imports[module] = f"error: {type(e).__name__}: {e}"
    exec_env = _exec_environ()
    result = {
        "tag": tag,
        "pid": os.getpid(),
        "executable": sys.executable,
        "imports": imports,
        "exec_ld_preload": exec_env.get("LD_PRELOAD"),
        "os_ld_preload": os.environ.get("LD_PRELOAD"),
        "asan_options": os.environ.get("ASAN_OPTIONS"),
        "maps": _maps(),
        "link_map": _link_map(),
    }
    if children and plan.get("children"):
        result["children"] = run_children(
            plan["children"], plan["workdir"], tag, plan.get("child_env"), plan.get("child_timeout", 20)
        )
    return result


def _redirect_stderr(plan, tag):
    # ASan writes its reports straight to fd 2: give each worker its own file.
    fd = os.open(os.path.join(plan["workdir"], f"{tag}.err"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)
    os.close(fd)


def probe(plan, tag, children=False):
    """A worker's body: returns its REPORT and also writes it to a file, so
    that a Process worker's report is there even without a result queue."""
    _redirect_stderr(plan, tag)
    result = report(plan, tag, children)
    with open(os.path.join(plan["workdir"], f"{tag}.json"), "w") as f:
        json.dump(result, f)
    return result


def overflow(plan, tag, module):
    _redirect_stderr(plan, tag)
    __import__(module).overflow()


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _process_run(ctx, plan, tag, target, args):
    p = ctx.Process(target=target, args=args)
    p.start()
    p.join(JOIN_TIMEOUT)
    if p.is_alive():
        p.kill()
        p.join()
        error = f"worker still running after {JOIN_TIMEOUT} s: killed"
    else:
        error = None
    report_text = _read(os.path.join(plan["workdir"], f"{tag}.json"))
    return {
        "exitcode": p.exitcode,
        "report": json.loads(report_text) if report_text else None,
        "stderr": _read(os.path.join(plan["workdir"], f"{tag}.err")) or "",
        "error": error,
    }


def run_worker(plan, kind):
    tag = f"worker-{kind}"
    children = kind == "spawn"  # non-Python children from one worker
    if kind in ("spawn", "forkserver"):
        return _process_run(multiprocessing.get_context(kind), plan, tag, probe, (plan, tag, children))
    result = {"exitcode": None, "report": None, "error": None}
    try:
        if kind == "pool-spawn":
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                result["report"] = pool.apply_async(probe, (plan, tag, children)).get(JOIN_TIMEOUT)
        elif kind == "ppe-spawn":
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
                result["report"] = pool.submit(probe, plan, tag, children).result(JOIN_TIMEOUT)
        else:
            raise ValueError(f"unknown worker kind {kind!r}")
    except Exception:
        result["error"] = traceback.format_exc()
    result["stderr"] = _read(os.path.join(plan["workdir"], f"{tag}.err")) or ""
    return result


def main():
    with open(sys.argv[1]) as f:
        plan = json.load(f)
    os.makedirs(plan["workdir"], exist_ok=True)
    if plan.get("executable"):
        multiprocessing.set_executable(plan["executable"])
    result = {"parent": report(plan, "parent", children=False)}
    if plan.get("drop_preload"):
        # A dev-mode entrypoint's prologue: the parent keeps what the loader
        # already mapped, children (workers included) start without it.
        os.environ.pop("LD_PRELOAD", None)
    if plan.get("children"):
        result["parent"]["children"] = run_children(
            plan["children"], plan["workdir"], "parent", plan.get("child_env"), plan.get("child_timeout", 20)
        )
    result["workers"] = {kind: run_worker(plan, kind) for kind in plan.get("kinds", [])}
    if plan.get("overflow"):
        ctx = multiprocessing.get_context("spawn")
        args = (plan, "overflow", plan["overflow"])
        result["overflow"] = _process_run(ctx, plan, "overflow", overflow, args)
    text = json.dumps(result, indent=1)
    if plan.get("out"):
        with open(plan["out"], "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
