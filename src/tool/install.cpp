// pyshim install VENV: turn an existing venv into a shim venv.
//
// What it replaced is recorded in VENV/.pyshim/manifest.toml (symlink
// targets; regular files are hard-linked into VENV/.pyshim/backup/, never
// moved) so that
// `pyshim uninstall` can put back exactly that. The manifest is written once,
// by the first install: later installs only rewrite pyshim.toml and the links.
#include "install.hpp"
#include "libc_check.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <system_error>
#include <unordered_set>

#include <fmt/format.h>
#include <toml++/toml.h>
#include <CLI/CLI.hpp>

#include "dynlib_sync.hpp"
#include "extensions.hpp"
#include "hooks.hpp"
#include "log.hpp"
#include "progress.hpp"
#include "pyshim/cli.hpp"
#include "pyshim/dir.hpp"
#include "pyshim/dynlib.hpp"
#include "pyshim/elf.hpp"
#include "pyshim/launch.hpp"
#include "pyshim/os.hpp"
#include "pyshim/process.hpp"
#include "pyshim/stamp.hpp"
#include "pyshim/venv.hpp"
#include "pyshim_startup_py.hpp"
#include "venv_files.hpp"

#include "files.hpp"

namespace fs = std::filesystem;

namespace pyshim::cli {
namespace {

Error usage_error(std::string message, std::string hint) {
  return Error{ErrorKind::kUsage, std::move(message), {}, std::move(hint)};
}

// --python: a path, or a name searched on PATH.
Result<std::string> resolve_python(const std::string& python) {
  std::string path = python;
  if (python.find('/') == std::string::npos) {
    auto found = search_path(python, std::getenv("PATH"));
    if (!found) {
      return usage_error(fmt::format("--python {}: not found on PATH", python),
                         "give the interpreter's path, e.g. --python /usr/bin/python3.11");
    }
    path = std::move(*found);
  }
  path = absolute_path(path);
  if (!is_executable_file(path)) {
    return usage_error(fmt::format("--python {}: not an executable file", python),
                       "give the path of a Python interpreter");
  }
  return path;
}

// The tag `ldconfig -p` prints for this machine's libraries (pyshim is built
// for the machine it installs venvs on).
#if defined(__x86_64__)
constexpr const char* kLdconfigAbiTag = "x86-64";
#elif defined(__aarch64__)
constexpr const char* kLdconfigAbiTag = "AArch64";
#else
constexpr const char* kLdconfigAbiTag = "";
#endif

// libX.so.N: the name the loader and packages keep stable across upgrades.
bool is_soname_form(const std::string& name) {
  std::size_t so = name.rfind(".so.");
  if (!name.starts_with("lib") || so == std::string::npos || so + 4 == name.size()) return false;
  return std::all_of(name.begin() + static_cast<std::ptrdiff_t>(so + 4), name.end(),
                     [](unsigned char c) { return std::isdigit(c) != 0; });
}

// Follows symlinks only until the soname link (libasan.so -> libasan.so.8,
// not on to libasan.so.8.0.0, which the next package upgrade renames), with
// the directory part canonical (/lib -> /usr/lib on merged-/usr systems).
std::string stable_library_path(std::string path) {
  for (int hop = 0; hop < 16; ++hop) {
    fs::path p(path);
    std::string dir = real_path(p.parent_path().string());
    if (!dir.empty()) p = fs::path(dir) / p.filename();
    auto link = lstat_path(p.string());
    if (is_soname_form(p.filename().string()) || !link || !S_ISLNK(link->mode)) {
      return p.string();
    }
    fs::path target = read_link(p.string()).value_or("");
    path = (target.is_absolute() ? target : p.parent_path() / target).string();
  }
  return real_path(path);
}

// Whether path exists (links followed), as fs::exists says: an error other
// than "not there" (EACCES, ELOOP) is thrown and reported, not taken for a
// missing file.
bool exists(const std::string& path) {
  if (stat_path(path)) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  throw fs::filesystem_error("cannot stat", path, std::error_code(errno, std::generic_category()));
}

// A soname, a path, or a preset name, resolved now to an absolute path so
// that the launcher never searches at run time.
Result<ResolvedPreload> resolve_preload(const std::string& spec) {
  if (spec.find('/') != std::string::npos) {
    std::string path = absolute_path(spec);
    if (!exists(path)) {
      return usage_error(fmt::format("--preload {}: no such file", spec),
                         "give an existing library path, a soname or a preset name");
    }
    return ResolvedPreload{spec, path, {}};
  }
  std::string note;
  const Preset* preset = find_preset(spec);
  std::string library = preset != nullptr ? std::string(preset->library) : spec;
  std::string package = preset != nullptr ? std::string(preset->package) : std::string();
  std::string path;
  if (preset != nullptr && preset->from_toolchain) {
    auto out = run_process({"gcc", fmt::format("-print-file-name={}", library)},
                           {.capture_output = true, .quiet = true});
    std::string answer = out ? out->output.substr(0, out->output.find('\n')) : "";
    // gcc echoes the bare name back when it has no such file.
    if (answer.find('/') != std::string::npos && exists(answer)) {
      path = stable_library_path(answer);
    }
    if (!path.empty()) {
      note = fmt::format("preload '{}': `gcc -print-file-name={}` -> {}", spec, library, path);
    }
  } else {
    auto out = run_process({"/sbin/ldconfig", "-p"}, {.capture_output = true, .quiet = true});
    if (out && out->status == 0) {
      auto found = find_in_ldconfig(out->output, library, kLdconfigAbiTag);
      if (found && exists(*found)) path = stable_library_path(*found);
    }
    if (!path.empty() && preset != nullptr) {
      note = fmt::format("preload '{}': {} from the loader cache -> {}", spec, library, path);
    }
  }
  if (path.empty()) {
    std::string names;
    std::vector<std::string_view> preset_names;
    for (const Preset& p : presets()) {
      names += fmt::format("{}{}", names.empty() ? "" : ", ", p.name);
      preset_names.push_back(p.name);
    }
    std::string_view close = preset == nullptr ? nearest(spec, preset_names) : "";
    return usage_error(
        fmt::format("--preload {}: cannot find {}", spec, library),
        !close.empty() ? fmt::format("did you mean '{}'? (presets: {})", close, names)
        : package.empty()
            ? fmt::format("install the library (it must be in `ldconfig -p`), give its path, or "
                          "use a preset: {}",
                          names)
            : fmt::format("on Debian: apt-get install {}", package));
  }
  return ResolvedPreload{spec, path, note};
}

fs::path normal_dir(const std::string& path) {
  fs::path out = fs::path(absolute_path(path)).lexically_normal();
  if (out.has_parent_path() && out.filename().empty()) out = out.parent_path();
  return out;
}

// The library folders --layer brings: this venv's own dynlib folder (what
// the layers above it search), then each layer's, each followed by that
// layer's own library_path when it is a shim venv, so that C on B finds what
// B's libraries need from A without naming A.
Result<std::vector<std::string>> layer_library_path(const std::string& venv_arg,
                                                    const std::vector<std::string>& layers) {
  fs::path venv = normal_dir(venv_arg);
  std::vector<std::string> dirs = {(venv / kDynlibDir).string()};
  auto add = [&dirs](std::string dir) {
    if (std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) dirs.push_back(std::move(dir));
  };
  for (const std::string& layer_arg : layers) {
    fs::path layer = normal_dir(layer_arg);
    if (layer == venv) {
      return usage_error(fmt::format("--layer {}: a venv cannot be layered on itself", layer_arg),
                         "name the venvs below this one");
    }
    if (auto cfg = stat_path((layer / "pyvenv.cfg").string()); !cfg || !S_ISREG(cfg->mode)) {
      return usage_error(
          fmt::format("--layer {}: not a virtual environment (no pyvenv.cfg)", layer_arg),
          "give the folder of a venv whose shared libraries this one needs");
    }
    fs::path dynlib = layer / kDynlibDir;
    if (auto folder = stat_path(dynlib.string()); !folder || !S_ISDIR(folder->mode)) {
      return usage_error(fmt::format("--layer {}: {} does not exist", layer_arg, dynlib.string()),
                         fmt::format("collect that venv's shared libraries first: pyshim dynlib {}",
                                     layer.string()));
    }
    add(dynlib.string());
    fs::path config_path = layer / kConfigName;
    if (stat_path(config_path.string())) {
      auto config = parse_config(read_text(config_path), config_path.string());
      if (!config) {
        Error error = config.take_error();
        error.kind = ErrorKind::kUsage;
        error.context.push_back(fmt::format("while reading --layer {}", layer_arg));
        return error;
      }
      for (const Setting& dir : config->library_path) add(dir.value);
    }
  }
  return dirs;
}

// pyshim.toml holds TOML strings, which are UTF-8: a value that is not
// would be written as a different path. Refused, naming the option.
Status check_utf8(const InstallOptions& o) {
  const std::pair<const char*, const std::vector<std::string>*> lists[] = {
      {"--preload", &o.preload},
      {"--library-path", &o.library_path},
      {"--library-path-append", &o.library_path_append},
      {"--layer", &o.layers},
      {"--env", &o.env},
      {"--env-prepend", &o.env_prepend},
      {"--env-append", &o.env_append},
      {"--startup", &o.startup},
      {"--python-path", &o.python_path}};
  for (const auto& [option, list] : lists) {
    for (const std::string& value : *list) {
      if (!is_valid_utf8(value)) {
        return usage_error(fmt::format("{} {}: not valid UTF-8", option, printable(value, 200)),
                           "pyshim.toml can only hold UTF-8 text; rename the path or give a "
                           "symlink with a UTF-8 name");
      }
    }
  }
  if (!is_valid_utf8(o.python) || !is_valid_utf8(o.venv)) {
    return usage_error("the venv or --python path is not valid UTF-8",
                       "pyshim.toml can only hold UTF-8 text; use a symlink with a UTF-8 name");
  }
  return Ok{};
}

// Gather for the config half of the plan: the preloads resolved (gcc,
// ldconfig, the file system; taken from init's check when it made them),
// the layers' folders and configs, and the current pyshim.toml at config
// (relative: in the venv; `pyshim launcher --config` gives an absolute
// path). The refusals that need only the options come first.
Result<ConfigFacts> gather_config_facts(const InstallOptions& options, const fs::path& venv,
                                        const fs::path& config = kConfigName) {
  if (auto valid = check_utf8(options); !valid) return valid.take_error();
  ConfigFacts facts;
  facts.cwd = current_folder();
  if (options.resolved_preload) {
    facts.preload = *options.resolved_preload;
  } else {
    for (const std::string& item : options.preload) {
      auto resolved = resolve_preload(item);
      if (!resolved) return resolved.take_error();
      facts.preload.push_back(std::move(*resolved));
    }
  }
  if (auto checked = check_config_options(options); !checked) return checked.take_error();
  if (!options.layers.empty()) {
    auto layered = layer_library_path(venv.string(), options.layers);
    if (!layered) return layered.take_error();
    facts.layer_dirs = std::move(*layered);
  }
  if (stat_path((venv / config).string())) {
    std::string path = (venv / config).string();
    // Not through a link: in a venv someone else can write, it could point
    // at any file root can read.
    if (auto parsed = parse_config(read_text(path, false), path)) {
      facts.current = std::move(*parsed);
    }
  }
  return facts;
}

Result<ConfigSpec> build_spec(const InstallOptions& options, const std::string& interpreter,
                              const fs::path& venv, const fs::path& config = kConfigName) {
  auto facts = gather_config_facts(options, venv, config);
  if (!facts) return facts.take_error();
  return plan_config(options, interpreter, *facts);
}

// The launcher binary this tool installs: PREFIX/lib/pyshim/pyshim-launcher
// for an installed pyshim (PREFIX/bin/pyshim), beside the tool in the build
// tree.
Result<std::string> find_launcher_binary() {
  std::string tool = real_path("/proc/self/exe");
  fs::path bin = fs::path(tool).parent_path();
  for (const fs::path& candidate :
       {bin.parent_path() / "lib/pyshim" / kLauncherBinaryName, bin / kLauncherBinaryName}) {
    if (is_executable_file(candidate.string())) return candidate.string();
  }
  return Error{
      ErrorKind::kUsage,
      fmt::format("{} not found", kLauncherBinaryName),
      {fmt::format("searched: {}/lib/pyshim/ and {}/", bin.parent_path().string(), bin.string())},
      "reinstall pyshim"};
}

// What a re-install changed in pyshim.toml: its settings lines (comments
// aside) that went away and that came. The old file is anyone's who can
// write the venv: each line is echoed escaped (no terminal control
// sequence reaches root's terminal) and cut, and only so many lines and
// bytes in all, saying how many were left out.
constexpr std::size_t kDiffMaxLines = 50;
constexpr std::size_t kDiffMaxBytes = 8192;
constexpr std::size_t kDiffMaxLineBytes = 300;

void print_config_diff(std::string_view before, std::string_view after) {
  auto lines = [](std::string_view text) {
    std::vector<std::string_view> out;
    while (!text.empty()) {
      std::size_t end = text.find('\n');
      std::string_view line = text.substr(0, end);
      if (!line.empty() && !line.starts_with('#')) out.push_back(line);
      if (end == std::string_view::npos) break;
      text.remove_prefix(end + 1);
    }
    return out;
  };
  std::vector<std::string_view> old_lines = lines(before);
  std::vector<std::string_view> new_lines = lines(after);
  auto missing = [](const std::vector<std::string_view>& from,
                    const std::vector<std::string_view>& in) {
    std::unordered_set<std::string_view> present(in.begin(), in.end());
    std::vector<std::string_view> out;
    for (std::string_view line : from) {
      if (!present.contains(line)) out.push_back(line);
    }
    return out;
  };
  std::vector<std::string_view> removed = missing(old_lines, new_lines);
  std::vector<std::string_view> added = missing(new_lines, old_lines);
  if (removed.empty() && added.empty()) return;
  std::cout << "pyshim.toml changed:\n";
  for (const auto& [sign, list] : {std::pair{'-', &removed}, std::pair{'+', &added}}) {
    std::size_t shown = 0;
    std::size_t bytes = 0;
    for (std::string_view line : *list) {
      if (shown == kDiffMaxLines || bytes >= kDiffMaxBytes) break;
      std::string text = printable(line, kDiffMaxLineBytes);
      bytes += text.size();
      ++shown;
      std::cout << "  " << sign << " " << text << "\n";
    }
    if (shown < list->size()) {
      std::size_t left = list->size() - shown;
      std::cout << fmt::format("  {} ... and {} more line{} {}\n", sign, left, left == 1 ? "" : "s",
                               sign == '-' ? "removed" : "added");
    }
  }
}

// check_interpreter as the venv's launcher would run it (thorough: a
// launcher of any build is recognised, as doctor does), with install's exit
// code and hint.
Status launchable_interpreter(const std::string& interpreter, const std::string& launcher,
                              const fs::path& venv) {
  RealFileSystem files;
  LaunchRequest request;
  request.invoked_path = (venv / "bin" / "python").string();
  request.self_exe = real_path(launcher);
  request.euid = effective_uid();
  request.thorough = true;
  Config config;
  config.file = (venv / kConfigName).string();
  config.dir = venv.string();
  config.interpreter = Setting{interpreter, {}};
  auto checked = check_interpreter(files, request, config);
  if (checked) return Ok{};
  Error error = checked.take_error();
  error.kind = ErrorKind::kUsage;
  error.context.clear();  // the config it names is not written yet
  error.hint = "give the real Python with --python (and --force to switch a shim venv to it)";
  return error;
}

}  // namespace

Result<std::vector<ResolvedPreload>> check_install_options(const InstallOptions& options,
                                                           const std::string& python) {
  auto interpreter = resolve_python(python);
  if (!interpreter) return interpreter.take_error();
  fs::path venv = absolute_path(options.venv);
  auto facts = gather_config_facts(options, venv);
  if (!facts) return facts.take_error();
  auto spec = plan_config(options, *interpreter, *facts);
  if (!spec) return spec.take_error();
  return std::move(facts->preload);
}

void add_config_options(CLI::App& sub, ConfigOptions& o) {
  sub.add_option("--preload", o.preload,
                 "Library to preload: a path, a soname (resolved with the loader cache) or a "
                 "preset: asan, ubsan, tsan, jemalloc, tcmalloc, mimalloc. Repeatable; "
                 "sanitizers go first.");
  sub.add_option("--library-path", o.library_path,
                 "Folder searched for shared libraries, before the caller's LD_LIBRARY_PATH. "
                 "Repeatable.");
  sub.add_option("--library-path-append", o.library_path_append,
                 "Folder searched after the caller's LD_LIBRARY_PATH. Repeatable.");
  sub.add_option("--env", o.env,
                 "NAME=VALUE set for the interpreter and its children. "
                 "Repeatable.");
  sub.add_option("--env-prepend", o.env_prepend,
                 "NAME=VALUE: NAME gets VALUE:<the caller's value> (VALUE alone when the "
                 "caller has none; nothing added when it already starts with VALUE). "
                 "Repeatable.");
  sub.add_option("--env-append", o.env_append,
                 "NAME=VALUE: NAME gets <the caller's value>:VALUE (VALUE alone when the "
                 "caller has none; nothing added when it already ends with VALUE). "
                 "Repeatable.");
  sub.add_option("--startup", o.startup,
                 "package.module:function called in every interpreter started through the "
                 "launcher, before the main module ([python] startup). Repeatable, in order.");
  sub.add_option("--python-path", o.python_path,
                 "Folder put on sys.path before the startup hooks are imported ([python] path). "
                 "Repeatable.");
}

void add_install_options(CLI::App& sub, InstallOptions& o) {
  add_config_options(sub, o);
  sub.add_option("--layer", o.layers,
                 "A venv below this one: its share/venv/dynlib (made by `pyshim dynlib`) and "
                 "its own library folders are searched after the caller's LD_LIBRARY_PATH. "
                 "Repeatable, top layer first; this venv's own share/venv/dynlib comes first "
                 "and is brought up to date.");
  sub.add_flag("--copy", o.copy,
               "Copy the launcher and restore library into the venv (the default): the venv "
               "keeps working if pyshim is removed or upgraded on the system.");
  sub.add_flag("--symlink", o.symlink,
               "Link the venv's interpreters to the shared PREFIX/lib/pyshim/pyshim-launcher "
               "instead (one binary to upgrade; see the README for what this loses).")
      ->excludes("--copy");
  sub.add_flag("--reset", o.reset,
               "Start pyshim.toml from an empty config instead of changing only what the "
               "options name.");
  sub.add_flag("--force", o.force,
               "Switch a venv that is already a shim venv to a different interpreter.");
  sub.add_flag("-q,--quiet", o.quiet,
               "No progress lines on the terminal (there are none when stderr is not a "
               "terminal); the result is printed either way.");
}

bool is_pypy(const std::string& interpreter) {
  return basename(interpreter).starts_with("pypy") ||
         basename(real_path(interpreter)).starts_with("pypy");
}

std::vector<SiteDir> gather_site_dirs(const Dir& root, std::string_view module) {
  std::vector<SiteDir> out;
  auto lib = root.sub("lib", false);
  if (!lib) return out;
  for (const std::string& name : lib->names()) {
    if (!name.starts_with("python") && !name.starts_with("pypy")) continue;
    auto st = lib->stat(name);
    if (!st || !S_ISDIR(st->st_mode)) continue;
    auto dir = lib->sub(name, false);
    auto sp_stat = dir ? dir->stat("site-packages") : std::nullopt;
    if (!sp_stat || !S_ISDIR(sp_stat->st_mode)) continue;
    Dir sp = *dir->sub("site-packages", false);
    SiteDir site;
    site.dir = fmt::format("lib/{}/site-packages", name);
    if (auto m = sp.stat(kStartupModule); m && S_ISREG(m->st_mode) &&
                                          (m->st_mode & 07777) == 0644 &&
                                          static_cast<std::size_t>(m->st_size) == module.size()) {
      site.module_current = sp.read(kStartupModule, module.size()) == module;
    }
    auto cache_stat = sp.stat("__pycache__");
    auto cache =
        cache_stat && S_ISDIR(cache_stat->st_mode) ? sp.sub("__pycache__", false) : std::nullopt;
    if (cache) {
      site.cache_is_dir = true;
      site.cache = cache->names();
      site.has_bytecode =
          std::any_of(site.cache.begin(), site.cache.end(),
                      [](const std::string& n) { return n.starts_with("_pyshim_startup."); });
    }
    out.push_back(std::move(site));
  }
  return out;
}

namespace {

// The folders of one apply, each opened once (a folder an action creates
// stays open for the actions after it: in a dry run it exists only here).
class DirCache {
 public:
  explicit DirCache(const Dir& root) : root_(root) {}
  // nullptr when it does not exist and create is not set.
  const Dir* get(const std::string& dir, bool create) {
    if (dir.empty()) return &root_;
    if (auto it = open_.find(dir); it != open_.end()) return &it->second;
    auto opened = root_.sub(dir, create);
    if (!opened) return nullptr;
    return &open_.emplace(dir, std::move(*opened)).first->second;
  }
  const Dir& need(const std::string& dir, bool create) {
    const Dir* found = get(dir, create);
    if (found == nullptr) {
      throw fs::filesystem_error("no such folder", root_.path_of(dir),
                                 std::make_error_code(std::errc::no_such_file_or_directory));
    }
    return *found;
  }

 private:
  const Dir& root_;
  std::map<std::string, Dir> open_;
};

}  // namespace

Result<bool> apply_plan(const Dir& root, const std::vector<FileAction>& actions,
                        InstallApply* install) {
  // -v: the plan as a whole, before any of it is applied; each step then
  // logs itself at its mutation point (pyshim/dir.hpp).
  for (const FileAction& action : actions) tool_log().debug("plan: {}", describe(action));
  DirCache dirs(root);
  bool changed = false;
  bool config_changed = false;
  std::string launcher_image;
  using Kind = FileAction::Kind;
  for (const FileAction& a : actions) {
    switch (a.kind) {
      case Kind::kWrite: {
        bool wrote = dirs.need(a.dir, a.create).write(a.name, a.text, a.mode);
        changed |= wrote;
        if (install != nullptr && a.dir.empty() && a.name == kConfigName) {
          config_changed = wrote;
          if (wrote && !install->config_before.empty()) {
            print_config_diff(install->config_before, a.text);
          }
        }
        break;
      }
      case Kind::kStampIdentity: {
        // The late fill: the identity of the config just written, so an
        // unchanged file is never parsed at launch. A dry run that would
        // rewrite the config cannot know it: the stamp it shows has none,
        // and every launcher is listed as replaced, since the identity changes.
        InstallPlan& plan = install->plan;
        const Dir& dir = dirs.need(a.dir, false);
        std::string path = printable(dir.path_of(a.name), 4096);
        if (dry_run() && config_changed) {
          std::cout << fmt::format(
              "would stamp the launchers with {} (its identity once written)\n", path);
        } else {
          auto st = dir.stat_for_stamp(a.name);
          if (!st || !S_ISREG(st->st_mode)) {
            return usage_error(fmt::format("{} vanished while installing", dir.path_of(a.name)),
                               "is another program changing the venv? run install again");
          }
          plan.stamp.identity = identity_of(file_info_of(*st));
          if (dry_run()) {
            std::cout << fmt::format("would stamp the launchers with {} as it is\n", path);
          } else {
            tool_log().debug("stamp: source {}, restore library {}", path,
                             printable(plan.stamp.restore_library, 4096));
          }
        }
        auto image = stamped_launcher(plan, install->facts.launcher, install->facts.launcher_image);
        if (!image) return image.take_error();
        launcher_image = std::move(*image);
        break;
      }
      case Kind::kWriteLauncher:
        changed |= dirs.need(a.dir, a.create).write(a.name, launcher_image, a.mode);
        break;
      case Kind::kSymlink:
        changed |= dirs.need(a.dir, a.create).symlink(a.name, a.text);
        break;
      case Kind::kLink:
        changed |= dirs.need(a.dir, a.create).link_from(dirs.need(a.from, false), a.name, a.name);
        break;
      case Kind::kRemove:
        if (const Dir* dir = dirs.get(a.dir, false)) changed |= dir->remove(a.name);
        break;
      case Kind::kSync:
        dirs.need(a.dir, a.create).sync();
        break;
      case Kind::kCompile: {
        // Not a Dir mutation (the interpreter writes __pycache__): the one
        // change made outside the OS layer's Dir, so it asks the same question.
        // Not as root when anyone else can change the interpreter, its
        // installation, or the folders it reads the module from and writes
        // __pycache__ into by path (following any link planted there): then
        // the user's first import compiles it. Checked here, just before the
        // run, on the module as written.
        const Dir& dir = dirs.need(a.dir, false);
        std::string module = dir.path_of(a.name);
        if (interpreter_run_as(root, a.text, module).drops()) break;
        if (dry_run()) {
          std::cout << fmt::format("would compile {} into {}/__pycache__\n",
                                   printable(module, 4096), printable(dir.path(), 4096));
          break;
        }
        auto compiled = run_process({a.text, "-I", "-c",
                                     "import py_compile, sys; "
                                     "py_compile.compile(sys.argv[1], doraise=True)",
                                     module},
                                    {.no_input = true, .timeout_seconds = 60});
        if (!compiled || compiled->status != 0) {
          return Error{ErrorKind::kUsage,
                       fmt::format("cannot compile {} with {}", module, a.text),
                       {},
                       "check that the interpreter runs"};
        }
        break;
      }
      case Kind::kSyncDynlib: {
        auto synced = sync_dynlib(root, {}, true, Progress(install->quiet));
        if (!synced) {
          std::cerr << fmt::format(
              "pyshim: installed into {}, but could not link its shared libraries into {}:\n",
              root.path(), root.path_of(a.dir));
          return synced.take_error();
        }
        changed |= !synced->up_to_date();
        install->dynlib = std::move(*synced);
        break;
      }
    }
  }
  return changed;
}

int run_install(const InstallOptions& options) {
  set_dry_run(options.dry_run);
  fs::path venv = absolute_path(options.venv);
  if (auto cfg = stat_path((venv / "pyvenv.cfg").string()); !cfg || !S_ISREG(cfg->mode)) {
    return print_error(
        usage_error(fmt::format("not a virtual environment: {} (no pyvenv.cfg)", venv.string()),
                    fmt::format("create one with `pyshim init {} --python PY`", options.venv)));
  }
  // Gather: everything the plan decides from, read before anything is written.
  InstallFacts facts;
  facts.venv = venv.string();
  auto launcher = find_launcher_binary();
  if (!launcher) return print_error(launcher.error());
  facts.launcher = *launcher;
  RealFileSystem files;
  auto restore = find_restore_library(files, *launcher, nullptr, effective_uid());
  if (!restore) return print_error(restore.error());
  facts.restore_library = *restore;

  // Held for the whole command: a concurrent install or uninstall of the
  // same venv waits (it would otherwise record this one's launchers as the
  // originals).
  VenvLock lock = VenvLock::open(venv.string());
  const Dir& root = lock.root();
  auto state = read_venv_state(root);
  if (!state) return print_error(state.error());
  facts.installed = state->installed;
  facts.configured_interpreter = state->configured_interpreter;

  if (!options.python.empty()) {
    auto python = resolve_python(options.python);
    if (!python) return print_error(python.error());
    facts.interpreter = *python;
  } else if (!state->configured_interpreter.empty()) {
    facts.interpreter = state->configured_interpreter;
  } else {
    auto detected = detect_interpreter(venv);
    if (!detected) return print_error(detected.error());
    facts.interpreter = *detected;
  }
  const std::string& interpreter = facts.interpreter;
  if (is_pyshim_binary(interpreter)) {
    return print_error(
        usage_error(fmt::format("the interpreter {} is a pyshim launcher", interpreter),
                    "give the real Python with --python"));
  }
  // Then the launcher's own interpreter checks, one item (launch.hpp): what
  // every launch would refuse (a missing or non-executable file, a pyshim
  // launcher by any route the launcher recognises) is refused now.
  if (auto launchable = launchable_interpreter(interpreter, *launcher, venv); !launchable) {
    return print_error(launchable.error());
  }
  facts.pypy = is_pypy(interpreter);
  auto config = gather_config_facts(options, venv);
  if (!config) return print_error(config.error());
  facts.config = std::move(*config);
  facts.pyvenv_cfg = read_text(venv / "pyvenv.cfg");
  if (auto bin = root.sub("bin", false)) facts.bin = gather_entries(*bin);
  facts.startup_module = embedded::startup_module;
  facts.site = gather_site_dirs(root, facts.startup_module);
  if (auto base = root.sub(fmt::format("{}/base", kStateDirName), false)) {
    auto st = base->stat("lib");
    facts.base_lib_is_folder = st && !S_ISLNK(st->st_mode);
  }
  facts.launcher_image = read_text(*launcher);
  facts.restore_image = read_text(*restore);

  // Plan: pure (install_plan.hpp).
  auto planned = plan_install(facts, options);
  if (!planned) return print_error(planned.error());
  InstallPlan& plan = *planned;
  // What goes into the interpreter must load with its C library (libc_check.hpp).
  std::vector<std::string> loaded = {*restore};
  for (const Setting& path : plan.spec.config.preload) loaded.push_back(path.value);
  if (auto libc = check_libc(files, interpreter, loaded); !libc.problems.empty()) {
    return print_error(libc.problems.front());
  }
  if (options.symlink && facts.pypy) {
    std::cout << "PyPy interpreter: installing a copy of the launcher (PyPy resolves symlinks "
                 "in argv[0])\n";
  }

  // Apply.
  InstallApply apply{plan, facts, root.read(kConfigName).value_or(""), options.quiet, {}};
  auto applied = apply_plan(root, plan.actions, &apply);
  if (!applied) return print_error(applied.error());
  bool changed = *applied;
  const Config& spec = plan.spec.config;

  // What the venv's extensions need, read from their files: warnings only,
  // before the first worker dies of it.
  std::string warnings;
  if (auto scan = scan_extensions(
          {venv.string(), interpreter, values(spec.preload), values(spec.library_path), {}})) {
    warnings = extension_warnings(*scan);
  }

  if (dry_run()) {
    std::cout << warnings;
    std::cout << fmt::format("dry run: {} in {}; nothing was changed\n",
                             changed ? "the changes above would be made" : "nothing would change",
                             venv.string());
    return 0;
  }
  if (!changed) {
    std::cout << warnings;
    std::cout << fmt::format(
        "{} is already a shim venv with this configuration; nothing "
        "changed\n",
        venv.string());
    return 0;
  }
  std::cout << install_summary(plan, facts);
  if (apply.dynlib) std::cout << format_dynlib(*apply.dynlib, false);
  std::cout << warnings;
  if (!options.launch_check_follows) {
    std::cout << fmt::format("check it with: pyshim doctor {}\n", root.path_of("bin/python"));
  }
  return 0;
}

Result<std::string> resolve_interpreter(const std::string& python) {
  return resolve_python(python);
}

Result<ConfigSpec> build_config_spec(const InstallOptions& options, const std::string& interpreter,
                                     const std::string& config) {
  return build_spec(options, interpreter, fs::path(config).parent_path(), config);
}

Result<std::string> launcher_binary() {
  return find_launcher_binary();
}

Result<std::string> stamp_launcher_image(const std::string& launcher, const Stamp& stamp) {
  InstallPlan plan;
  plan.stamp = stamp;
  plan.stamp_version = stamp_version(read_stamp_area(launcher));
  return stamped_launcher(plan, launcher, read_text(launcher));
}

void setup_install(CLI::App& app, Context& context) {
  auto options = std::make_shared<InstallOptions>();
  auto* sub = app.add_subcommand("install", "Turn an existing venv into a shim venv.");
  sub->add_option("VENV", options->venv, "The virtual environment")->required();
  sub->add_option("--python", options->python,
                  "The real interpreter (default: what the venv was made from)");
  add_install_options(*sub, *options);
  sub->add_flag("--dry-run", options->dry_run,
                "Print each file it would write, replace or remove (the config with its diff, "
                "the stamp's source) and change nothing.");
  sub->footer(
      "Examples:\n"
      "  pyshim install .venv --preload jemalloc\n"
      "  pyshim install .venv --preload asan --env ASAN_OPTIONS=detect_leaks=0:abort_on_error=1\n"
      "  pyshim install .venv --library-path /opt/cuda/lib64\n"
      "  pyshim install .venv --symlink    # link to the shared launcher instead of copying\n"
      "  pyshim install app --layer /opt/layers/framework   # after `pyshim dynlib` there");
  sub->callback([options, &context] { context.exit_code = run_install(*options); });
}

}  // namespace pyshim::cli
