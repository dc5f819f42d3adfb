// Shared by `pyshim install` and `pyshim init`.
#pragma once

#include <string>
#include <vector>

#include "pyshim/error.hpp"

namespace CLI {
class App;
}

namespace pyshim::cli {

struct InstallOptions {
  std::string venv;
  std::string python;
  std::vector<std::string> preload;
  std::vector<std::string> library_path;
  std::vector<std::string> library_path_append;
  std::vector<std::string> layers;  // venvs whose share/venv/dynlib this one searches
  std::vector<std::string> env;
  std::vector<std::string> startup;      // [python] startup hooks
  std::vector<std::string> python_path;  // [python] path
  bool copy = false;     // accepted for 0.1 scripts: copying is the default
  bool symlink = false;  // the shared layout
  bool force = false;
  bool reset = false;  // start from an empty config, not the current pyshim.toml
  bool quiet = false;  // no progress lines on the terminal (progress.hpp)
  bool launch_check_follows = false;  // init launches the venv itself: no "check it with doctor"
};

inline constexpr const char* kLauncherBinaryName = "pyshim-launcher";
// Where a shim venv keeps its base launcher: two levels below the root, so
// CPython finds no pyvenv.cfg for it.
inline constexpr const char* kBaseLauncherDir = ".pyshim/base/bin";

// The options install and init share (everything but VENV/DIR and --python).
void add_install_options(CLI::App& sub, InstallOptions& options);

int run_install(const InstallOptions& options);

// PyPy, known by the file name of the interpreter or of its real path (it
// needs a launcher copy, never a link, and has no base launcher).
bool is_pypy(const std::string& interpreter);

// What install would refuse in these options (presets, paths, layers, [env],
// hooks), checked without a venv: init runs it before creating one.
Status check_install_options(const InstallOptions& options, const std::string& python);

}  // namespace pyshim::cli
