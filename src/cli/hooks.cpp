#include "hooks.hpp"

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "pyshim_startup_py.hpp"

namespace fs = std::filesystem;

namespace pyshim::cli {
namespace {

// site imports a .pth line that starts with "import"; nothing else runs when
// the launcher passed no hooks (the module returns after one read).
constexpr const char* kPthText = "import _pyshim_startup; _pyshim_startup.run()\n";

bool write_if_changed(const fs::path& path, const std::string& text) {
  std::ifstream in(path, std::ios::binary);
  if (in) {
    std::stringstream current;
    current << in.rdbuf();
    if (current.str() == text) return false;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return true;
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

Result<bool> sync_startup_files(const fs::path& venv, bool enabled) {
  bool changed = false;
  auto dirs = site_packages_dirs(venv);
  if (enabled && dirs.empty()) {
    return Error{kExitUsage, fmt::format("{} has no lib/*/site-packages", venv.string()), {},
                 "startup hooks are installed there; recreate the venv"};
  }
  for (const fs::path& dir : dirs) {
    std::error_code ec;
    if (enabled) {
      changed |= write_if_changed(dir / kStartupPth, kPthText);
      changed |= write_if_changed(dir / kStartupModule, embedded::startup_module);
    } else {
      changed |= fs::remove(dir / kStartupPth, ec);
      changed |= fs::remove(dir / kStartupModule, ec);
    }
  }
  return changed;
}

}  // namespace pyshim::cli
