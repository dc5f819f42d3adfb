// Startup hooks' Python side: a .pth file and a small module in the venv's
// site-packages (see src/python/_pyshim_startup.py).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "pyshim/error.hpp"
#include "venv_dir.hpp"

namespace pyshim::cli {

inline constexpr const char* kStartupPth = "pyshim-startup.pth";
inline constexpr const char* kStartupModule = "_pyshim_startup.py";

// VENV/lib/python3.X/site-packages (or pypy3.X); empty if there is none.
std::vector<std::filesystem::path> site_packages_dirs(const std::filesystem::path& venv);

inline constexpr const char* kBaseExecutablePth = "pyshim-base-executable.pth";

// The site-packages files of a shim venv: the .pth that points
// sys._base_executable at the base launcher (base_relative, relative to the
// venv root; none when empty: a 3.11+ venv's getpath does it), and the
// startup-hook .pth + module when hooks are enabled; with both, one .pth
// (pyshim-startup.pth) does both. Returns whether anything changed.
// The hook module is byte-compiled with interpreter.
Result<bool> sync_site_files(const Dir& root, bool hooks, const std::string& interpreter,
                             const std::string& base_relative);

// Removes every file sync_site_files may have written.
void remove_site_files(const Dir& root);

}  // namespace pyshim::cli
