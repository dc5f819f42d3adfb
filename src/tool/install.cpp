// pyshim install VENV: turn an existing venv into a shim venv.
//
// What it replaced is recorded in VENV/.pyshim/manifest.toml (symlink
// targets; regular files are moved to VENV/.pyshim/backup/) so that
// `pyshim uninstall` can put back exactly that. The manifest is written once,
// by the first install: later installs only rewrite pyshim.toml and the links.
#include "install.hpp"
#include "libc_check.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
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
#include "pyshim/dynlib.hpp"
#include "pyshim/elf.hpp"
#include "pyshim/launch.hpp"
#include "pyshim/os.hpp"
#include "pyshim/process.hpp"
#include "pyshim/stamp.hpp"
#include "pyshim/venv.hpp"
#include "venv_dir.hpp"
#include "venv_files.hpp"

#include "files.hpp"

namespace fs = std::filesystem;

namespace pyshim::cli {
namespace {

Error usage_error(std::string message, std::string hint) {
  return Error{kExitUsage, std::move(message), {}, std::move(hint)};
}

bool is_executable_file(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec) && ::access(path.c_str(), X_OK) == 0;
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
  std::error_code ec;
  for (int hop = 0; hop < 16; ++hop) {
    fs::path p(path);
    std::string dir = real_path(p.parent_path().string());
    if (!dir.empty()) p = fs::path(dir) / p.filename();
    if (is_soname_form(p.filename().string()) || !fs::is_symlink(fs::symlink_status(p, ec))) {
      return p.string();
    }
    fs::path target = fs::read_symlink(p, ec);
    path = (target.is_absolute() ? target : p.parent_path() / target).string();
  }
  return real_path(path);
}

// A soname, a path, or a preset name, resolved now to an absolute path so
// that the launcher never searches at run time.
Result<std::string> resolve_preload(const std::string& spec, std::vector<std::string>& notes) {
  if (spec.find('/') != std::string::npos) {
    std::string path = absolute_path(spec);
    if (!fs::exists(path)) {
      return usage_error(fmt::format("--preload {}: no such file", spec),
                         "give an existing library path, a soname or a preset name");
    }
    return path;
  }
  const Preset* preset = find_preset(spec);
  std::string library = preset != nullptr ? std::string(preset->library) : spec;
  std::string package = preset != nullptr ? std::string(preset->package) : std::string();
  std::string path;
  if (preset != nullptr && preset->from_toolchain) {
    auto out = run_process({"gcc", fmt::format("-print-file-name={}", library)},
                           {.capture_output = true, .quiet = true});
    std::string answer = out ? out->output.substr(0, out->output.find('\n')) : "";
    // gcc echoes the bare name back when it has no such file.
    if (answer.find('/') != std::string::npos && fs::exists(answer)) {
      path = stable_library_path(answer);
    }
    if (!path.empty()) {
      notes.push_back(
          fmt::format("preload '{}': `gcc -print-file-name={}` -> {}", spec, library, path));
    }
  } else {
    auto out = run_process({"/sbin/ldconfig", "-p"}, {.capture_output = true, .quiet = true});
    if (out && out->status == 0) {
      auto found = find_in_ldconfig(out->output, library, kLdconfigAbiTag);
      if (found && fs::exists(*found)) path = stable_library_path(*found);
    }
    if (!path.empty() && preset != nullptr) {
      notes.push_back(
          fmt::format("preload '{}': {} from the loader cache -> {}", spec, library, path));
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
  return path;
}

// --env, --env-prepend, --env-append as [env] entries: within one option
// the last NAME=VALUE of a name wins; one name in two of them is refused
// (their order on the command line is not kept).
Result<std::vector<EnvSetting>> parse_env(const ConfigOptions& options) {
  std::vector<EnvSetting> out;
  const std::pair<EnvMode, const std::vector<std::string>*> lists[] = {
      {EnvMode::kSet, &options.env},
      {EnvMode::kPrepend, &options.env_prepend},
      {EnvMode::kAppend, &options.env_append}};
  for (const auto& [mode, list] : lists) {
    std::string option =
        mode == EnvMode::kSet ? "--env" : fmt::format("--env-{}", env_mode_name(mode));
    for (const std::string& spec : *list) {
      std::size_t eq = spec.find('=');
      if (eq == std::string::npos || eq == 0) {
        return usage_error(fmt::format("{} {}: expected NAME=VALUE", option, spec),
                           mode == EnvMode::kSet
                               ? "e.g. --env MALLOC_CONF=background_thread:true"
                               : fmt::format("e.g. {} PYTHONPATH=/opt/build/python", option));
      }
      std::string name = spec.substr(0, eq);
      std::string value = spec.substr(eq + 1);
      if (name == "LD_PRELOAD" || name == "LD_LIBRARY_PATH" || name.starts_with("PYSHIM_")) {
        return usage_error(fmt::format("{} {}: pyshim manages {}", option, spec, name),
                           "use --preload / --library-path instead");
      }
      if (mode != EnvMode::kSet && value.empty()) {
        return usage_error(
            fmt::format("{} {}: nothing to {}", option, spec, env_mode_name(mode)),
            fmt::format("give the value to add, or --env {}= to set it empty", name));
      }
      auto it = std::find_if(out.begin(), out.end(),
                             [&](const EnvSetting& var) { return var.name == name; });
      if (it == out.end()) {
        out.push_back({name, value, {}, mode});
      } else if (it->mode == mode) {
        it->value = value;
      } else {
        return usage_error(fmt::format("{} is given to both {} and {}", name,
                                       it->mode == EnvMode::kSet
                                           ? std::string("--env")
                                           : fmt::format("--env-{}", env_mode_name(it->mode)),
                                       option),
                           "an [env] variable has one form: give it once");
      }
    }
  }
  return out;
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
  std::error_code ec;
  for (const std::string& layer_arg : layers) {
    fs::path layer = normal_dir(layer_arg);
    if (layer == venv) {
      return usage_error(fmt::format("--layer {}: a venv cannot be layered on itself", layer_arg),
                         "name the venvs below this one");
    }
    if (!fs::is_regular_file(layer / "pyvenv.cfg", ec)) {
      return usage_error(
          fmt::format("--layer {}: not a virtual environment (no pyvenv.cfg)", layer_arg),
          "give the folder of a venv whose shared libraries this one needs");
    }
    fs::path dynlib = layer / kDynlibDir;
    if (!fs::is_directory(dynlib, ec)) {
      return usage_error(fmt::format("--layer {}: {} does not exist", layer_arg, dynlib.string()),
                         fmt::format("collect that venv's shared libraries first: pyshim dynlib {}",
                                     layer.string()));
    }
    add(dynlib.string());
    fs::path config_path = layer / kConfigName;
    if (fs::exists(config_path, ec)) {
      auto config = parse_config(read_text(config_path), config_path.string());
      if (!config) {
        Error error = config.take_error();
        error.exit_code = kExitUsage;
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

// config: the pyshim.toml whose settings the options change (relative: in
// the venv; `pyshim launcher --config` gives an absolute path).
Result<ConfigSpec> build_spec(const InstallOptions& options, const std::string& interpreter,
                              const fs::path& venv, const fs::path& config = kConfigName) {
  if (auto valid = check_utf8(options); !valid) return valid.take_error();
  ConfigSpec spec;
  spec.interpreter = interpreter;
  std::vector<std::string> sanitizers;
  std::vector<std::string> others;
  bool asan = false;
  for (const std::string& item : options.preload) {
    auto path = resolve_preload(item, spec.notes);
    if (!path) return path.take_error();
    if (is_sanitizer_runtime(*path)) {
      sanitizers.push_back(*path);
      std::string name = fs::path(*path).filename().string();
      asan = asan || item == "asan" || name.starts_with("libasan") ||
             name.starts_with("libclang_rt.asan");
    } else {
      others.push_back(*path);
    }
  }
  // Sanitizer runtimes first: ASan insists on being first in the link order.
  for (auto* list : {&sanitizers, &others}) {
    for (const std::string& path : *list) {
      if (std::find(spec.preload.begin(), spec.preload.end(), path) == spec.preload.end()) {
        spec.preload.push_back(path);
      }
    }
  }
  if (!options.library_path.empty() && !options.library_path_append.empty()) {
    return usage_error("--library-path and --library-path-append cannot be mixed",
                       "pyshim.toml has one library_path_position; pick one");
  }
  // Layers go after the caller's LD_LIBRARY_PATH, so that a caller can still
  // override one of their libraries; one position per config makes
  // --library-path (before the caller's) the odd one out.
  if (!options.layers.empty() && !options.library_path.empty()) {
    return usage_error("--layer and --library-path cannot be mixed",
                       "layers are searched after the caller's LD_LIBRARY_PATH and pyshim.toml "
                       "has one library_path_position: use --library-path-append for the "
                       "other folders");
  }
  spec.library_path_position = options.library_path_append.empty() && options.layers.empty()
                                   ? Position::kPrepend
                                   : Position::kAppend;
  if (!options.layers.empty()) {
    auto layered = layer_library_path(venv.string(), options.layers);
    if (!layered) return layered.take_error();
    spec.library_path = std::move(*layered);
  }
  for (const auto* list : {&options.library_path, &options.library_path_append}) {
    for (const std::string& dir : *list) {
      std::string path = absolute_path(dir);
      if (std::find(spec.library_path.begin(), spec.library_path.end(), path) ==
          spec.library_path.end()) {
        spec.library_path.push_back(std::move(path));
      }
    }
  }
  // Options change what they name and keep the rest of the current
  // pyshim.toml (--reset starts from an empty config). [dynlib] exclude has
  // no option here, so it is always kept.
  std::error_code ec;
  std::optional<Config> current;
  if (fs::exists(venv / config, ec)) {
    std::string path = (venv / config).string();
    // Not through a link: in a venv someone else can write, it could point
    // at any file root can read.
    if (auto parsed = parse_config(read_text(path, false), path)) current = std::move(*parsed);
  }
  auto values = [](const std::vector<Setting>& list) {
    std::vector<std::string> out;
    for (const Setting& s : list) out.push_back(s.value);
    return out;
  };
  if (current) spec.dynlib_exclude = values(current->dynlib_exclude);
  if (current && !options.reset) {
    if (options.preload.empty()) spec.preload = values(current->preload);
    if (options.library_path.empty() && options.library_path_append.empty() &&
        options.layers.empty()) {
      spec.library_path = values(current->library_path);
      spec.library_path_position = current->library_path_position;
    }
    if (options.startup.empty()) spec.startup = values(current->startup);
    if (options.python_path.empty()) spec.python_path = values(current->python_path);
  }
  // Refused now, with the reason, rather than at every launch.
  for (const auto* list : {&spec.preload, &spec.library_path}) {
    for (const std::string& path : *list) {
      if (auto refused = loader_path_error(path, list == &spec.preload)) {
        return usage_error(refused->message, refused->hint);
      }
    }
  }
  auto env = parse_env(options);
  if (!env) return env.take_error();
  if (current && !options.reset) {
    // The current variables in their order; a name given replaces its value
    // and form.
    for (const EnvSetting& var : current->env)
      spec.env.push_back({var.name, var.value, {}, var.mode});
    for (EnvSetting& var : *env) {
      auto it = std::find_if(spec.env.begin(), spec.env.end(),
                             [&](const EnvSetting& entry) { return entry.name == var.name; });
      if (it != spec.env.end()) {
        *it = std::move(var);
      } else {
        spec.env.push_back(std::move(var));
      }
    }
  } else {
    spec.env = std::move(*env);
  }
  if (asan) {
    bool user_set = false;
    for (const EnvSetting& var : spec.env) user_set = user_set || var.name == "ASAN_OPTIONS";
    if (!user_set) {
      // An interpreter's own allocations alive at exit are reported as leaks
      // and turn every exit status into 1.
      spec.env.push_back({"ASAN_OPTIONS", "detect_leaks=0"});
      spec.notes.push_back(
          "ASAN_OPTIONS=detect_leaks=0: set because an ASan runtime is preloaded (see README)");
    }
  }
  for (const std::string& hook : options.startup) spec.startup.push_back(hook);
  for (const std::string& dir : options.python_path) spec.python_path.push_back(absolute_path(dir));
  if (!spec.startup.empty()) {
    // Validate the hooks the way the launcher will read them.
    auto parsed = parse_config(render_config(spec), "--startup");
    if (!parsed) {
      return usage_error(parsed.error().message, "write --startup package.module:function");
    }
  }
  return spec;
}

// The launcher binary this tool installs: PREFIX/lib/pyshim/pyshim-launcher
// for an installed pyshim (PREFIX/bin/pyshim), beside the tool in the build
// tree.
Result<std::string> find_launcher_binary() {
  std::string tool = real_path("/proc/self/exe");
  fs::path bin = fs::path(tool).parent_path();
  for (const fs::path& candidate :
       {bin.parent_path() / "lib/pyshim" / kLauncherBinaryName, bin / kLauncherBinaryName}) {
    if (is_executable_file(candidate)) return candidate.string();
  }
  return Error{
      kExitUsage,
      fmt::format("{} not found", kLauncherBinaryName),
      {fmt::format("searched: {}/lib/pyshim/ and {}/", bin.parent_path().string(), bin.string())},
      "reinstall pyshim"};
}

// The launcher image with `area` written over its stamp section.
Result<std::string> stamped_image(const std::string& launcher, const std::string& area) {
  std::string image = read_text(launcher);
  auto range = find_section(image, kStampSection);
  if (!range || range->size != area.size()) {
    return Error{kExitUsage,
                 fmt::format("{} has no stamp area of {} bytes", launcher, area.size()),
                 {},
                 "reinstall pyshim: the launcher and the tool come from different builds"};
  }
  image.replace(range->offset, range->size, area);
  return image;
}

// python3.X from pyvenv.cfg's version when bin/ has it, else the entry that
// led outside bin/ (the interpreter itself), else "python".
std::string main_launcher_name(const fs::path& venv, const std::vector<std::string>& names) {
  auto cfg = parse_pyvenv_cfg(read_text(venv / "pyvenv.cfg"));
  std::string version = cfg.count("version") ? cfg["version"] : cfg["version_info"];
  std::size_t dot = version.find('.', version.find('.') + 1);
  std::string wanted = "python" + version.substr(0, dot);
  if (std::find(names.begin(), names.end(), wanted) != names.end()) return wanted;
  std::error_code ec;
  for (const std::string& name : names) {
    fs::path path = venv / "bin" / name;
    if (!fs::is_symlink(fs::symlink_status(path, ec))) return name;
    if (fs::read_symlink(path, ec).has_parent_path()) return name;
  }
  return names.front();
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

// Puts launchers at dir/<main> (a file) and dir/<name> (links to it).
bool place_launchers(const Dir& dir, const std::vector<std::string>& names, const std::string& main,
                     const std::string& image) {
  bool changed = dir.write(main, image, 0755);
  for (const std::string& name : names) {
    if (name != main) changed |= dir.symlink(name, main);
  }
  return changed;
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
  error.exit_code = kExitUsage;
  error.context.clear();  // the config it names is not written yet
  error.hint = "give the real Python with --python (and --force to switch a shim venv to it)";
  return error;
}

}  // namespace

Status check_install_options(const InstallOptions& options, const std::string& python) {
  auto interpreter = resolve_python(python);
  if (!interpreter) return interpreter.take_error();
  auto spec = build_spec(options, *interpreter, absolute_path(options.venv));
  if (!spec) return spec.take_error();
  return Ok{};
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

int run_install(const InstallOptions& options) {
  set_dry_run(options.dry_run);
  std::error_code ec;
  fs::path venv = absolute_path(options.venv);
  if (!fs::is_regular_file(venv / "pyvenv.cfg", ec)) {
    return print_error(
        usage_error(fmt::format("not a virtual environment: {} (no pyvenv.cfg)", venv.string()),
                    fmt::format("create one with `pyshim init {} --python PY`", options.venv)));
  }
  auto launcher = find_launcher_binary();
  if (!launcher) return print_error(launcher.error());
  RealFileSystem files;
  auto restore = find_restore_library(files, *launcher, nullptr, effective_uid());
  if (!restore) return print_error(restore.error());

  // Held for the whole command: a concurrent install or uninstall of the
  // same venv waits (it would otherwise record this one's launchers as the
  // originals).
  VenvLock lock = VenvLock::open(venv.string());
  const Dir& root = lock.root();
  auto state = read_venv_state(root);
  if (!state) return print_error(state.error());

  std::string interpreter;
  if (!options.python.empty()) {
    auto python = resolve_python(options.python);
    if (!python) return print_error(python.error());
    interpreter = *python;
  } else if (!state->configured_interpreter.empty()) {
    interpreter = state->configured_interpreter;
  } else {
    auto detected = detect_interpreter(venv);
    if (!detected) return print_error(detected.error());
    interpreter = *detected;
  }
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
  if (state->installed && !state->configured_interpreter.empty() &&
      state->configured_interpreter != interpreter && !options.force) {
    return print_error(usage_error(fmt::format("{} is already a shim venv for {}", venv.string(),
                                               state->configured_interpreter),
                                   fmt::format("pass --force to switch it to {}", interpreter)));
  }

  auto spec = build_spec(options, interpreter, venv);
  if (!spec) return print_error(spec.error());
  // What goes into the interpreter must load with its C library (libc_check.hpp).
  std::vector<std::string> loaded = {*restore};
  loaded.insert(loaded.end(), spec->preload.begin(), spec->preload.end());
  if (auto libc = check_libc(files, interpreter, loaded); !libc.problems.empty()) {
    return print_error(libc.problems.front());
  }

  // PyPy resolves the symlink in argv[0] and looks for its lib/ and
  // pyvenv.cfg from the resolved path, so a symlink to the shared launcher
  // would give it the wrong prefix: a PyPy venv always gets a copy.
  bool pypy = is_pypy(interpreter);
  bool copy = !options.symlink || pypy;
  if (options.symlink && pypy) {
    std::cout << "PyPy interpreter: installing a copy of the launcher (PyPy resolves symlinks "
                 "in argv[0])\n";
  }

  std::vector<std::string> names = interpreter_names(root);
  if (names.empty()) {
    return print_error(usage_error(fmt::format("{}/bin has no python executables", venv.string()),
                                   "recreate the venv with `python -m venv`"));
  }
  std::string main_name = main_launcher_name(venv, names);
  if (!state->installed) {
    if (auto recorded = record_manifest(root, copy); !recorded)
      return print_error(recorded.error());
  }

  std::string config_path = root.path_of(kConfigName);
  std::string config_text = render_config(*spec);
  std::string before = root.read(kConfigName).value_or("");
  bool changed = root.write(kConfigName, config_text, 0644);
  if (changed && !before.empty()) print_config_diff(before, config_text);
  // A dry run that would rewrite the config cannot know the new file's
  // identity (its inode and times): the stamp it shows has none, and every
  // launcher it lists as replaced would be, since the identity changes.
  bool planned_config = dry_run() && changed;
  std::string venv_restore = (venv / "lib/pyshim" / kRestoreLibraryName).string();

  // The stamp: the config as the launcher would read it, plus the identity
  // of the file just written, so an unchanged file is never parsed at launch.
  auto resolved = parse_config(config_text, config_path);
  if (!resolved) return print_error(resolved.error());
  Stamp stamp;
  stamp.source = config_path;
  stamp.restore_library = copy ? venv_restore : *restore;
  stamp.config = std::move(*resolved);
  auto st = planned_config ? std::nullopt : root.stat_for_stamp(kConfigName);
  if (planned_config) {
    std::cout << fmt::format("would stamp the launchers with {} (its identity once written)\n",
                             printable(config_path, 4096));
  } else {
    if (!st || !S_ISREG(st->st_mode)) {
      return print_error(usage_error(fmt::format("{} vanished while installing", config_path),
                                     "is another program changing the venv? run install again"));
    }
    stamp.identity = identity_of(file_info_of(*st));
    if (dry_run()) {
      std::cout << fmt::format("would stamp the launchers with {} as it is\n",
                               printable(config_path, 4096));
    } else {
      tool_log().debug("stamp: source {}, restore library {}", printable(config_path, 4096),
                       printable(stamp.restore_library, 4096));
    }
  }
  auto area = encode_stamp(stamp, stamp_version(read_stamp_area(*launcher)));
  if (!area) return print_error(area.error());
  auto image = stamped_image(*launcher, *area);
  if (!image) return print_error(image.error());

  Dir bin = *root.sub("bin", false);
  // CPython 3.11+: bin/<main> links to the base launcher and no .pth is
  // needed (venv_files.hpp); the base launcher is then written first.
  bool linked = copy && !pypy && links_to_base_launcher(root);
  if (copy) {
    Dir lib_dir = *root.sub("lib/pyshim", true);
    changed |= lib_dir.write(kRestoreLibraryName, read_text(*restore), 0644);
    if (!linked) changed |= place_launchers(bin, names, main_name, *image);
  } else {
    for (const std::string& name : names) changed |= bin.symlink(name, *launcher);
  }
  // The base launcher: what derived environments are made from. Not for
  // PyPy, which cannot run outside a venv (its sys._base_executable stays).
  std::string base_relative;
  if (!pypy) {
    Dir base_bin = *root.sub(kBaseLauncherDir, true);
    changed |= place_launchers(base_bin, names, main_name, *image);
    changed |= sync_base_lib_link(root, copy);
    base_relative = (fs::path(kBaseLauncherDir) / main_name).string();
  }
  if (linked) changed |= link_to_base_launcher(bin, names, main_name);
  auto site_files = sync_site_files(root, !spec->startup.empty(), interpreter,
                                    linked ? std::string() : base_relative);
  if (!site_files) return print_error(site_files.error());
  changed |= *site_files;

  // The config names this venv's own dynlib folder; doctor would flag it
  // missing, and the layers above expect it current.
  std::optional<DynlibSync> dynlib;
  if (!options.layers.empty()) {
    auto synced = sync_dynlib(root, {}, true, Progress(options.quiet));
    if (!synced) {
      std::cerr << fmt::format(
          "pyshim: installed into {}, but could not link its shared libraries into {}:\n",
          venv.string(), (venv / kDynlibDir).string());
      return print_error(synced.error());
    }
    changed |= !synced->up_to_date();
    dynlib = std::move(*synced);
  }

  // The copies' restore library goes last, when nothing the new layout
  // placed names it: a launcher copy (the base launcher among them) started
  // before its replacement still finds it, where removing it before the base
  // launcher was re-stamped failed such launches most of the time.
  if (!copy) {
    if (auto lib = root.sub("lib", false)) changed |= lib->remove("pyshim");
  }

  // What the venv's extensions need, read from their files: warnings only,
  // before the first worker dies of it.
  std::string warnings;
  if (auto scan =
          scan_extensions({venv.string(), interpreter, spec->preload, spec->library_path, {}})) {
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
  std::cout << fmt::format("installed pyshim into {}\n", venv.string());
  std::cout << fmt::format("  interpreter: {}\n", interpreter);
  std::cout << fmt::format("  config:      {}\n", (venv / kConfigName).string());
  for (const std::string& path : spec->preload)
    std::cout << fmt::format("  preload:     {}\n", path);
  for (const std::string& dir : spec->library_path) {
    std::cout << fmt::format("  library:     {} ({})\n", dir,
                             spec->library_path_position == Position::kAppend
                                 ? "after the caller's LD_LIBRARY_PATH"
                                 : "before the caller's LD_LIBRARY_PATH");
  }
  std::cout << fmt::format(
      "  launchers:   {} -> {}\n", fmt::join(names, ", "),
      linked ? fmt::format("{} (a stamped copy of {})", base_relative, *launcher)
      : copy ? fmt::format("bin/{} (a stamped copy of {})", main_name, *launcher)
             : *launcher);
  if (!base_relative.empty()) {
    std::cout << fmt::format("  base:        {} (sys._base_executable: derived venvs use it)\n",
                             (venv / base_relative).string());
  }
  if (dynlib) std::cout << format_dynlib(*dynlib, false);
  std::cout << warnings;
  if (!options.launch_check_follows) {
    std::cout << fmt::format("check it with: pyshim doctor {}\n", bin.path_of("python"));
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
  auto area = encode_stamp(stamp, stamp_version(read_stamp_area(launcher)));
  if (!area) return area.take_error();
  return stamped_image(launcher, *area);
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
