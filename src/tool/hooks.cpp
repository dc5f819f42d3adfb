#include "hooks.hpp"

namespace fs = std::filesystem;

namespace pyshim::cli {

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

}  // namespace pyshim::cli
