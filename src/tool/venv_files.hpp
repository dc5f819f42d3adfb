// The file-system side of install/uninstall (gather): what a venv is made
// from, which of its bin/ entries are interpreters, whether it is installed.
// What they change is planned in core (pyshim/install_plan.hpp).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "pyshim/dir.hpp"
#include "pyshim/error.hpp"
#include "pyshim/manifest.hpp"

namespace pyshim::cli {

inline constexpr const char* kStateDir = ".pyshim";
inline constexpr const char* kManifestName = "manifest.toml";

struct VenvState {
  bool installed = false;              // .pyshim/manifest.toml exists
  std::string configured_interpreter;  // from pyshim.toml, when installed
};

Result<VenvState> read_venv_state(const Dir& root);

// The real interpreter the venv was made from: pyvenv.cfg's `executable`,
// else the target of bin/python's links outside bin/, else `home` + version.
// A pyshim launcher found on the way (a venv made from a shim venv) is
// replaced by the interpreter of its own config.
Result<std::string> detect_interpreter(const std::filesystem::path& venv);

// True if path is (or links to) a pyshim binary of any build.
bool is_pyshim_binary(const std::string& path);

// bin/ entries named python, python3, python3.X, pypy, pypy3, ... ("python" first).
std::vector<std::string> interpreter_names(const Dir& root);

// What bin/ (or another folder) holds, lstat'ed, never followed.
std::vector<BinEntry> gather_entries(const Dir& dir);

}  // namespace pyshim::cli
