#include "hooks.hpp"

#include <sys/stat.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>

#include "pyshim/launch.hpp"
#include "pyshim/process.hpp"

#include "files.hpp"
#include "pyshim_startup_py.hpp"
#include "venv_dir.hpp"

namespace fs = std::filesystem;

namespace pyshim::cli {
namespace {

// site imports a .pth line that starts with "import"; nothing else runs when
// the launcher passed no hooks (the module returns after one read).
constexpr const char* kPthText = "import _pyshim_startup; _pyshim_startup.run()\n";

// Tools that derive a new environment from a running interpreter (venv,
// virtualenv and with it tox, nox, build) start from sys._base_executable.
// Pointing it at the venv's base launcher (a stamped copy that is not a
// venv interpreter) makes every derived environment run through a launcher
// with this venv's native setup. Relative to sys.prefix, so a venv that is
// moved or mounted elsewhere still points into itself.
//
// site.py reads and compiles this line in every interpreter start, so it is
// as short as a .pth line can be: sys is already imported (site requires
// the line to start with "import"), a string concatenation instead of
// os.path.join (half the compile time). Why no pyvenv.cfg key can do this
// instead: README "The base launcher".
std::string base_executable_text(const std::string& base_relative) {
  return fmt::format("import sys;sys._base_executable=sys.prefix+'/{}'\n", base_relative);
}

bool has_bytecode(const fs::path& site_packages) {
  for (const std::string& name : folder_names((site_packages / "__pycache__").string())) {
    if (name.starts_with("_pyshim_startup.")) return true;
  }
  return false;
}

}  // namespace

std::vector<fs::path> site_packages_dirs(const fs::path& venv) {
  std::vector<fs::path> out;
  for (const std::string& name : folder_names((venv / "lib").string())) {
    if (!name.starts_with("python") && !name.starts_with("pypy")) continue;
    fs::path site = venv / "lib" / name / "site-packages";
    if (auto info = stat_path(site.string()); info && S_ISDIR(info->mode)) out.push_back(site);
  }
  return out;
}

namespace {

// lib/*/site-packages of the venv, opened without following links.
std::vector<Dir> site_packages(const Dir& root) {
  std::vector<Dir> out;
  auto lib = root.sub("lib", false);
  if (!lib) return out;
  for (const std::string& name : lib->names()) {
    if (!name.starts_with("python") && !name.starts_with("pypy")) continue;
    auto st = lib->stat(name);
    if (!st || !S_ISDIR(st->st_mode)) continue;  // lib64-style links are not followed
    auto dir = lib->sub(name, false);
    if (!dir) continue;
    auto sp = dir->stat("site-packages");
    if (sp && S_ISDIR(sp->st_mode)) out.push_back(*dir->sub("site-packages", false));
  }
  return out;
}

}  // namespace

Result<bool> sync_site_files(const Dir& root, bool hooks, const std::string& interpreter,
                             const std::string& base_relative) {
  bool changed = false;
  auto dirs = site_packages(root);
  if (dirs.empty()) {
    return Error{kExitUsage,
                 fmt::format("{} has no lib/*/site-packages", root.path()),
                 {},
                 "pyshim installs its .pth files there; recreate the venv"};
  }
  for (const Dir& dir : dirs) {
    if (base_relative.empty()) {
      changed |= dir.remove(kBaseExecutablePth);
    } else {
      changed |= dir.write(kBaseExecutablePth, base_executable_text(base_relative), 0644);
    }
    if (hooks) {
      changed |= dir.write(kStartupPth, kPthText, 0644);
      bool module_changed = dir.write(kStartupModule, embedded::startup_module, 0644);
      changed |= module_changed;
      // Compile it now with the venv's interpreter, so that every start reads
      // cached bytecode even where the user sets PYTHONDONTWRITEBYTECODE or
      // site-packages is read-only. Not as root when anyone else can change
      // the interpreter, its installation, or the folders it reads the
      // module from and writes __pycache__ into by path (following any
      // link planted there): then the user's first import compiles it.
      std::string module = dir.path_of(kStartupModule);
      if ((module_changed || !has_bytecode(dir.path())) &&
          !interpreter_run_as(root, interpreter, module).drops()) {
        // Not a Dir mutation (the interpreter writes __pycache__): the one
        // change made outside Dir (pyshim/dir.hpp), so it asks the same question.
        if (dry_run()) {
          std::cout << fmt::format("would compile {} into {}/__pycache__\n",
                                   printable(module, 4096), printable(dir.path(), 4096));
          continue;
        }
        auto compiled = run_process({interpreter, "-I", "-c",
                                     "import py_compile, sys; "
                                     "py_compile.compile(sys.argv[1], doraise=True)",
                                     module},
                                    {.no_input = true, .timeout_seconds = 60});
        if (!compiled || compiled->status != 0) {
          return Error{kExitUsage,
                       fmt::format("cannot compile {} with {}", module, interpreter),
                       {},
                       "check that the interpreter runs"};
        }
      }
    } else {
      changed |= dir.remove(kStartupPth);
      changed |= dir.remove(kStartupModule);
    }
  }
  return changed;
}

void remove_site_files(const Dir& root) {
  for (const Dir& dir : site_packages(root)) {
    for (const char* name : {kBaseExecutablePth, kStartupPth, kStartupModule}) dir.remove(name);
    // The interpreter caches the hook module's bytecode; an uninstalled
    // venv must not keep it (nor a __pycache__ only it needed).
    auto cache_stat = dir.stat("__pycache__");
    if (!cache_stat || !S_ISDIR(cache_stat->st_mode)) continue;
    Dir cache = *dir.sub("__pycache__", false);
    std::vector<std::string> names = cache.names();
    std::size_t left = names.size();
    for (const std::string& name : names) {
      if (name.starts_with("_pyshim_startup.")) {
        cache.remove(name);
        --left;
      }
    }
    if (left == 0) dir.remove("__pycache__");
  }
}

}  // namespace pyshim::cli
