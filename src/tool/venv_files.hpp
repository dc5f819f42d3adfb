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

// Whether the venv's bin/<main> is a relative link to its base launcher
// (../.pyshim/base/bin/<main>) rather than a launcher copy of its own, so
// that no .pth has to set sys._base_executable (README "Why a `.pth`, and
// when"): true when pyvenv.cfg names 3.11 or later (CPython's getpath then
// sets sys._base_executable to realpath(sys.executable)); install asks it
// for self-contained CPython venvs only. pyvenv.cfg is read without
// following a link; a missing or unreadable version keeps the .pth.
bool links_to_base_launcher(const Dir& root);

// The target of bin/<main> in that layout.
std::string base_launcher_link(const std::string& main);

// That layout's bin/: <main> a link to base_launcher_link(main), the other
// names links to <main>. Returns whether anything changed.
bool link_to_base_launcher(const Dir& bin, const std::vector<std::string>& names,
                           const std::string& main);

// The self-contained layout's base launcher looks for the restore library
// first at its own ../lib/pyshim/: VENV/.pyshim/base/lib is a relative link
// to the venv's lib/ (../../lib), so that first look finds the venv's copy
// and launches through the base launcher (bin/python of a 3.11+ venv,
// derived venvs) cost the hot path's four stats, as a launcher copy in bin/
// does. Removed when with is false (the --symlink layout: its launchers take
// the system's restore library). Returns whether anything changed.
bool sync_base_lib_link(const Dir& root, bool with);

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
