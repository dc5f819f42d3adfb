#!/usr/bin/env bash
# The layers the build enforces (ARCHITECTURE.md, "Layers"), proved on a
# configured build tree's compile commands (CMAKE_EXPORT_COMPILE_COMMANDS):
#
# 1. A wrong-way include fails to compile: for every target that compiles
#    core, os or launcher sources (the CLI's libraries and the launcher's own
#    copies), a probe source including a header of a layer above it
#    (core -> os, core -> tool, os -> tool, launcher -> tool; the hot path's
#    objects -> os) is compiled with
#    that target's exact command line and must fail with "No such file"; the
#    same probe including a header of its own or a lower layer must compile
#    (so the failure is the include path, not a broken command).
# 2. The hot path's flags stay on the launcher's objects: the launcher's
#    plan.cpp/stamp.cpp/entry.cpp are built with -fno-stack-protector, the
#    CLI's plan.cpp and stamp.cpp are not.
# 3. Core makes no system call: the built core libraries (the CLI's and the
#    launcher's copy) reference none of the C library's system call wrappers,
#    stdio or file streams, nor getenv (nm over the archives).
#
# Usage: tests/layers/check.sh BUILD_DIR   (a few seconds; exits 1 on failure)
set -euo pipefail

BUILD="${1:?usage: $0 BUILD_DIR (a configured build tree)}"
DB="$BUILD/compile_commands.json"
[[ -f $DB ]] || { echo "$0: $DB is missing: configure $BUILD first (cmake -S . -B $BUILD)" >&2; exit 2; }

exec python3 - "$DB" "$BUILD" <<'EOF'
import json, os, shlex, subprocess, sys, tempfile

db = json.load(open(sys.argv[1]))
failures = []

# The layer of a source file, from its folder; which headers it may and may
# not reach (one header each layer owns).
HEADERS = {"core": "pyshim/config.hpp", "os": "pyshim/os.hpp", "tool": "pyshim/cli.hpp"}
ALLOWED = {"core": ["core"], "os": ["core", "os"], "launcher": ["core", "os"]}
FORBIDDEN = {"core": ["os", "tool"], "os": ["tool"], "launcher": ["tool"]}

def layer_of(path):
    for layer in ALLOWED:
        if f"/src/{layer}/" in path:
            return layer
    return None

def probe(args, source_file, header, workdir, cwd):
    """Compile a one-line source including `header` with `args` (one real
    compile command) in place of `source_file`; returns (ok, stderr)."""
    probe_path = os.path.join(workdir, "probe.cpp")
    with open(probe_path, "w") as f:
        f.write(f'#include "{header}"\nint pyshim_layers_probe;\n')
    cmd, skip = [], False
    for i, a in enumerate(args):
        if skip:
            skip = False
            continue
        if a in ("-o", "-MF", "-MT"):
            skip = True
            continue
        if a in ("-MD", "-MMD", "-c"):
            continue
        cmd.append(probe_path if a == source_file else a)
    cmd += ["-fsyntax-only"]
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    return r.returncode == 0, r.stderr

# One representative source per (target, layer): every target is probed.
seen = {}
for entry in db:
    args = shlex.split(entry["command"])
    if "-o" not in args:
        continue
    out = args[args.index("-o") + 1]
    if "CMakeFiles/" not in out or ".dir/" not in out:
        continue
    target = out.split("CMakeFiles/", 1)[-1].split(".dir/", 1)[0]
    layer = layer_of(entry["file"])
    if layer and (target, layer) not in seen:
        seen[(target, layer)] = (entry, args)

with tempfile.TemporaryDirectory() as workdir:
    for (target, layer), (entry, args) in sorted(seen.items()):
        source_file = next(a for a in args if os.path.basename(a) == os.path.basename(entry["file"])
                           and a.endswith((".cpp", ".c")))
        # The hot path's objects (before libc is up) see the pure layer only.
        allowed = ["core"] if target.endswith("_hot") else ALLOWED[layer]
        forbidden = ["os", "tool"] if target.endswith("_hot") else FORBIDDEN[layer]
        for up in forbidden:
            ok, err = probe(args, source_file, HEADERS[up], workdir, entry["directory"])
            if ok:
                failures.append(f"{target}: a {layer} source including {HEADERS[up]} ({up}) compiles")
            elif "No such file" not in err:
                failures.append(f"{target}: the {layer} -> {up} probe failed for another reason:\n{err}")
            else:
                print(f"ok  {target:34} {layer} -> {up:4} ({HEADERS[up]}) fails to compile")
        for down in allowed:
            ok, err = probe(args, source_file, HEADERS[down], workdir, entry["directory"])
            if not ok:
                failures.append(f"{target}: a {layer} source including {HEADERS[down]} does not compile:\n{err}")
            else:
                print(f"ok  {target:34} {layer} -> {down:4} ({HEADERS[down]}) compiles")

# Which objects the hot path's flags reach.
hot_flag = "-fno-stack-protector"
checked = 0
for entry in db:
    args = shlex.split(entry["command"])
    if "-o" not in args:
        continue
    out = args[args.index("-o") + 1]
    name = os.path.basename(entry["file"])
    if name not in ("plan.cpp", "stamp.cpp", "entry.cpp"):
        continue
    launcher = "/pyshim-launcher_" in "/" + out
    if launcher and hot_flag not in args:
        failures.append(f"{out}: the launcher's hot object lacks {hot_flag}")
    elif not launcher and hot_flag in args:
        failures.append(f"{out}: {hot_flag} leaks onto an object outside the launcher")
    else:
        checked += 1
        print(f"ok  {out}: {'with' if launcher else 'without'} {hot_flag}")
if not any("pyshim_core.dir" in e["command"] and e["file"].endswith("/plan.cpp") for e in db):
    failures.append("no compile command for pyshim_core's plan.cpp")
if not any("pyshim-launcher_hot.dir" in e["command"] and e["file"].endswith("/plan.cpp") for e in db):
    failures.append("no compile command for the launcher's hot plan.cpp")

# Core's archives: no libc function that enters the kernel (or reads the
# environment) may be referenced. A deny list, so a pure helper from libc
# (memcpy, snprintf, strtoll) stays allowed.
KERNEL = set("""open open64 openat openat64 creat read pread pread64 readv write pwrite writev close
stat stat64 fstat fstat64 lstat lstat64 fstatat fstatat64 statx access faccessat readlink readlinkat
realpath getcwd chdir fchdir opendir fdopendir readdir readdir64 closedir scandir mmap mmap64 munmap
mprotect fork vfork clone execve execv execvp execvpe fexecve posix_spawn posix_spawnp waitpid wait4
kill pipe pipe2 dup dup2 dup3 fcntl ioctl flock lockf rename renameat renameat2 unlink unlinkat rmdir
mkdir mkdirat chmod fchmod fchmodat chown fchown fchownat lchown symlink symlinkat link linkat
truncate ftruncate fsync fdatasync sync utimensat futimens syscall getuid geteuid getgid getegid
getpid getppid setuid setgid setresuid setresgid setgroups clock_gettime gettimeofday time
nanosleep sleep usleep poll select getrandom prctl sendfile copy_file_range getauxval getenv
secure_getenv fopen fopen64 fdopen freopen fclose fread fwrite fgets fputs fprintf printf puts
vfprintf perror system popen""".split())
build = sys.argv[2]
for archive in ("libpyshim_core.a", "libpyshim-launcher_pyshim_core.a"):
    path = os.path.join(build, archive)
    if not os.path.exists(path):
        failures.append(f"{path} is missing: build {build} first")
        continue
    names = subprocess.run(["nm", "-u", "-C", "--format=just-symbols", path], capture_output=True,
                           text=True, check=True).stdout.split()
    bad = sorted({n for n in names if n.split("@")[0] in KERNEL or "fstream" in n
                  or ("std::filesystem::" in n and "::path::" not in n)})  # paths are lexical
    if bad:
        failures.append(f"{archive} calls into the kernel: {' '.join(bad)}")
    else:
        print(f"ok  {archive}: none of {len(KERNEL)} system call wrappers, stdio or getenv referenced")

if len(seen) < 4:
    failures.append(f"only {len(seen)} (target, layer) pairs found: expected core, os, their launcher copies and the launcher")
if failures:
    print("\nFAILED:\n" + "\n".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"== layers: {len(seen)} targets x layers probed: every wrong-way include fails to compile, "
      f"every right-way one compiles; {hot_flag} on the launcher's hot objects only ({checked} objects)")
EOF
