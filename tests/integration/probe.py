"""Reports what an interpreter started through pyshim, and its children, see.
It is also where the probes' one reader of maps and of a /bin/sh child's
view is: derived/probe.py loads watched_mapped and sh_child from this file.
(It runs inside the interpreter under test, under -I too, so it carries its
own maps reader rather than importing elf_and_maps.py.)

Run as `python probe.py [PART ...]` (any interpreter 3.8+, PyPy included, under
any flags such as -I -E -S). Prints one JSON object on stdout:

    {"parent": REPORT, "spawn": REPORT, "forkserver": REPORT, "pool": REPORT,
     "sh": SH_REPORT, "spawn_sh": SH_REPORT}

PARTs choose what runs besides "parent" (default: all of them).

REPORT (a Python process):
    executable, prefix, base_prefix, path, pid, ppid, flags, environ (all of
    os.environ), ld_preload / ld_library_path (None when unset, "" when set
    to empty), pyshim_vars (every PYSHIM_* variable), maps (the mapped files of
    interest found in /proc/self/maps), cdll (what pyshimtest_answer() in
    ctypes.CDLL("libpyshimtest.so") returned, or the error).
SH_REPORT (a /bin/sh child started with subprocess.run, default env):
    environ, ld_preload, ld_library_path, pyshim_vars from /proc/$$/environ
    (the exact environment the shell was given), maps from grep over the
    shell's own /proc/$$/maps, grep_maps from grep over grep's own
    /proc/self/maps.
"""

import json
import os
import sys

# Mapped files that matter: the configured preload, the restore library, the
# test library (by bare name through library_path), and the caller's own
# preload used by the tests.
WATCHED = ("libjemalloc", "libpyshim-restore", "libpyshimtest", "libpyshimcaller")
ALL_PARTS = ("spawn", "forkserver", "pool", "sh", "spawn_sh")


def watched_mapped(lines, watched=WATCHED):
    """The watched files among the mappings (lines of a maps file), sorted."""
    found = set()
    for line in lines:
        fields = line.split()
        if len(fields) >= 6 and any(w in fields[-1] for w in watched):
            found.add(fields[-1])
    return sorted(found)


def _env_summary(env):
    return {
        "environ": env,
        "ld_preload": env.get("LD_PRELOAD"),
        "ld_library_path": env.get("LD_LIBRARY_PATH"),
        "pyshim_vars": {k: v for k, v in env.items() if k.startswith("PYSHIM_")},
    }


def report():
    import ctypes

    with open("/proc/self/maps") as f:
        maps = watched_mapped(f.read().splitlines())
    try:
        cdll = ctypes.CDLL("libpyshimtest.so").pyshimtest_answer()
    except OSError as e:
        cdll = "OSError: %s" % e
    out = {
        "executable": sys.executable,
        "prefix": sys.prefix,
        "base_prefix": sys.base_prefix,
        "path": sys.path,
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "flags": {
            "isolated": sys.flags.isolated,
            "ignore_environment": sys.flags.ignore_environment,
            "no_site": sys.flags.no_site,
            "no_user_site": sys.flags.no_user_site,
        },
        "maps": maps,
        "cdll": cdll,
    }
    out.update(_env_summary(dict(os.environ)))
    return out


# The shell greps its own maps, then grep its own (a child of the shell),
# then prints the exact environment the shell was given.
SH_SCRIPT = r"""
grep -F %(patterns)s /proc/$$/maps
printf '%%s\n' '--grep-self--'
grep -F %(patterns)s /proc/self/maps
printf '%%s\n' '--environ--'
cat /proc/$$/environ
"""


def sh_child(watched=WATCHED):
    """A /bin/sh child (default environment): (the watched files mapped in
    the shell, those mapped in grep started by it, the shell's environment
    as it was given)."""
    import subprocess

    script = SH_SCRIPT % {"patterns": " ".join("-e " + w for w in watched)}
    res = subprocess.run(["/bin/sh", "-c", script], stdout=subprocess.PIPE, check=True)
    maps, rest = res.stdout.split(b"--grep-self--\n", 1)
    grep_maps, environ = rest.split(b"--environ--\n", 1)
    env = {}
    for entry in environ.split(b"\0"):
        if entry:
            name, _, value = entry.partition(b"=")
            env[os.fsdecode(name)] = os.fsdecode(value)
    return (watched_mapped(os.fsdecode(maps).splitlines(), watched),
            watched_mapped(os.fsdecode(grep_maps).splitlines(), watched), env)


def sh_report():
    maps, grep_maps, env = sh_child()
    out = {"maps": maps, "grep_maps": grep_maps}
    out.update(_env_summary(env))
    return out


def _in_pool(method, functions):
    import multiprocessing

    ctx = multiprocessing.get_context(method)
    with ctx.Pool(1) as pool:
        return [pool.apply(fn) for fn in functions]


def main(parts):
    result = {"parent": report()}
    if "spawn" in parts or "spawn_sh" in parts:
        fns = []
        if "spawn" in parts:
            fns.append(report)
        if "spawn_sh" in parts:
            fns.append(sh_report)
        got = _in_pool("spawn", fns)
        if "spawn" in parts:
            result["spawn"] = got.pop(0)
        if "spawn_sh" in parts:
            result["spawn_sh"] = got.pop(0)
    if "forkserver" in parts:
        result["forkserver"] = _in_pool("forkserver", [report])[0]
    if "pool" in parts:
        import concurrent.futures
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as ex:
            result["pool"] = ex.submit(report).result()
    if "sh" in parts:
        result["sh"] = sh_report()
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:] or ALL_PARTS)
