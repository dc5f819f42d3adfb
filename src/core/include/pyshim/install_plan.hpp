// The pure middle of `pyshim install`, `uninstall` and `init`: gather (the
// tool reads the venv, runs gcc and ldconfig for presets, finds the launcher)
// -> plan (here: facts and options in, the config text, the stamp and an
// ordered list of file actions out; no disk, no processes) -> apply (the
// tool, one Dir mutation per action, src/tool/install.cpp). Unit-tested on
// facts without a disk (tests/unit/install_plan_test.cpp).
//
// The order of the actions is the crash-safety argument of manifest.hpp:
// the originals are backed up and the manifest written before anything in
// bin/ is replaced; the copies' restore library goes last (a launcher copy
// started before its replacement still finds it); uninstall removes the
// manifest last.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pyshim/config.hpp"
#include "pyshim/error.hpp"
#include "pyshim/manifest.hpp"
#include "pyshim/stamp.hpp"
#include "pyshim/venv.hpp"

namespace pyshim {

// Where a shim venv keeps its base launcher: two levels below the root, so
// CPython finds no pyvenv.cfg for it.
inline constexpr const char* kBaseLauncherDir = ".pyshim/base/bin";
// Startup hooks' Python side in each site-packages (src/python/_pyshim_startup.py).
inline constexpr const char* kStartupPth = "pyshim-startup.pth";
inline constexpr const char* kStartupModule = "_pyshim_startup.py";
// The .pth that points sys._base_executable at the base launcher.
inline constexpr const char* kBaseExecutablePth = "pyshim-base-executable.pth";

// The options that say what goes into a pyshim.toml, as every command that
// writes a config takes them.
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

// One --preload as gather resolved it (a path, or a soname / preset found
// with the loader cache or gcc): resolved once, even when init checks the
// options before it creates the venv.
struct ResolvedPreload {
  std::string spec;  // as given
  std::string path;  // absolute
  std::string note;  // how a preset was found (a comment in pyshim.toml), or empty
};

struct InstallOptions : ConfigOptions {
  std::string venv;
  std::string python;
  std::vector<std::string> layers;  // venvs whose share/venv/dynlib this one searches
  bool copy = false;                // accepted for 0.1 scripts: copying is the default
  bool symlink = false;             // the shared layout
  bool force = false;
  bool reset = false;                 // start from an empty config, not the current pyshim.toml
  bool quiet = false;                 // no progress lines on the terminal
  bool dry_run = false;               // print what would change, change nothing
  bool launch_check_follows = false;  // init launches the venv itself: no "check it with doctor"
  // Set by init's early check: the preloads resolved there, so that the
  // install after `python -m venv` does not run gcc and ldconfig again.
  std::optional<std::vector<ResolvedPreload>> resolved_preload;
};

// What the config half of the plan needs from the world.
struct ConfigFacts {
  std::string cwd;                       // relative option paths are made absolute against it
  std::vector<ResolvedPreload> preload;  // one per options.preload, in order
  std::vector<std::string> layer_dirs;   // --layer: this venv's dynlib folder, then each layer's
  std::optional<Config> current;         // the pyshim.toml the options change, when it parses
};

// Refusals that need nothing but the options (mixed positions), checked
// before gather reads the layers.
Status check_config_options(const InstallOptions& options);

// The pyshim.toml install writes: the same Config parse_config reads (so a
// key is one field, written by render_config from the key table), and the
// comment lines that head the file.
struct ConfigSpec {
  Config config;
  std::vector<std::string> notes;  // e.g. which preset a path came from
};

// The pyshim.toml the options make: presets' notes, sanitizers first, the
// current file's settings kept where no option names them (options.reset
// starts from nothing; [dynlib] exclude, which has no option, is always
// kept), [env] merged, ASAN_OPTIONS, refusals.
Result<ConfigSpec> plan_config(const InstallOptions& options, const std::string& interpreter,
                               const ConfigFacts& facts);

// One change to a venv, relative to its root. Applied in order by one Dir
// mutation each (or a process, for kCompile).
struct FileAction {
  enum class Kind {
    kWrite,          // dir/name := text, mode (atomic; nothing when already so)
    kWriteLauncher,  // dir/name := the launcher stamped with the plan's stamp, 0755
    kStampIdentity,  // stat dir/name (the config just written) into the stamp: the late fact
    kSymlink,        // dir/name := a symlink to text
    kLink,           // dir/name := a hard link to from/name
    kRemove,         // dir/name removed (a folder with everything in it)
    kSync,           // fsync dir: the links made in it are durable
    kCompile,        // byte-compile dir/name with the interpreter text (as root only when safe)
    kSyncDynlib,     // bring share/venv/dynlib up to date (pyshim dynlib's own plan)
  };
  Kind kind = Kind::kWrite;
  std::string dir;   // relative to the venv root; "" is the root
  std::string name;  // one entry of dir
  std::string text;  // kWrite: the bytes; kSymlink: the target; kCompile: the interpreter
  std::string from;  // kLink: the folder of the source entry (same name)
  unsigned mode = 0;
  bool create = false;  // dir is created (0755) when missing; else the action needs it
  std::string why;      // "back up", "restore": said in the plan line
  bool operator==(const FileAction&) const = default;
};

// "write bin/python3.11: the stamped launcher (mode 0755)": a plan line
// (paths escaped).
std::string describe(const FileAction& action);

// The site-packages folders of a venv (lib/python3.X/site-packages, real
// folders only), with what install and uninstall need to know of them.
struct SiteDir {
  std::string dir;                 // relative to the venv root
  bool module_current = false;     // _pyshim_startup.py holds exactly the module (0644)
  bool has_bytecode = false;       // __pycache__/_pyshim_startup.* exists
  bool cache_is_dir = false;       // __pycache__ is a real folder
  std::vector<std::string> cache;  // its entries
};

struct InstallFacts {
  std::string venv;         // absolute
  std::string interpreter;  // resolved and checked (launchable, not a launcher)
  bool pypy = false;
  bool installed = false;              // the venv has a manifest
  std::string configured_interpreter;  // from its pyshim.toml, when installed
  std::string pyvenv_cfg;              // its text
  std::vector<BinEntry> bin;           // bin/, lstat'ed
  std::vector<SiteDir> site;
  ConfigFacts config;
  std::string launcher;         // the pyshim-launcher binary
  std::string launcher_image;   // its bytes
  std::string restore_library;  // the system's restore library
  std::string restore_image;    // its bytes (copied into lib/pyshim for --copy)
  std::string startup_module;   // the hook module's text
  // .pyshim/base/lib exists and is not a link (a folder planted or left
  // there): replaced by install's link (links_to_base_launcher).
  bool base_lib_is_folder = false;
};

struct InstallPlan {
  ConfigSpec spec;
  std::string config_text;
  // Everything but stamp.identity: the identity of the pyshim.toml this
  // plan writes exists only once it is written, so apply fills it at the
  // kStampIdentity action, before the first kWriteLauncher.
  Stamp stamp;
  std::string stamp_version;
  bool copy = true;
  std::vector<std::string> names;  // bin/'s interpreters, "python" first
  std::string main_name;           // the one that is a file; the others link to it
  std::string base_relative;       // the base launcher, relative to the venv ("": none, PyPy)
  bool linked = false;             // bin/<main> links to the base launcher: no .pth (3.11+)
  std::vector<FileAction> actions;
};

// Whether a self-contained CPython venv's bin/<main> is a relative link to
// its base launcher (../.pyshim/base/bin/<main>) rather than a launcher copy
// of its own, so that no .pth has to set sys._base_executable (README "Why a
// `.pth`, and when"): true when pyvenv.cfg names 3.11 or later (CPython's
// getpath then sets sys._base_executable to realpath(sys.executable)). A
// missing or unreadable version keeps the .pth. The base launcher then
// finds the venv's restore library through .pyshim/base/lib, a relative link
// to the venv's lib/ (../../lib): its first look, so launches through it
// cost the hot path's four stats, as a launcher copy in bin/ does.
bool links_to_base_launcher(std::string_view pyvenv_cfg);

Result<InstallPlan> plan_install(const InstallFacts& facts, const InstallOptions& options);

// What install prints once it changed the venv: the interpreter, config,
// preloads, library folders, launchers and base launcher.
std::string install_summary(const InstallPlan& plan, const InstallFacts& facts);

// The launcher image with the stamp (its identity filled) written over its
// stamp section: what every kWriteLauncher writes.
Result<std::string> stamped_launcher(const InstallPlan& plan, const std::string& launcher,
                                     const std::string& launcher_image);

// bin/'s interpreter entries (links and files), "python" first.
std::vector<std::string> interpreter_names(const std::vector<BinEntry>& bin);
// python3.X from pyvenv.cfg's version when bin/ has it, else the entry that
// is a file or links outside bin/ (the interpreter itself), else the first.
std::string main_launcher_name(const std::string& pyvenv_cfg, const std::vector<BinEntry>& bin,
                               const std::vector<std::string>& names);

// init: create the venv with the interpreter, then install into it.
struct InitPlan {
  std::vector<std::string> create;  // `PY -m venv [--without-pip] DIR`
  // The install that follows: the interpreter read back from the new
  // venv's pyvenv.cfg (not the possibly relative --python), the preloads as
  // init's check resolved them, no "check it with doctor" (init starts the
  // venv itself).
  InstallOptions install;
};
InitPlan plan_init(const InstallOptions& options, bool with_pip,
                   std::vector<ResolvedPreload> resolved_preload);

struct UninstallFacts {
  bool has_state_dir = false;  // .pyshim/ exists
  bool installed = false;      // .pyshim/manifest.toml exists
  Manifest manifest;           // parsed, when installed
  std::vector<BinEntry> bin;
  std::vector<BinEntry> backup;  // .pyshim/backup/
  std::vector<SiteDir> site;
};

// installed: put bin/ back as the manifest says (checked whole before any
// step), then remove pyshim.toml, lib/pyshim, the site-packages files and
// their bytecode, the base launcher and backups, the manifest last, then
// .pyshim/. Not installed with .pyshim/ left (an interrupted install or
// uninstall): remove .pyshim/. Neither: nothing.
Result<std::vector<FileAction>> plan_uninstall(const UninstallFacts& facts);

}  // namespace pyshim
