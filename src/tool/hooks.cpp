#include "hooks.hpp"

#include <sys/stat.h>

#include "pyshim/os.hpp"

namespace fs = std::filesystem;

namespace pyshim::cli {

std::vector<fs::path> site_packages_dirs(const fs::path& venv) {
  std::vector<fs::path> out;
  for (const std::string& name : folder_names((venv / "lib").string())) {
    if (!name.starts_with("python") && !name.starts_with("pypy")) continue;
    fs::path site = venv / "lib" / name / "site-packages";
    if (auto info = stat_path(site.string()); info && S_ISDIR(info->mode)) out.push_back(site);
  }
  return out;
}

}  // namespace pyshim::cli
