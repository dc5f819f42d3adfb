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
# 4. The tool makes no system call of its own: no object of the tool library
#    references a C library wrapper that enters the kernel for files, folders,
#    descriptors, processes or ids (they are the OS layer's: src/os); printing
#    and getenv stay allowed. Proved able to fail: a probe calling geteuid()
#    compiled with the tool's own command must be caught; one calling the OS
#    layer's effective_uid() must not.
# 5. Nor through std::filesystem (libstdc++ making the system calls): no
#    object of the tool library references a std::filesystem function that
#    touches the disk (nm -u -C; the pure fs::path members and
#    filesystem_error stay allowed). The one exception is CLI11's header-only
#    code (its path validators and config-file reader, compiled into every
#    file that includes CLI/CLI.hpp, which the tool does not use): a
#    reference is excused only when every relocation to it lies in a CLI11
#    function's own section (objdump -r). Proved able to fail: a probe
#    including CLI/CLI.hpp and calling std::filesystem::exists() compiled
#    with a tool object's command must be caught; one joining fs::paths and
#    asking the OS layer's stat_path() must not.
#
# Usage: tests/layers/check.sh BUILD_DIR   (a few seconds; exits 1 on failure)
set -euo pipefail

BUILD="${1:?usage: $0 BUILD_DIR (a configured build tree)}"
DB="$BUILD/compile_commands.json"
[[ -f $DB ]] || { echo "$0: $DB is missing: configure $BUILD first (cmake -S . -B $BUILD)" >&2; exit 2; }

exec python3 - "$DB" "$BUILD" <<'EOF'
import json, os, re, shlex, subprocess, sys, tempfile

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

def probe(args, source_file, header, workdir, cwd, body="int pyshim_layers_probe;\n", obj=None):
    """Compile a source including `header` (then `body`) with `args` (one
    real compile command) in place of `source_file`: syntax only, or into
    `obj`; returns (ok, stderr)."""
    probe_path = os.path.join(workdir, "probe.cpp")
    with open(probe_path, "w") as f:
        f.write(f'#include "{header}"\n{body}')
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
    cmd += ["-c", "-o", obj] if obj else ["-fsyntax-only"]
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

def fs_disk_name(name):
    """Whether a demangled symbol is a std::filesystem function that touches
    the disk: anything of std::filesystem but fs::path's members (lexical)
    and filesystem_error (an exception type)."""
    for prefix in ("typeinfo for ", "typeinfo name for ", "vtable for "):
        if name.startswith(prefix):
            name = name[len(prefix):]
    name = name.replace("__cxx11::", "")
    return (name.startswith("std::filesystem::")
            and not name.startswith(("std::filesystem::path::", "std::filesystem::filesystem_error")))

def cli11_section(demangled):
    """A function of CLI11's own (header-only, compiled into each file that
    includes CLI/CLI.hpp): CLI::..., or the std::function body of one of its
    validators' lambdas. Never one that names the tool's own code (a CLI11
    template instantiated with a tool lambda may hold its body)."""
    if "pyshim" in demangled:
        return False
    return demangled.startswith("CLI::") or re.search(
        r"^std::_Function_handler<.*, CLI::detail::\w+Validator::\w+Validator\(\)::\{lambda", demangled)

def fs_disk_calls(path):
    """{member: {std::filesystem function: [the functions referencing it]}}
    for an object or archive, CLI11's own references left out."""
    members = {}
    names = subprocess.run(["nm", "-u", "-A", "-C", path], capture_output=True, text=True,
                           check=True).stdout
    for line in names.splitlines():
        where, _, symbol = line.partition(": ")
        symbol = symbol.strip()
        if symbol.startswith("U "):
            symbol = symbol[2:]
        member = where.rsplit(":", 1)[-1] if where.count(":") else os.path.basename(where)
        if fs_disk_name(symbol):
            members.setdefault(member, {})[symbol] = []
    if not members:
        return {}
    # Who references each: the section holding the relocation (each inline or
    # template function has its own; the tool's own code is in .text).
    relocs = subprocess.run(["objdump", "-r", "-C", path], capture_output=True, text=True,
                            check=True).stdout
    member, section, sites = os.path.basename(path), "", []
    for line in relocs.splitlines():
        if "file format" in line:
            member = os.path.basename(line.split(":", 1)[0])
        elif line.startswith("RELOCATION RECORDS FOR ["):
            section = line[len("RELOCATION RECORDS FOR ["):].rstrip("]:")
        else:
            fields = line.split(None, 2)
            if len(fields) == 3 and member in members:
                target = re.sub(r"[-+]0x[0-9a-f]+$", "", fields[2])
                if target in members[member]:
                    sites.append((member, target, section))
    functions = {}
    for _, _, section in sites:
        # -ffunction-sections: .text.NAME (.text.unlikely.NAME for cold
        # parts); plain .text is code of no function of its own: never excused.
        mangled = re.sub(r"^\.text\.((unlikely|hot|startup|exit)\.)?", "", section)
        mangled = mangled if mangled != section else ""
        functions[section] = mangled
    demangled = dict(zip(functions, subprocess.run(
        ["c++filt"], input="\n".join(functions.values()) + "\n", capture_output=True, text=True,
        check=True).stdout.splitlines()))
    for member_name, target, section in sites:
        function = demangled.get(section) or section
        if not (demangled.get(section) and cli11_section(function)):
            members[member_name][target].append(function)
    return {m: {t: f for t, f in calls.items() if f} for m, calls in members.items()
            if any(calls.values())}

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

# The tool's objects: the system call wrappers that are the OS layer's job.
# Not listed, because the tool may use them: stdio to print, getenv; and
# what spdlog's header-only code calls for its log lines (getpid,
# syscall(SYS_gettid), localtime_r, pthread mutexes).
TOOL_KERNEL = set("""open open64 openat openat64 creat read pread pread64 readv write pwrite pwrite64
writev close close_range stat stat64 fstat fstat64 lstat lstat64 fstatat fstatat64 statx access
faccessat euidaccess readlink readlinkat realpath getcwd chdir fchdir opendir fdopendir readdir
readdir64 rewinddir closedir scandir mmap mmap64 munmap mprotect fork vfork clone execve execv execvp
execvpe fexecve posix_spawn posix_spawnp waitpid wait4 kill killpg pipe pipe2 dup dup2 dup3 fcntl
ioctl isatty flock lockf rename renameat renameat2 unlink unlinkat rmdir mkdir mkdirat chmod fchmod
fchmodat chown fchown fchownat lchown symlink symlinkat link linkat truncate ftruncate fsync
fdatasync sync syncfs utimensat futimens utime utimes getuid geteuid getgid getegid setuid setgid
setresuid setresgid setgroups setsid poll select sendfile copy_file_range getauxval fopen fopen64
fdopen freopen fclose fread system popen mkstemp mkdtemp""".split())
# System calls still made by tool sources that another change is rewriting
# (install and dynlib as gather -> plan -> apply): each must move into the
# OS layer there. An entry that is no longer needed fails the check, so the
# list only shrinks.
TOOL_PENDING = {}

def kernel_calls(path, deny):
    """{member: [wrappers referenced]} for an object or archive."""
    out = subprocess.run(["nm", "-u", "-A", "--format=posix", path], capture_output=True,
                         text=True, check=True).stdout
    calls = {}
    for line in out.splitlines():
        where, _, rest = line.rpartition(": ")
        symbol = rest.split()[0].split("@")[0] if rest.split() else ""
        member = where.rsplit("[", 1)[-1].rstrip("]") if where.endswith("]") else os.path.basename(where)
        if symbol in deny:
            calls.setdefault(member, set()).add(symbol)
    return calls

tool_archive = os.path.join(build, "libpyshim_tool.a")
if not os.path.exists(tool_archive):
    failures.append(f"{tool_archive} is missing: build {build} first")
else:
    members = subprocess.run(["ar", "t", tool_archive], capture_output=True, text=True,
                             check=True).stdout.split()
    calls = kernel_calls(tool_archive, TOOL_KERNEL)
    for member, pending in TOOL_PENDING.items():
        if member in members and not pending <= calls.get(member, set()):
            failures.append(f"{member} no longer calls {' '.join(sorted(pending - calls.get(member, set())))}: "
                            "remove it from TOOL_PENDING in tests/layers/check.sh")
    bad = {m: sorted(c - TOOL_PENDING.get(m, set())) for m, c in calls.items()}
    bad = {m: c for m, c in bad.items() if c}
    for member, names in sorted(bad.items()):
        failures.append(f"libpyshim_tool.a({member}) makes system calls of its own: {' '.join(names)} "
                        "(call the OS layer, src/os/include/pyshim, instead)")
    if not bad:
        pending = sum(len(v) for v in TOOL_PENDING.values())
        print(f"ok  libpyshim_tool.a: {len(members)} objects, none of {len(TOOL_KERNEL)} system call "
              "wrappers referenced" +
              (f" ({pending} pending in {', '.join(sorted(TOOL_PENDING))})" if pending else ""))
    # The check can fail: a tool source calling geteuid() itself is caught,
    # the same source asking the OS layer is not (compiled with a tool
    # object's own command).
    tool_entry = next((e for e in db if "pyshim_tool.dir" in e["command"]
                       and "/src/tool/" in e["file"]), None)
    if tool_entry is None:
        failures.append("no compile command for a pyshim_tool source")
    else:
        args = shlex.split(tool_entry["command"])
        source_file = next(a for a in args if os.path.basename(a) == os.path.basename(tool_entry["file"])
                           and a.endswith(".cpp"))
        with tempfile.TemporaryDirectory() as workdir:
            for header, body, caught in (
                    ("unistd.h", "unsigned pyshim_layers_probe() { return ::geteuid(); }\n", True),
                    ("pyshim/os.hpp", "unsigned pyshim_layers_probe() { return pyshim::effective_uid(); }\n",
                     False)):
                obj = os.path.join(workdir, "probe.o")
                ok, err = probe(args, source_file, header, workdir, tool_entry["directory"], body, obj)
                if not ok:
                    failures.append(f"the tool probe ({header}) does not compile:\n{err}")
                    continue
                found = kernel_calls(obj, TOOL_KERNEL)
                if bool(found) != caught:
                    failures.append(f"a tool object calling {'geteuid()' if caught else 'effective_uid()'} "
                                    f"is {'not ' if caught else ''}caught: {found}")
                else:
                    print(f"ok  a tool object calling {'geteuid() itself is' if caught else 'the OS layer is not'} caught")
            # The same for std::filesystem, in a file that includes CLI11 (whose
            # own references are excused): exists() is caught, fs::path
            # joins and the OS layer's stat_path() are not.
            for body, caught in (
                    ("#include <filesystem>\n"
                     "bool pyshim_layers_probe(const std::filesystem::path& p) {\n"
                     "  std::error_code ec;\n  return std::filesystem::exists(p / \"pyvenv.cfg\", ec);\n}\n",
                     True),
                    ("#include <filesystem>\n#include \"pyshim/os.hpp\"\n"
                     "bool pyshim_layers_probe(const std::filesystem::path& p) {\n"
                     "  return pyshim::stat_path((p / \"pyvenv.cfg\").lexically_normal().string()).has_value();\n}\n",
                     False)):
                obj = os.path.join(workdir, "probe.o")
                ok, err = probe(args, source_file, "CLI/CLI.hpp", workdir, tool_entry["directory"], body, obj)
                if not ok:
                    failures.append(f"the tool's std::filesystem probe does not compile:\n{err}")
                    continue
                found = fs_disk_calls(obj)
                what = "std::filesystem::exists()" if caught else "fs::path and stat_path()"
                if bool(found) != caught:
                    failures.append(f"a tool object calling {what} is {'not ' if caught else ''}caught: {found}")
                else:
                    print(f"ok  a tool object calling {what} {'is' if caught else 'is not'} caught")

# The tool through std::filesystem: libstdc++ making the system calls.
if os.path.exists(tool_archive):
    disk = fs_disk_calls(tool_archive)
    for member, calls in sorted(disk.items()):
        for target, functions in sorted(calls.items()):
            failures.append(f"libpyshim_tool.a({member}) touches the disk through {target} "
                            f"(in {'; '.join(sorted(set(functions)))}): call the OS layer, "
                            "src/os/include/pyshim, instead")
    if not disk:
        print("ok  libpyshim_tool.a: no std::filesystem function that touches the disk referenced "
              "(fs::path members only; CLI11's own header code excused)")

if len(seen) < 4:
    failures.append(f"only {len(seen)} (target, layer) pairs found: expected core, os, their launcher copies and the launcher")
if failures:
    print("\nFAILED:\n" + "\n".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"== layers: {len(seen)} targets x layers probed: every wrong-way include fails to compile, "
      f"every right-way one compiles; {hot_flag} on the launcher's hot objects only ({checked} objects); "
      "core and the tool make no system call of their own, the tool none through std::filesystem either")
EOF
