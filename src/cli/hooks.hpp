// Startup hooks' Python side: a .pth file and a small module in the venv's
// site-packages (see src/python/_pyshim_startup.py).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "pyshim/error.hpp"

namespace pyshim::cli {

inline constexpr const char* kStartupPth = "pyshim-startup.pth";
inline constexpr const char* kStartupModule = "_pyshim_startup.py";

// VENV/lib/python3.X/site-packages (or pypy3.X); empty if there is none.
std::vector<std::filesystem::path> site_packages_dirs(const std::filesystem::path& venv);

// Installs the .pth + module when enabled, removes them otherwise. Returns
// whether anything changed.
Result<bool> sync_startup_files(const std::filesystem::path& venv, bool enabled);

}  // namespace pyshim::cli
