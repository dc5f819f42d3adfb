// The file-system side of install/uninstall: what a venv is made from, which
// of its bin/ entries are interpreters, and the manifest of what install
// replaced.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "pyshim/error.hpp"
#include "pyshim/manifest.hpp"
#include "venv_dir.hpp"

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

// Install's first step on a venv without a manifest: back up every original
// (hard links in .pyshim/backup/) and write the manifest, before anything
// in bin/ is replaced.
Status record_manifest(const Dir& root, bool copy);

// Uninstall: puts back what record_manifest recorded, then removes
// everything pyshim added, the manifest last.
Status restore_manifest(const Dir& root);

}  // namespace pyshim::cli
