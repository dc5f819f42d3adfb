// Shared by `pyshim install` and `pyshim init`.
#pragma once

#include <string>
#include <vector>

#include "pyshim/error.hpp"
#include "pyshim/stamp.hpp"
#include "pyshim/venv.hpp"

namespace CLI {
class App;
}

namespace pyshim::cli {

// The options that say what goes into a pyshim.toml, as every command that
// writes a config takes them (add_config_options).
struct ConfigOptions {
  std::vector<std::string> preload;
  std::vector<std::string> library_path;
  std::vector<std::string> library_path_append;
  std::vector<std::string> env;          // NAME=VALUE: [env] NAME = "VALUE"
  std::vector<std::string> env_prepend;  // NAME=VALUE: [env] NAME = { prepend = "VALUE" }
  std::vector<std::string> env_append;   // NAME=VALUE: [env] NAME = { append = "VALUE" }
  std::vector<std::string> startup;      // [python] startup hooks
  std::vector<std::string> python_path;  // [python] path
};

struct InstallOptions : ConfigOptions {
  std::string venv;
  std::string python;
  std::vector<std::string> layers;  // venvs whose share/venv/dynlib this one searches
  bool copy = false;                // accepted for 0.1 scripts: copying is the default
  bool symlink = false;             // the shared layout
  bool force = false;
  bool reset = false;                 // start from an empty config, not the current pyshim.toml
  bool quiet = false;                 // no progress lines on the terminal (progress.hpp)
  bool dry_run = false;               // print what would change, change nothing (venv_dir.hpp)
  bool launch_check_follows = false;  // init launches the venv itself: no "check it with doctor"
};

inline constexpr const char* kLauncherBinaryName = "pyshim-launcher";
// Where a shim venv keeps its base launcher: two levels below the root, so
// CPython finds no pyvenv.cfg for it.
inline constexpr const char* kBaseLauncherDir = ".pyshim/base/bin";

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
// hooks), checked without a venv: init runs it before creating one.
Status check_install_options(const InstallOptions& options, const std::string& python);

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
