// Shared by `pyshim install` and `pyshim init`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "dynlib_sync.hpp"
#include "pyshim/error.hpp"
#include "pyshim/install_plan.hpp"  // ConfigOptions, InstallOptions, the plan
#include "pyshim/stamp.hpp"
#include "pyshim/venv.hpp"

namespace CLI {
class App;
}

namespace pyshim::cli {

inline constexpr const char* kLauncherBinaryName = "pyshim-launcher";

// --preload, --library-path(-append), --env(-prepend/-append), --startup,
// --python-path: what goes into pyshim.toml.
void add_config_options(CLI::App& sub, ConfigOptions& options);

// The options install and init share (everything but VENV/DIR and --python):
// add_config_options, then --layer and the install flags.
void add_install_options(CLI::App& sub, InstallOptions& options);

int run_install(const InstallOptions& options);

// PyPy, known by the file name of the interpreter or of its real path (it
// needs a launcher copy, never a link, and has no base launcher).
bool is_pypy(const std::string& interpreter);

// What install would refuse in these options (presets, paths, layers, [env],
// hooks), checked without a venv: init runs it before creating one, and
// hands the preloads it resolved to the install (options.resolved_preload).
Result<std::vector<ResolvedPreload>> check_install_options(const InstallOptions& options,
                                                           const std::string& python);

}  // namespace pyshim::cli

namespace pyshim {
class Dir;  // pyshim/dir.hpp (the OS layer)
}  // namespace pyshim

namespace pyshim::cli {

// Gather: lib/*/site-packages of the venv at root (real folders:
// lib64-style links are not followed), each with the state of the hook
// module (module: its text) and its __pycache__ entries.
std::vector<SiteDir> gather_site_dirs(const Dir& root, std::string_view module);

// Apply: each action of a plan (install_plan.hpp) by one Dir mutation, in
// order, the whole plan logged first (-v). For install, plan is the plan
// whose stamp the kStampIdentity action completes (the identity of the
// pyshim.toml just written, the one fact known only after a write) and
// whose launchers kWriteLauncher writes; nullptr for uninstall. Returns
// whether anything changed (in a dry run: would change).
struct InstallApply {
  InstallPlan& plan;
  const InstallFacts& facts;
  std::string config_before;  // the pyshim.toml replaced (its diff is printed)
  bool quiet = false;
  std::optional<DynlibSync> dynlib;  // out: what kSyncDynlib did
};
Result<bool> apply_plan(const Dir& root, const std::vector<FileAction>& actions,
                        InstallApply* install);

// Install's steps, shared with `pyshim launcher` (launcher_cmd.cpp).
// --python: a path, or a name searched on PATH; absolute, executable.
Result<std::string> resolve_interpreter(const std::string& python);
// The options resolved into a pyshim.toml (presets, ASAN_OPTIONS, refusals),
// changing only what they name in the file at `config` (an absolute path)
// when it exists; options.reset starts from nothing.
Result<ConfigSpec> build_config_spec(const InstallOptions& options, const std::string& interpreter,
                                     const std::string& config);
// The pyshim-launcher binary this tool installs.
Result<std::string> launcher_binary();
// That binary's image with the stamp written into it.
Result<std::string> stamp_launcher_image(const std::string& launcher, const Stamp& stamp);

}  // namespace pyshim::cli
