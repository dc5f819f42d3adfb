// Startup hooks' Python side: a .pth file and a small module in the venv's
// site-packages (see src/python/_pyshim_startup.py). install plans them
// (plan_site_files in src/core/install_plan.cpp); doctor checks them.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "pyshim/install_plan.hpp"  // kStartupPth, kStartupModule, kBaseExecutablePth

namespace pyshim::cli {

// VENV/lib/python3.X/site-packages (or pypy3.X); empty if there is none.
std::vector<std::filesystem::path> site_packages_dirs(const std::filesystem::path& venv);

}  // namespace pyshim::cli
