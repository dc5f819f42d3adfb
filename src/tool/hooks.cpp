#include "hooks.hpp"

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "pyshim/process.hpp"

#include "files.hpp"
#include "pyshim_startup_py.hpp"

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
std::string base_executable_text(const std::string& base_relative) {
  std::string parts;
  for (const auto& part : fs::path(base_relative)) {
    parts += fmt::format("{}'{}'", parts.empty() ? "" : ", ", part.string());
  }
  return fmt::format("import sys, os; sys._base_executable = os.path.join(sys.prefix, {})\n",
                     parts);
}

bool has_bytecode(const fs::path& site_packages) {
  std::error_code ec;
  for (const fs::directory_entry& entry :
       fs::directory_iterator(site_packages / "__pycache__", ec)) {
    if (entry.path().filename().string().starts_with("_pyshim_startup.")) return true;
  }
  return false;
}

}  // namespace

std::vector<fs::path> site_packages_dirs(const fs::path& venv) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(venv / "lib", ec)) {
    std::string name = entry.path().filename().string();
    if (!name.starts_with("python") && !name.starts_with("pypy")) continue;
    if (fs::is_directory(entry.path() / "site-packages", ec)) {
      out.push_back(entry.path() / "site-packages");
    }
  }
  return out;
}

Result<bool> sync_site_files(const fs::path& venv, bool hooks, const std::string& interpreter,
                             const std::string& base_relative) {
  bool changed = false;
  auto dirs = site_packages_dirs(venv);
  if (dirs.empty()) {
    return Error{kExitUsage,
                 fmt::format("{} has no lib/*/site-packages", venv.string()),
                 {},
                 "pyshim installs its .pth files there; recreate the venv"};
  }
  for (const fs::path& dir : dirs) {
    std::error_code ec;
    if (base_relative.empty()) {
      changed |= fs::remove(dir / kBaseExecutablePth, ec);
    } else {
      changed |= write_if_changed(dir / kBaseExecutablePth, base_executable_text(base_relative));
    }
    if (hooks) {
      changed |= write_if_changed(dir / kStartupPth, kPthText);
      bool module_changed = write_if_changed(dir / kStartupModule, embedded::startup_module);
      changed |= module_changed;
      // Compile it now with the venv's interpreter, so that every start reads
      // cached bytecode even where the user sets PYTHONDONTWRITEBYTECODE or
      // site-packages is read-only.
      if (module_changed || !has_bytecode(dir)) {
        auto compiled = run_process({interpreter, "-I", "-c",
                                     "import py_compile, sys; "
                                     "py_compile.compile(sys.argv[1], doraise=True)",
                                     (dir / kStartupModule).string()},
                                    false, false, 60);
        if (!compiled || compiled->status != 0) {
          return Error{kExitUsage,
                       fmt::format("cannot compile {} with {}", (dir / kStartupModule).string(),
                                   interpreter),
                       {},
                       "check that the interpreter runs"};
        }
      }
    } else {
      changed |= fs::remove(dir / kStartupPth, ec);
      changed |= fs::remove(dir / kStartupModule, ec);
    }
  }
  return changed;
}

void remove_site_files(const fs::path& venv) {
  for (const fs::path& dir : site_packages_dirs(venv)) {
    std::error_code ec;
    for (const char* name : {kBaseExecutablePth, kStartupPth, kStartupModule}) {
      fs::remove(dir / name, ec);
    }
    // The interpreter caches the hook module's bytecode; an uninstalled
    // venv must not keep it (nor a __pycache__ only it needed).
    fs::path cache = dir / "__pycache__";
    for (const fs::directory_entry& entry : fs::directory_iterator(cache, ec)) {
      if (entry.path().filename().string().starts_with("_pyshim_startup.")) {
        fs::remove(entry.path(), ec);
      }
    }
    if (fs::is_empty(cache, ec) && !ec) fs::remove(cache, ec);
  }
}

}  // namespace pyshim::cli
