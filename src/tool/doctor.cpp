// pyshim doctor [LAUNCHER]: static checks of a launcher's setup, then a live
// round trip through it; one line per check, exit 1 if any fails.
//
// The static checks are the launcher's own, one item at a time (find_config,
// load_config, check_interpreter, check_preload, check_library_folder,
// find_restore_library, loader_refusal: launch.hpp, over the launch rules of
// launch_rules.hpp), so doctor and the launcher cannot disagree; doctor
// branches on each verdict's ErrorKind, never on its text or exit code, and
// reports every verdict where the launcher
// stops at the first. It adds only what a launch does not look at: ELF class
// and machine of the interpreter, preloads and restore library; library
// folders that exist; the launcher image, its stamp and base launcher; and
// the live round trip, whose verdicts are pure (explain.cpp). This file
// gathers the facts.
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "dynlib_sync.hpp"
#include "entrypoint.hpp"
#include "extensions.hpp"
#include "files.hpp"
#include "hooks.hpp"
#include "install.hpp"
#include "libc_check.hpp"
#include "pyshim/cli.hpp"
#include "pyshim/dir.hpp"
#include "pyshim/elf.hpp"
#include "pyshim/explain.hpp"
#include "pyshim/launch.hpp"
#include "pyshim/os.hpp"
#include "pyshim/process.hpp"
#include "pyshim/stamp.hpp"

extern char** environ;

namespace pyshim::cli {
namespace {

constexpr int kRoundTripTimeoutSeconds = 30;

// The venv a launcher at VENV/bin/NAME belongs to, or "" for a standalone
// launcher: fixes name `pyshim install` and pyvenv.cfg only for a venv.
std::string venv_of(const std::string& invoked) {
  std::string venv = dirname(dirname(invoked));
  FileInfo info;
  RealFileSystem fs;
  return fs.stat(venv + "/pyvenv.cfg", info) == 0 ? venv : std::string();
}

// How to write this launcher again, in its own terms: the venv it or its
// stamped config belongs to (a base launcher's config is its venv's).
std::string rewrite_hint(const std::string& invoked, const std::string& source = "") {
  std::string venv = venv_of(invoked);
  if (venv.empty() && !source.empty()) venv = venv_of(dirname(source) + "/bin/python");
  return venv.empty()
             ? fmt::format("run the `pyshim launcher {} ...` command that wrote it again", invoked)
             : fmt::format("pyshim install {}", venv);
}

// Run as `LAUNCHER -c PROBE LIB...`; the output format is documented beside
// ProbeOutput in explain.hpp. Python 3.8+ and PyPy. The spawn worker runs a
// stdlib bound method because a function defined under -c cannot be
// unpickled in a spawned child. Bytes throughout: paths need not be UTF-8.
constexpr std::string_view kProbe = R"PY(
import os, sys

def out(key, value):
    if isinstance(value, str):
        value = os.fsencode(value)
    value = value.replace(b"\\", b"\\\\").replace(b"\n", b"\\n")
    sys.stdout.buffer.write(key.encode() + b"=" + value + b"\n")

wanted = [os.fsencode(a) for a in sys.argv[1:]]
names = set(os.path.basename(w) for w in wanted)

def mapped(maps):
    found = []
    for line in maps.splitlines():
        fields = line.split(None, 5)
        if len(fields) == 6:
            path = fields[5].strip()
            if (path in wanted or os.path.basename(path) in names) and path not in found:
                found.append(path)
    return found

def error(e):
    return "%s: %s" % (type(e).__name__, e)

out("executable", sys.executable or "")
out("implementation", sys.implementation.name)
with open("/proc/self/maps", "rb") as f:
    for p in mapped(f.read()):
        out("parent.map", p)

try:
    import multiprocessing, pathlib
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        worker_maps = pool.apply(pathlib.Path("/proc/self/maps").read_bytes)
    for p in mapped(worker_maps):
        out("spawn.map", p)
    out("spawn.ok", "1")
except Exception as e:
    out("spawn.error", error(e))

try:
    import subprocess
    script = r'cat /proc/$$/environ && printf "\n--maps--\n" && cat /proc/$$/maps'
    res = subprocess.run(["/bin/sh", "-c", script], stdout=subprocess.PIPE, check=True)
    environ, _, maps = res.stdout.partition(b"\n--maps--\n")
    for entry in environ.split(b"\0"):
        name, eq, value = entry.partition(b"=")
        if not eq:
            continue
        if name == b"LD_PRELOAD":
            out("sh.ld_preload", value)
        elif name == b"LD_LIBRARY_PATH":
            out("sh.ld_library_path", value)
        elif name.startswith(b"PYSHIM_ORIG_"):
            out("sh.bookkeeping", name)
    for p in mapped(maps):
        out("sh.map", p)
    out("sh.ok", "1")
except Exception as e:
    out("sh.error", error(e))

out("done", "1")
sys.stdout.flush()
)PY";

// --import MOD: MOD imported in the interpreter, then in a spawn worker
// whose parent does not import it (so a module that only the parent could
// import fails here). exec() is a builtin, so the worker's task pickles by
// name even though -c code defines no importable function.
constexpr std::string_view kImportInInterpreter =
    "import importlib, sys\nimportlib.import_module(sys.argv[1])\n";
constexpr std::string_view kImportInWorker = R"PY(
import concurrent.futures, multiprocessing, sys
code = "import importlib; importlib.import_module(%r)" % sys.argv[1]
ctx = multiprocessing.get_context("spawn")
try:
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        pool.submit(exec, code).result()
except BaseException as e:
    # The worker's own traceback (its __cause__), not the parent's re-raise;
    # a worker that died (BrokenProcessPool) wrote its reason to stderr itself.
    sys.stderr.write("%s\n%s: %s\n" % (e.__cause__ or "", type(e).__name__, e))
    sys.exit(1)
)PY";

struct Options {
  std::string launcher;
  bool json = false;
  bool extensions = false;
  std::vector<std::string> layer_candidates;
  std::vector<std::string> imports;  // --import MOD
};

// Text: one line per check, printed as it is made (the round trip can take
// seconds). JSON: kept for one document at the end.
class Checklist {
 public:
  explicit Checklist(bool json) : json_(json) {}
  void add(Check check) {
    if (!json_) {
      std::string text = format_check(check);
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    }
    if (check.state == Check::State::kFail) failed_ = true;
    checks_.push_back(std::move(check));
  }
  bool failed() const { return failed_; }
  const std::vector<Check>& checks() const { return checks_; }

 private:
  bool json_ = false;
  bool failed_ = false;
  std::vector<Check> checks_;
};

Check from_error(std::string id, std::string what, const Error& error) {
  return Check::fail(std::move(id), std::move(what), error.message, error.hint, error.context);
}

std::string config_context(const Config& config, Origin origin) {
  return "config: " + where(config, origin);
}

// The first 4 KiB: enough for the ELF and program headers, and for "#!".
Result<std::string> read_head(FileSystem& fs, const std::string& path) {
  std::string head;
  if (int err = fs.read_head(path, 4096, head); err != 0) {
    return Error{ErrorKind::kCheckFailed, std::strerror(err), {}, ""};
  }
  return head;
}

Result<ElfInfo> read_elf(FileSystem& fs, const std::string& path) {
  auto head = read_head(fs, path);
  if (!head) return head.take_error();
  return parse_elf(*head);
}

// The launcher's check_interpreter, its verdict shown as three properties
// (exists, executable, not the shim: the verdict's kind tells which failed).
// Returns whether to go on with the checks that read the interpreter.
bool doctor_interpreter(Checklist& out, FileSystem& fs, const LaunchRequest& request,
                        const Config& config) {
  Status status = check_interpreter(fs, request, config);
  const std::string& path = config.interpreter.value;
  ErrorKind kind = status ? ErrorKind::kNone : status.error().kind;
  // The launcher's hint for a missing or unusable interpreter says "run
  // pyshim doctor" (all but its chmod hint for a regular file): say what to do.
  std::string venv = venv_of(request.invoked_path);
  std::string fix = venv.empty()
                        ? std::string("point 'interpreter' at the real Python binary")
                        : fmt::format(
                              "point 'interpreter' at the real Python binary (the 'home' "
                              "folder in {}/pyvenv.cfg names the one a venv was made from)",
                              venv);
  FileInfo info;
  bool exists = fs.stat(path, info) == 0;
  auto interpreter_error = [&](std::string id, std::string what, const Error& error) {
    Check check = from_error(std::move(id), std::move(what), error);
    if (!(kind == ErrorKind::kInterpreterNotExecutable && exists && S_ISREG(info.mode))) {
      check.fix = fix;
    }
    return check;
  };
  if (kind == ErrorKind::kInterpreterNotFound) {
    out.add(interpreter_error("interpreter_exists", "interpreter exists", status.error()));
    return false;
  }
  // Exists, unless stat itself failed (EACCES on the way): then only the
  // launcher's own verdict is shown.
  if (exists) {
    out.add(
        Check::pass("interpreter_exists", fmt::format("interpreter exists: {}  ({})", path,
                                                      where(config, config.interpreter.origin))));
  }
  if (kind == ErrorKind::kInterpreterUnreadable || kind == ErrorKind::kInterpreterNotExecutable) {
    out.add(
        interpreter_error("interpreter_executable", "interpreter is executable", status.error()));
    return false;
  }
  out.add(Check::pass("interpreter_executable", "interpreter is executable"));
  if (kind != ErrorKind::kNone) {
    out.add(from_error("interpreter_not_shim", "interpreter is not the shim", status.error()));
    return false;
  }
  out.add(Check::pass("interpreter_not_shim", "interpreter is not the shim"));
  return true;
}

std::optional<ElfInfo> doctor_dynamic(Checklist& out, FileSystem& fs, const Config& config) {
  const std::string& path = config.interpreter.value;
  std::string what = "interpreter is dynamically linked";
  std::vector<std::string> context = {config_context(config, config.interpreter.origin)};
  auto head = read_head(fs, path);
  if (!head) {
    out.add(Check::fail("interpreter_dynamic", what,
                        fmt::format("cannot read {}: {}", path, head.error().message),
                        "check the file's permissions", context));
    return std::nullopt;
  }
  auto elf = parse_elf(*head);
  if (!elf && head->starts_with("#!")) {
    std::string line = head->substr(0, head->find('\n'));
    out.add(Check::fail(
        "interpreter_dynamic", what,
        fmt::format("it is a script ({}), not an ELF binary: the preloads and the restore "
                    "library would act on the script's interpreter, and the Python it starts "
                    "would get the caller's environment back",
                    line),
        "point 'interpreter' at the Python binary the script runs", context));
    return std::nullopt;
  }
  if (!elf) {
    out.add(Check::fail("interpreter_dynamic", what,
                        fmt::format("not an ELF file ({})", elf.error().message),
                        "point 'interpreter' at a Python binary", context));
    return std::nullopt;
  }
  if (!elf->has_interp) {
    out.add(Check::fail("interpreter_dynamic", what, "statically linked: LD_PRELOAD has no effect",
                        "use a dynamically linked Python build; a static one never runs the "
                        "dynamic loader, so neither the preloads nor library_path apply",
                        context));
  } else {
    out.add(Check::pass("interpreter_dynamic", fmt::format("{} ({})", what, describe(*elf))));
  }
  return *elf;
}

// Each preload: the launcher's check_preload, then what a launch does not
// look at: that the file is a shared library of the interpreter's ELF class
// and machine (the loader skips any other with a warning, and runs on).
void doctor_preloads(Checklist& out, FileSystem& fs, const Config& config,
                     const std::optional<ElfInfo>& interpreter) {
  for (const Setting& lib : config.preload) {
    if (Status status = check_preload(fs, config, lib); !status) {
      out.add(from_error("preload", "preload", status.error()));
      continue;
    }
    std::string what = fmt::format("preload {}", lib.value);
    std::vector<std::string> context = {config_context(config, lib.origin)};
    auto elf = read_elf(fs, lib.value);
    if (!elf) {
      out.add(Check::fail("preload", what,
                          fmt::format("not an ELF shared library ({})", elf.error().message),
                          "point 'preload' at the shared library itself (not a linker script "
                          "or a symlink to one)",
                          context));
    } else if (!interpreter) {
      out.add(Check::pass(
          "preload",
          fmt::format(
              "{} exists ({}; not compared with the interpreter, whose ELF header is unknown)",
              what, describe(*elf))));
    } else if (!compatible(*elf, *interpreter)) {
      out.add(Check::fail(
          "preload", what,
          fmt::format("{}, but the interpreter is {}: the loader ignores it", describe(*elf),
                      describe(*interpreter)),
          fmt::format("point 'preload' at the {} build of the library", describe(*interpreter)),
          context));
    } else {
      out.add(Check::pass("preload", fmt::format("{} exists and matches the interpreter ({})", what,
                                                 describe(*elf))));
    }
  }
}

// Each library folder: the launcher's check_library_folder, then what it
// lets pass: a folder that is missing (the loader skips it in silence, and
// the libraries it should give are "not found" at import) or is a file.
void doctor_library_folders(Checklist& out, FileSystem& fs, const Config& config) {
  for (const Setting& folder : config.library_path) {
    if (Status status = check_library_folder(config, folder); !status) {
      out.add(from_error("library_path", "library directory", status.error()));
      continue;
    }
    std::string what = fmt::format("library directory {}", folder.value);
    std::vector<std::string> context = {config_context(config, folder.origin)};
    FileInfo info;
    int err = fs.stat(folder.value, info);
    if (err == ENOENT || err == ENOTDIR) {
      out.add(Check::fail("library_path", what, "not found",
                          "create it (e.g. `pyshim dynlib` for a layer), or remove it from "
                          "library_path",
                          context));
    } else if (err != 0) {
      out.add(
          Check::fail("library_path", what, std::strerror(err), "fix its permissions", context));
    } else if (!S_ISDIR(info.mode)) {
      out.add(Check::fail("library_path", what, "not a directory",
                          "library_path lists folders; for a single library use 'preload'",
                          context));
    } else {
      out.add(Check::pass("library_path", fmt::format("{} exists", what)));
    }
  }
}

// Returns the restore library's path ("" when missing).
std::string doctor_restore_library(Checklist& out, FileSystem& fs, const LaunchRequest& request,
                                   const std::optional<ElfInfo>& interpreter) {
  auto found = find_restore_library(fs, request.self_exe, request.stamp ? &*request.stamp : nullptr,
                                    request.euid);
  std::string what = "restore library present";
  if (!found) {
    out.add(from_error("restore_library", what, found.error()));
    return {};
  }
  const std::string& path = *found;
  // A path the loader would split goes in as /proc/self/fd/N (README, "Tool
  // mode"); say so, since that is what a user sees in LD_PRELOAD.
  std::string how;
  if (std::string why = loader_refusal(path, true); !why.empty()) {
    how = fmt::format(" (preloaded as /proc/self/fd/N: {})", why);
  }
  auto elf = read_elf(fs, path);
  if (!elf) {
    out.add(Check::fail("restore_library", what,
                        fmt::format("{} is not an ELF file ({})", path, elf.error().message),
                        "reinstall pyshim"));
  } else if (interpreter && !compatible(*elf, *interpreter)) {
    out.add(Check::fail("restore_library", what,
                        fmt::format("{} is {}, but the interpreter is {}: the loader ignores "
                                    "it and children would keep the shim's LD_PRELOAD",
                                    path, describe(*elf), describe(*interpreter)),
                        "use a pyshim built for the interpreter's architecture"));
  } else {
    out.add(Check::pass("restore_library",
                        fmt::format("{}{}: {}{}", what,
                                    interpreter ? " and matches the interpreter" : "", path, how)));
  }
  return path;
}

// The interpreter's C library against what goes into it (libc_check.hpp): a
// version it lacks would make the loader refuse every launch.
void doctor_libc(Checklist& out, FileSystem& fs, const Config& config, const std::string& restore) {
  std::vector<std::string> loaded;
  if (!restore.empty()) loaded.push_back(restore);
  for (const Setting& lib : config.preload) loaded.push_back(lib.value);
  LibcReport libc = check_libc(fs, config.interpreter.value, loaded);
  std::string what = "C library loads the restore library and preloads";
  if (libc.problems.empty()) {
    if (!libc.summary.empty())
      out.add(Check::pass("libc", fmt::format("{}: {}", what, libc.summary)));
    return;
  }
  for (const Error& problem : libc.problems) out.add(from_error("libc", what, problem));
}

// [python] startup needs the hook module and its .pth in the launcher's venv.
void doctor_startup_files(Checklist& out, const std::string& invoked, const Config& config) {
  if (config.startup.empty()) return;
  std::string what = "startup hook files installed";
  std::filesystem::path venv = dirname(dirname(invoked));
  auto dirs = site_packages_dirs(venv);
  std::string fix = fmt::format("run `pyshim install {}` (it installs {} and {} in site-packages)",
                                venv.string(), kStartupPth, kStartupModule);
  if (dirs.empty()) {
    out.add(Check::fail("startup_files", what,
                        fmt::format("{} has no lib/*/site-packages", venv.string()),
                        "startup hooks need the launcher to be a venv's bin/python"));
    return;
  }
  for (const auto& dir : dirs) {
    for (const char* name : {kStartupPth, kStartupModule}) {
      if (!stat_path((dir / name).string())) {
        out.add(Check::fail("startup_files", what,
                            fmt::format("{} is missing", (dir / name).string()), fix));
        return;
      }
    }
  }
  out.add(Check::pass("startup_files", fmt::format("{} in {}", what, dirs.front().string())));
}

// The hook module reports a failing hook on stderr, one line each.
void doctor_startup_run(Checklist& out, const Config& config, const std::string& err) {
  if (config.startup.empty()) return;
  std::string what = "startup hooks ran without errors";
  std::string_view rest = err;
  while (!rest.empty()) {
    std::string_view line = rest.substr(0, rest.find('\n'));
    rest.remove_prefix(std::min(rest.size(), line.size() + 1));
    if (line.starts_with("pyshim: startup hook ")) {
      out.add(Check::fail("startup_hooks_ran", what, std::string(line.substr(8)),
                          "fix the hook, or its entry in [python] startup / path"));
      return;
    }
  }
  std::vector<std::string> hooks;
  for (const Setting& hook : config.startup) hooks.push_back(hook.value);
  out.add(Check::pass("startup_hooks_ran", fmt::format("{}: {}", what, fmt::join(hooks, ", "))));
}

Check doctor_pypy_venv(FileSystem& fs, const std::string& invoked) {
  std::string what = "PyPy launcher is inside a venv";
  std::string dir = dirname(invoked);
  for (const std::string& candidate : {dirname(dir) + "/pyvenv.cfg", dir + "/pyvenv.cfg"}) {
    FileInfo info;
    if (fs.stat(candidate, info) == 0)
      return Check::pass("pypy_venv", fmt::format("{}: {}", what, candidate));
  }
  return Check::fail("pypy_venv", what,
                     "standalone PyPy is unsupported (PyPy finds its lib/ from argv[0]); use it "
                     "as a venv's bin/python",
                     fmt::format("create a venv with `pypy3 -m venv VENV` and install the "
                                 "launcher there as VENV/bin/python (no pyvenv.cfg in {} or {})",
                                 dirname(dir), dir));
}

Library library(const std::string& path) {
  return {path, real_path(path)};
}

void add_unique(std::vector<std::string>& out, const std::string& value) {
  if (value.empty()) return;
  for (const std::string& existing : out) {
    if (existing == value) return;
  }
  out.push_back(value);
}

// The launcher file itself: a pyshim launcher, of this tool's version, and
// what its stamp says. False when it is not a launcher at all.
bool doctor_launcher_image(Checklist& out, const LaunchRequest& request) {
  std::string area = read_stamp_area(request.self_exe);
  if (area.empty()) {
    out.add(Check::fail(
        "launcher_is_pyshim", "launcher is a pyshim launcher",
        fmt::format("{} is not a pyshim launcher", request.self_exe),
        venv_of(request.invoked_path).empty()
            ? std::string("give a launcher (a shim venv's bin/python, one "
                          "written by `pyshim launcher`, or an entrypoint "
                          "script whose #! line names one)")
            : fmt::format("make it one with `pyshim install {}`", venv_of(request.invoked_path))));
    return false;
  }
  std::string version = stamp_version(area);
  if (version != PYSHIM_VERSION) {
    out.add(Check::fail(
        "launcher_version", "launcher version matches the tool",
        fmt::format("{} is pyshim-launcher {}, this tool is {}", request.self_exe, version,
                    PYSHIM_VERSION),
        fmt::format("refresh it: {}", rewrite_hint(request.invoked_path,
                                                   request.stamp ? request.stamp->source : ""))));
  } else {
    out.add(Check::pass("launcher_version",
                        fmt::format("launcher version {} matches the tool", version)));
  }
  if (request.stamp_error) {
    out.add(from_error("stamp", "stamped config intact", *request.stamp_error));
  } else if (!request.stamp) {
    out.add(Check::pass(
        "stamp",
        "launcher carries no stamp (a shared launcher: it needs a pyshim.toml beside the path "
        "it is started by)"));
  } else {
    const Stamp& stamp = *request.stamp;
    RealFileSystem fs;
    FileInfo info;
    std::string says = fmt::format("interpreter {}, {} preload(s), {} library folder(s)",
                                   stamp.config.interpreter.value, stamp.config.preload.size(),
                                   stamp.config.library_path.size());
    if (fs.stat(stamp.source, info) != 0 && stamp.identity == FileIdentity{}) {
      // `pyshim launcher` without --config: the stamp is the whole config.
      out.add(Check::pass("stamp",
                          fmt::format("stamped config (written without a file; a {} would take "
                                      "over): {}",
                                      stamp.source, says)));
    } else if (fs.stat(stamp.source, info) != 0) {
      out.add(
          Check::pass("stamp", fmt::format("stamp from {} (now gone: the stamp alone is used): {}",
                                           stamp.source, says)));
    } else if (identity_of(info) != stamp.identity) {
      out.add(Check::fail(
          "stamp", "stamp current",
          fmt::format("{} changed since the launcher was stamped: it is parsed at every launch "
                      "(stamp says: {})",
                      stamp.source, says),
          fmt::format("re-stamp it: {}", rewrite_hint(request.invoked_path, stamp.source))));
    } else {
      out.add(Check::pass("stamp", fmt::format("stamp current with {}: {}", stamp.source, says)));
    }
  }
  return true;
}

// A shim venv's base launcher: what derived environments are made from.
void doctor_base_launcher(Checklist& out, const LaunchRequest& request, bool pypy) {
  std::string venv = dirname(dirname(request.invoked_path));
  if (pypy || !stat_path(venv + "/.pyshim/manifest.toml")) return;
  std::string what = "base launcher (sys._base_executable) present and stamped";
  std::string fix = fmt::format("run `pyshim install {}`", venv);
  std::string main = std::filesystem::path(request.self_exe).filename().string();
  std::string base = fmt::format("{}/{}/{}", venv, kBaseLauncherDir, main);
  if (auto info = lstat_path(base); !info || !S_ISREG(info->mode)) {
    out.add(Check::fail("base_launcher", what,
                        fmt::format("{} is missing or not a file of its own: venvs derived "
                                    "from this one would lose the native setup",
                                    base),
                        fix));
    return;
  }
  auto stamp = decode_stamp(read_stamp_area(base));
  if (!stamp || !stamp->has_value() || (*stamp)->source != venv + "/" + std::string(kConfigName)) {
    out.add(Check::fail("base_launcher", what,
                        fmt::format("{} is not stamped from this venv's config", base), fix));
    return;
  }
  out.add(Check::pass("base_launcher", fmt::format("{}: {}", what, base)));
}

// --extensions: what the venv's shared objects need, read from their files.
void doctor_extensions(Checklist& out, const LaunchRequest& request, const Config& config,
                       const Options& options) {
  const char* what = "extension modules and libraries checked";
  std::string venv = dirname(dirname(request.invoked_path));
  if (!stat_path(venv + "/pyvenv.cfg")) {
    out.add(Check::skip("extension_libraries", what,
                        "the launcher is not in a venv: there is no site-packages to read"));
    return;
  }
  ExtensionRequest ask{
      venv, resolve_path(config.dir, config.interpreter.value), {}, {}, options.layer_candidates};
  for (const Setting& lib : config.preload)
    ask.preloads.push_back(resolve_path(config.dir, lib.value));
  for (const Setting& dir : config.library_path) {
    ask.library_path.push_back(resolve_path(config.dir, dir.value));
  }
  auto scan = scan_extensions(ask);
  if (!scan) {
    out.add(from_error("extension_libraries", what, scan.error()));
    return;
  }
  for (Check& check : extension_checks(*scan)) out.add(std::move(check));
}

// Who runs the --import processes: as the round trip (launcher_run_as, the
// one rule of root_trust.hpp): as root only when no one else can change
// what the launch loads.
Result<RunOptions> import_run_options(const std::string& launcher, std::string& run_as) {
  RunOptions how{.capture_output = true,
                 .capture_errors = true,
                 .no_input = true,
                 .own_group = true,
                 .timeout_seconds = kRoundTripTimeoutSeconds};
  RunAs as = launcher_run_as(launcher);
  if (as.drops()) {
    how.uid = as.uid;
    how.gid = as.gid;
    run_as = fmt::format("uid {}, gid {}", how.uid, how.gid);
  }
  return how;
}

ImportRun run_import(const std::string& launcher, std::string_view script,
                     const std::string& module, const RunOptions& how) {
  ImportRun run;
  run.ran = true;
  run.timeout_seconds = how.timeout_seconds;
  auto ran = run_process({launcher, "-c", std::string(script), module}, how);
  if (!ran) {
    run.status = ran.error().message;
    return run;
  }
  run.timed_out = ran->timed_out;
  run.status = ran->describe();
  run.err = std::move(ran->errors);
  run.ok = !ran->timed_out && ran->status == 0;
  return run;
}

void doctor_imports(Checklist& out, const LaunchRequest& request,
                    const std::vector<std::string>& modules) {
  if (modules.empty()) return;
  ImportTrip trip;
  auto how = import_run_options(request.invoked_path, trip.run_as);
  for (const std::string& module : modules) {
    trip.module = module;
    if (!how) {
      out.add(
          from_error("import", fmt::format("{} imports in the interpreter", module), how.error()));
      continue;
    }
    trip.interpreter = run_import(request.invoked_path, kImportInInterpreter, module, *how);
    trip.worker = trip.interpreter.ok
                      ? run_import(request.invoked_path, kImportInWorker, module, *how)
                      : ImportRun{};
    for (const Check& check : import_checks(trip)) out.add(check);
  }
}

void skip_imports(Checklist& out, const std::vector<std::string>& modules,
                  const std::string& reason) {
  for (const std::string& module : modules) {
    out.add(Check::skip("import", fmt::format("{} imports in the interpreter", module), reason));
  }
}

// Every check on one launcher, in order; returns doctor's exit status.
int run_checks(Checklist& out, const LaunchRequest& request, EnvView env, const Options& options) {
  RealFileSystem fs;
  std::string round_trip = "live round trip";

  if (!doctor_launcher_image(out, request)) return kExitCheckFailed;
  auto found = find_config(fs, request);
  std::optional<Config> config;
  if (!found) {
    out.add(from_error("config", "config found", found.error()));
  } else if (auto parsed = load_config(request, *found); !parsed) {
    out.add(from_error("config", "config valid", parsed.error()));
  } else {
    config = std::move(*parsed);
    out.add(Check::pass("config", fmt::format("config found and valid: {}{}", config->file,
                                              found->source == ConfigSource::kStamp
                                                  ? " (the stamp: not parsed at launch)"
                                                  : "")));
  }
  if (!config) {
    out.add(Check::skip("static_checks", "interpreter, preload and library_path checks",
                        "they need the config"));
    doctor_restore_library(out, fs, request, std::nullopt);
    out.add(
        Check::skip("round_trip", round_trip, "the launcher cannot start without a valid config"));
    skip_imports(out, options.imports, "the launcher cannot start without a valid config");
    return kExitCheckFailed;
  }

  bool interpreter_ok = doctor_interpreter(out, fs, request, *config);
  std::optional<ElfInfo> interpreter_elf;
  if (interpreter_ok) interpreter_elf = doctor_dynamic(out, fs, *config);
  doctor_preloads(out, fs, *config, interpreter_elf);
  doctor_library_folders(out, fs, *config);
  std::string restore = doctor_restore_library(out, fs, request, interpreter_elf);
  if (interpreter_elf && interpreter_elf->has_interp) doctor_libc(out, fs, *config, restore);
  doctor_startup_files(out, request.invoked_path, *config);
  if (options.extensions) doctor_extensions(out, request, *config, options);
  doctor_base_launcher(out, request, is_pypy(config->interpreter.value));

  // PyPy is recognised by name here, and by sys.implementation after the
  // round trip for an interpreter whose name does not say.
  bool pypy_checked = false;
  if (is_pypy(config->interpreter.value)) {
    out.add(doctor_pypy_venv(fs, request.invoked_path));
    pypy_checked = true;
  }

  // When the launcher would refuse to start, the round trip would only repeat
  // the error already reported above.
  if (auto launch = prepare_launch(fs, request); !launch) {
    std::string why = fmt::format("the launcher would refuse to start: {}", launch.error().message);
    out.add(Check::skip("round_trip", round_trip, why));
    skip_imports(out, options.imports, why);
    return kExitCheckFailed;
  }

  RoundTrip trip;
  trip.launcher = request.invoked_path;
  for (const Setting& lib : config->preload) trip.preloads.push_back(library(lib.value));
  trip.restore_library = library(restore);
  std::string_view caller_preload = env_get(env, kPreloadVar);
  std::string_view caller_library_path = env_get(env, kLibraryPathVar);
  if (caller_preload.data() != nullptr) trip.caller_preload = std::string(caller_preload);
  if (caller_library_path.data() != nullptr) {
    trip.caller_library_path = std::string(caller_library_path);
  }
  trip.timeout_seconds = kRoundTripTimeoutSeconds;

  std::vector<std::string> argv = {trip.launcher, "-c", std::string(kProbe)};
  std::vector<std::string> wanted;
  for (const Library& lib : trip.preloads) {
    add_unique(wanted, lib.path);
    add_unique(wanted, lib.real);
  }
  add_unique(wanted, trip.restore_library.path);
  add_unique(wanted, trip.restore_library.real);
  argv.insert(argv.end(), wanted.begin(), wanted.end());

  // Root runs it as root only when no one else can change what it loads
  // (the one rule of root_trust.hpp); else as the venv's owner, or nobody.
  RunAs as = launcher_run_as(trip.launcher);
  if (as.drops()) {
    out.add(Check::pass("round_trip_user",
                        fmt::format("the round trip runs as uid {}, gid {}, not as root: {}",
                                    as.uid, as.gid, describe(as.trust))));
  }
  // In a group of its own: a probe that hangs is killed with its worker.
  auto ran = run_process(argv, {.capture_output = true,
                                .capture_errors = true,
                                .no_input = true,
                                .own_group = true,
                                .timeout_seconds = kRoundTripTimeoutSeconds,
                                .uid = as.uid,
                                .gid = as.gid});
  if (!ran) {
    trip.status = ran.error().message;
  } else {
    trip.timed_out = ran->timed_out;
    trip.status = ran->describe();
    trip.out = std::move(ran->output);
    trip.err = std::move(ran->errors);
  }

  if (!pypy_checked && ProbeOutput::parse(trip.out).get("implementation") == "pypy") {
    out.add(doctor_pypy_venv(fs, request.invoked_path));
  }
  for (const Check& check : round_trip_checks(trip)) out.add(check);
  doctor_startup_run(out, *config, trip.err);
  doctor_imports(out, request, options.imports);
  return out.failed() ? kExitCheckFailed : kExitOk;
}

int run_doctor(const Options& options) {
  std::string launcher = options.launcher.empty() ? default_launcher() : options.launcher;
  if (launcher.empty()) {
    return print_error(Error{ErrorKind::kUsage,
                             "no launcher given, and neither ./.venv/bin/python nor python on PATH "
                             "exists",
                             {},
                             "give one: pyshim doctor VENV/bin/python"},
                       options.json);
  }
  std::string script;
  launcher = launcher_behind(launcher, &script);
  for (const std::string& module : options.imports) {
    if (!is_dotted_name(module)) {
      return print_error(
          Error{ErrorKind::kUsage,
                fmt::format("--import {}: not a module name", printable(module, 200)),
                {},
                "give a module as `import` takes it, e.g. --import numpy.linalg"},
          options.json);
    }
  }
  std::size_t env_count = 0;
  while (environ[env_count] != nullptr) ++env_count;
  EnvView env(environ, env_count);
  auto request = request_for_launcher(launcher, env);
  if (!request) return print_error(request.error(), options.json);
  request->thorough = true;  // also recognise a launcher of another build as the interpreter

  Checklist out(options.json);
  if (!script.empty()) {
    out.add(Check::pass("entrypoint", fmt::format("entrypoint {} runs the launcher {} (#! line)",
                                                  script, launcher)));
  }
  int code = run_checks(out, *request, env, options);
  if (options.json) {
    std::string text = doctor_json(request->invoked_path, code == kExitOk, out.checks());
    std::fwrite(text.data(), 1, text.size(), stdout);
  }
  return code;
}

}  // namespace

void setup_doctor(CLI::App& app, Context& context) {
  auto options = std::make_shared<Options>();
  auto* sub = app.add_subcommand(
      "doctor", "Check a launcher's setup, then run Python through it and check what it sees");
  sub->add_option("launcher", options->launcher,
                  "the launcher, e.g. VENV/bin/python (default: ./.venv/bin/python if it "
                  "exists, else python on PATH)");
  sub->add_flag("--extensions", options->extensions,
                "also read every shared object in the venv's site-packages (no code runs) and "
                "check that its sanitizer runtime is preloaded first and that the loader finds "
                "every library it needs");
  sub->add_option("--layer-candidates", options->layer_candidates,
                  "with --extensions: venvs that may hold a missing library (a lower layer); "
                  "a fix names the one that does")
      ->expected(1, -1);
  sub->add_flag("--json", options->json,
                "print one JSON document (schema 1, see README): a verdict per check");
  sub->add_option("--import", options->imports,
                  "MOD: also import MOD through the launcher, in the interpreter and in a "
                  "multiprocessing spawn worker; fails naming the process that could not, with "
                  "its stderr. Repeatable.");
  sub->footer(
      "Examples:\n"
      "  pyshim doctor .venv/bin/python\n"
      "  pyshim doctor ./app-python && echo ready\n"
      "  pyshim doctor .venv/bin/python --json | python3 -m json.tool\n"
      "  pyshim doctor ./asan-python --import myext --import myext.fast\n"
      "\n"
      "One line per check: ✓ passed, ✗ failed (with a fix), - skipped.\n"
      "The live round trip runs LAUNCHER -c <probe> with this environment and checks\n"
      "sys.executable, the preloads mapped in the interpreter and in a multiprocessing\n"
      "spawn worker, and that a /bin/sh child gets this environment's LD_PRELOAD and\n"
      "LD_LIBRARY_PATH back.\n"
      "Exit status: 0 every check passed, 1 a check failed, 2 usage error.");
  sub->callback([options, &context] { context.exit_code = run_doctor(*options); });
}

}  // namespace pyshim::cli
