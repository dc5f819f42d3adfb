#include "pyshim/install_plan.hpp"

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "pyshim/dynlib.hpp"
#include "pyshim/elf.hpp"
#include "pyshim/launch.hpp"
#include "pyshim/path.hpp"

namespace pyshim {
namespace {

Error usage_error(std::string message, std::string hint) {
  return Error{ErrorKind::kUsage, std::move(message), {}, std::move(hint)};
}

// As the tool makes a path given on the command line absolute: against the
// working directory, leading "./" dropped, nothing else normalised.
std::string absolute_in(const std::string& cwd, std::string_view path) {
  if (path.starts_with('/')) return std::string(path);
  std::string out = cwd;
  if (out != "/") out.push_back('/');
  while (path.starts_with("./")) path.remove_prefix(2);
  out.append(path);
  return out;
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

// site imports a .pth line that starts with "import"; nothing else runs when
// the launcher passed no hooks (the module returns after one read).
constexpr const char* kPthText = "import _pyshim_startup; _pyshim_startup.run()\n";

// Tools that derive a new environment from a running interpreter (venv,
// virtualenv and with it tox, nox, build) start from sys._base_executable.
// Pointing it at the venv's base launcher (a stamped copy that is not a
// venv interpreter) makes every derived environment run through a launcher
// with this venv's native setup. Relative to sys.prefix, so a venv that is
// moved or mounted elsewhere still points into itself.
//
// site.py reads and compiles this line in every interpreter start, so it is
// as short as a .pth line can be: sys is already imported (site requires
// the line to start with "import"), a string concatenation instead of
// os.path.join (half the compile time). Why no pyvenv.cfg key can do this
// instead: README "The base launcher".
std::string base_executable_text(const std::string& base_relative) {
  return fmt::format("import sys;sys._base_executable=sys.prefix+'/{}'\n", base_relative);
}

// With startup hooks as well, one file does both (site opens, reads and
// compiles each .pth file, twice in a venv): the base executable first, as
// when they were two files (site takes them in name order), then the hooks.
std::string startup_text(const std::string& base_relative) {
  if (base_relative.empty()) return kPthText;
  return fmt::format(
      "import sys;sys._base_executable=sys.prefix+'/{}';import _pyshim_startup;"
      "_pyshim_startup.run()\n",
      base_relative);
}

FileAction write(std::string dir, std::string name, std::string text, unsigned mode, bool create) {
  return {FileAction::Kind::kWrite,
          std::move(dir),
          std::move(name),
          std::move(text),
          {},
          mode,
          create,
          {}};
}

FileAction remove(std::string dir, std::string name) {
  return {FileAction::Kind::kRemove, std::move(dir), std::move(name), {}, {}, 0, false, {}};
}

// The launchers of one folder: dir/<main> (the stamped file) and each
// other name a link to it.
void plan_launchers(std::vector<FileAction>& out, const std::string& dir, bool create,
                    const InstallPlan& plan) {
  out.push_back({FileAction::Kind::kWriteLauncher, dir, plan.main_name, {}, {}, 0755, create, {}});
  for (const std::string& name : plan.names) {
    if (name != plan.main_name) {
      out.push_back({FileAction::Kind::kSymlink, dir, name, plan.main_name, {}, 0, false, {}});
    }
  }
}

// The site-packages files of a shim venv: the .pth that points
// sys._base_executable at the base launcher (none when base_relative is
// empty: no base launcher, or a 3.11+ venv whose getpath does it), and the
// startup-hook .pth and module when hooks are enabled (with both, one .pth
// does both), compiled with the venv's interpreter so
// every start reads cached bytecode even where the user sets
// PYTHONDONTWRITEBYTECODE or site-packages is read-only.
void plan_site_files(std::vector<FileAction>& out, const InstallFacts& facts, bool hooks,
                     const std::string& base_relative) {
  for (const SiteDir& site : facts.site) {
    if (base_relative.empty() || hooks) {
      out.push_back(remove(site.dir, kBaseExecutablePth));
    } else {
      out.push_back(
          write(site.dir, kBaseExecutablePth, base_executable_text(base_relative), 0644, false));
    }
    if (hooks) {
      out.push_back(write(site.dir, kStartupPth, startup_text(base_relative), 0644, false));
      out.push_back(write(site.dir, kStartupModule, facts.startup_module, 0644, false));
      if (!site.module_current || !site.has_bytecode) {
        out.push_back({FileAction::Kind::kCompile,
                       site.dir,
                       kStartupModule,
                       facts.interpreter,
                       {},
                       0,
                       false,
                       {}});
      }
    } else {
      out.push_back(remove(site.dir, kStartupPth));
      out.push_back(remove(site.dir, kStartupModule));
    }
  }
}

}  // namespace

Status check_config_options(const InstallOptions& options) {
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
  return Ok{};
}

Result<ConfigSpec> plan_config(const InstallOptions& options, const std::string& interpreter,
                               const ConfigFacts& facts) {
  if (auto checked = check_config_options(options); !checked) return checked.take_error();
  // Options change what they name and keep the rest of the current
  // pyshim.toml, every key of it (--reset starts from an empty config).
  // [dynlib] exclude has no option here, so it is always kept.
  const std::optional<Config>& current = facts.current;
  bool keep = current && !options.reset;
  ConfigSpec spec;
  Config& config = spec.config;
  if (keep) {
    config = *current;
  } else if (current) {
    config.dynlib_exclude = current->dynlib_exclude;
  }
  config.file.clear();
  config.dir.clear();
  config.interpreter = {interpreter, {}};
  auto settings = [](const std::vector<std::string>& list) {
    std::vector<Setting> out;
    for (const std::string& value : list) out.push_back({value, {}});
    return out;
  };
  std::vector<std::string> sanitizers;
  std::vector<std::string> others;
  bool asan = false;
  for (const ResolvedPreload& item : facts.preload) {
    if (!item.note.empty()) spec.notes.push_back(item.note);
    if (is_sanitizer_runtime(item.path)) {
      sanitizers.push_back(item.path);
      std::string_view name = basename(item.path);
      asan = asan || item.spec == "asan" || name.starts_with("libasan") ||
             name.starts_with("libclang_rt.asan");
    } else {
      others.push_back(item.path);
    }
  }
  if (!keep || !options.preload.empty()) {
    // Sanitizer runtimes first: ASan insists on being first in the link order.
    std::vector<std::string> preload;
    for (auto* list : {&sanitizers, &others}) {
      for (const std::string& path : *list) {
        if (std::find(preload.begin(), preload.end(), path) == preload.end()) {
          preload.push_back(path);
        }
      }
    }
    config.preload = settings(preload);
  }
  if (!keep || !options.library_path.empty() || !options.library_path_append.empty() ||
      !options.layers.empty()) {
    config.library_path_position = options.library_path_append.empty() && options.layers.empty()
                                       ? Position::kPrepend
                                       : Position::kAppend;
    config.library_path_position_origin = {};
    std::vector<std::string> dirs;
    if (!options.layers.empty()) dirs = facts.layer_dirs;
    for (const auto* list : {&options.library_path, &options.library_path_append}) {
      for (const std::string& dir : *list) {
        std::string path = absolute_in(facts.cwd, dir);
        if (std::find(dirs.begin(), dirs.end(), path) == dirs.end()) dirs.push_back(path);
      }
    }
    config.library_path = settings(dirs);
  }
  // Refused now, with the reason, rather than at every launch.
  for (const auto* list : {&config.preload, &config.library_path}) {
    for (const Setting& path : *list) {
      if (auto refused = loader_path_error(path.value, list == &config.preload)) {
        return usage_error(refused->message, refused->hint);
      }
    }
  }
  auto env = parse_env(options);
  if (!env) return env.take_error();
  if (keep) {
    // The current variables in their order; a name given replaces its value
    // and form.
    for (EnvSetting& var : *env) {
      auto it = std::find_if(config.env.begin(), config.env.end(),
                             [&](const EnvSetting& entry) { return entry.name == var.name; });
      if (it != config.env.end()) {
        *it = std::move(var);
      } else {
        config.env.push_back(std::move(var));
      }
    }
  } else {
    config.env = std::move(*env);
  }
  if (asan) {
    bool user_set = false;
    for (const EnvSetting& var : config.env) user_set = user_set || var.name == "ASAN_OPTIONS";
    if (!user_set) {
      // An interpreter's own allocations alive at exit are reported as leaks
      // and turn every exit status into 1.
      config.env.push_back({"ASAN_OPTIONS", "detect_leaks=0"});
      spec.notes.push_back(
          "ASAN_OPTIONS=detect_leaks=0: set because an ASan runtime is preloaded (see README)");
    }
  }
  if (!keep || !options.startup.empty()) config.startup = settings(options.startup);
  if (!keep || !options.python_path.empty()) {
    config.python_path.clear();
    for (const std::string& dir : options.python_path) {
      config.python_path.push_back({absolute_in(facts.cwd, dir), {}});
    }
  }
  if (!config.startup.empty()) {
    // Validate the hooks the way the launcher will read them.
    auto parsed = parse_config(render_config(config), "--startup");
    if (!parsed) {
      return usage_error(parsed.error().message, "write --startup package.module:function");
    }
  }
  return spec;
}

std::string describe(const FileAction& a) {
  std::string path = printable(join(a.dir, a.name), 4096);
  switch (a.kind) {
    case FileAction::Kind::kWrite:
      return fmt::format("write {} ({} bytes, mode {:04o})", path, a.text.size(), a.mode);
    case FileAction::Kind::kWriteLauncher:
      return fmt::format("write {}: the stamped launcher (mode {:04o})", path, a.mode);
    case FileAction::Kind::kStampIdentity:
      return fmt::format("stamp the launchers with {} as written (its identity)", path);
    case FileAction::Kind::kSymlink:
      return fmt::format("{} {} as a symlink -> {}", a.why.empty() ? "link" : a.why, path,
                         printable(a.text, 4096));
    case FileAction::Kind::kLink:
      return a.why == "back up"
                 ? fmt::format("back up {} in {}", printable(join(a.from, a.name), 4096),
                               printable(a.dir, 4096))
                 : fmt::format("{} {} from {}", a.why.empty() ? "link" : a.why, path,
                               printable(join(a.from, a.name), 4096));
    case FileAction::Kind::kRemove:
      return fmt::format("remove {}", path);
    case FileAction::Kind::kSync:
      return fmt::format("sync {}", printable(a.dir, 4096));
    case FileAction::Kind::kCompile:
      return fmt::format("compile {} with {}", path, printable(a.text, 4096));
    case FileAction::Kind::kSyncDynlib:
      return fmt::format("bring {} up to date (pyshim dynlib)", kDynlibDir);
  }
  return path;
}

std::vector<std::string> interpreter_names(const std::vector<BinEntry>& bin) {
  std::vector<std::string> names;
  for (const BinEntry& entry : bin) {
    if (entry.kind != BinEntry::Kind::kOther && is_interpreter_name(entry.name)) {
      names.push_back(entry.name);
    }
  }
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    return std::make_pair(a != "python", a) < std::make_pair(b != "python", b);
  });
  return names;
}

std::string main_launcher_name(const std::string& pyvenv_cfg, const std::vector<BinEntry>& bin,
                               const std::vector<std::string>& names) {
  auto cfg = parse_pyvenv_cfg(pyvenv_cfg);
  std::string version = cfg.count("version") ? cfg["version"] : cfg["version_info"];
  std::size_t dot = version.find('.', version.find('.') + 1);
  std::string wanted = "python" + version.substr(0, dot);
  if (std::find(names.begin(), names.end(), wanted) != names.end()) return wanted;
  for (const std::string& name : names) {
    auto entry =
        std::find_if(bin.begin(), bin.end(), [&](const BinEntry& e) { return e.name == name; });
    if (entry == bin.end()) continue;
    if (entry->kind != BinEntry::Kind::kSymlink) return name;
    if (entry->target.find('/') != std::string::npos) return name;
  }
  return names.front();
}

bool links_to_base_launcher(std::string_view pyvenv_cfg) {
  auto cfg = parse_pyvenv_cfg(pyvenv_cfg);
  // venv writes `version`, virtualenv and uv `version_info`.
  std::string version = cfg.count("version") ? cfg["version"] : cfg["version_info"];
  unsigned major = 0;
  unsigned minor = 0;
  if (std::sscanf(version.c_str(), "%u.%u", &major, &minor) != 2) return false;
  return major > 3 || (major == 3 && minor >= 11);
}

Result<InstallPlan> plan_install(const InstallFacts& facts, const InstallOptions& options) {
  if (facts.installed && !facts.configured_interpreter.empty() &&
      facts.configured_interpreter != facts.interpreter && !options.force) {
    return usage_error(
        fmt::format("{} is already a shim venv for {}", facts.venv, facts.configured_interpreter),
        fmt::format("pass --force to switch it to {}", facts.interpreter));
  }
  InstallPlan plan;
  auto spec = plan_config(options, facts.interpreter, facts.config);
  if (!spec) return spec.take_error();
  plan.spec = std::move(*spec);
  // PyPy resolves the symlink in argv[0] and looks for its lib/ and
  // pyvenv.cfg from the resolved path, so a symlink to the shared launcher
  // would give it the wrong prefix: a PyPy venv always gets a copy.
  plan.copy = !options.symlink || facts.pypy;
  plan.names = interpreter_names(facts.bin);
  if (plan.names.empty()) {
    return usage_error(fmt::format("{}/bin has no python executables", facts.venv),
                       "recreate the venv with `python -m venv`");
  }
  plan.main_name = main_launcher_name(facts.pyvenv_cfg, facts.bin, plan.names);
  if (facts.site.empty()) {
    return usage_error(fmt::format("{} has no lib/*/site-packages", facts.venv),
                       "pyshim installs its .pth files there; recreate the venv");
  }
  std::vector<FileAction>& out = plan.actions;

  // First, once: back up every original and write the manifest, before
  // anything in bin/ is replaced.
  if (!facts.installed) {
    auto steps = plan_record(facts.bin, plan.copy);
    if (!steps) return steps.take_error();
    std::string backup = fmt::format("{}/{}", kStateDirName, kBackupDirName);
    for (const Step& step : *steps) {
      if (step.kind == StepKind::kBackup) {
        // A hard link: the original stays in bin/ (and keeps its inode, so
        // mode, owner and times) until a launcher is renamed over it.
        out.push_back({FileAction::Kind::kLink, backup, step.name, {}, "bin", 0, true, "back up"});
      } else if (step.kind == StepKind::kWriteManifest) {
        out.push_back({FileAction::Kind::kSync, backup, {}, {}, {}, 0, true, {}});
        out.push_back(
            write(std::string(kStateDirName), std::string(kManifestFile), step.text, 0644, true));
      }
    }
  }

  // The config, then the stamp: the config as the launcher reads it, plus
  // the identity of the file just written, so an unchanged file is never
  // parsed at launch.
  std::string config_path = fmt::format("{}/{}", facts.venv, kConfigName);
  plan.config_text = render_config(plan.spec.config, plan.spec.notes);
  auto resolved = parse_config(plan.config_text, config_path);
  if (!resolved) return resolved.take_error();
  plan.stamp.source = config_path;
  plan.stamp.restore_library =
      plan.copy ? fmt::format("{}/lib/pyshim/{}", facts.venv, kRestoreLibraryName)
                : facts.restore_library;
  plan.stamp.config = std::move(*resolved);
  plan.stamp_version = stamp_version([&] {
    auto range = find_section(facts.launcher_image, kStampSection);
    return range ? std::string_view(facts.launcher_image).substr(range->offset, range->size)
                 : std::string_view();
  }());
  // Whether it fits, and whether the launcher has the area, is known now:
  // refused before anything is written.
  if (auto image = stamped_launcher(plan, facts.launcher, facts.launcher_image); !image) {
    return image.take_error();
  }
  out.push_back(write("", std::string(kConfigName), plan.config_text, 0644, false));
  out.push_back(
      {FileAction::Kind::kStampIdentity, "", std::string(kConfigName), {}, {}, 0, false, {}});

  // CPython 3.11+: bin/<main> links to the base launcher, which is then
  // written first, and no .pth is needed.
  plan.linked = plan.copy && !facts.pypy && links_to_base_launcher(facts.pyvenv_cfg);
  if (plan.copy) {
    out.push_back(
        write("lib/pyshim", std::string(kRestoreLibraryName), facts.restore_image, 0644, true));
    if (!plan.linked) plan_launchers(out, "bin", false, plan);
  } else {
    for (const std::string& name : plan.names) {
      out.push_back({FileAction::Kind::kSymlink, "bin", name, facts.launcher, {}, 0, false, {}});
    }
  }
  // The base launcher: what derived environments are made from. Not for
  // PyPy, which cannot run outside a venv (its sys._base_executable stays).
  if (!facts.pypy) {
    plan_launchers(out, kBaseLauncherDir, true, plan);
    plan.base_relative = fmt::format("{}/{}", kBaseLauncherDir, plan.main_name);
    // Its first restore-library look (../lib/pyshim) finds the venv's copy;
    // the --symlink layout's launchers take the system's library instead.
    std::string base = fmt::format("{}/base", kStateDirName);
    if (plan.copy) {
      if (facts.base_lib_is_folder) out.push_back(remove(base, "lib"));
      out.push_back({FileAction::Kind::kSymlink, base, "lib", "../../lib", {}, 0, true, {}});
    } else {
      out.push_back(remove(base, "lib"));
    }
  }
  if (plan.linked) {
    out.push_back({FileAction::Kind::kSymlink,
                   "bin",
                   plan.main_name,
                   fmt::format("../{}/{}", kBaseLauncherDir, plan.main_name),
                   {},
                   0,
                   false,
                   {}});
    for (const std::string& name : plan.names) {
      if (name != plan.main_name) {
        out.push_back({FileAction::Kind::kSymlink, "bin", name, plan.main_name, {}, 0, false, {}});
      }
    }
  }
  plan_site_files(out, facts, !plan.spec.config.startup.empty(),
                  plan.linked ? std::string() : plan.base_relative);

  // The config names this venv's own dynlib folder; doctor would flag it
  // missing, and the layers above expect it current.
  if (!options.layers.empty()) {
    out.push_back(
        {FileAction::Kind::kSyncDynlib, std::string(kDynlibDir), {}, {}, {}, 0, false, {}});
  }
  // The copies' restore library goes last, when nothing the new layout
  // placed names it: a launcher copy (the base launcher among them) started
  // before its replacement still finds it.
  if (!plan.copy) out.push_back(remove("lib", "pyshim"));
  return plan;
}

std::string install_summary(const InstallPlan& plan, const InstallFacts& facts) {
  std::string out = fmt::format("installed pyshim into {}\n", facts.venv);
  out += fmt::format("  interpreter: {}\n", facts.interpreter);
  out += fmt::format("  config:      {}\n", plan.stamp.source);
  const Config& config = plan.spec.config;
  for (const Setting& path : config.preload) {
    out += fmt::format("  preload:     {}\n", path.value);
  }
  for (const Setting& dir : config.library_path) {
    out += fmt::format("  library:     {} ({})\n", dir.value,
                       config.library_path_position == Position::kAppend
                           ? "after the caller's LD_LIBRARY_PATH"
                           : "before the caller's LD_LIBRARY_PATH");
  }
  out += fmt::format(
      "  launchers:   {} -> {}\n", fmt::join(plan.names, ", "),
      plan.linked ? fmt::format("{} (a stamped copy of {})", plan.base_relative, facts.launcher)
      : plan.copy ? fmt::format("bin/{} (a stamped copy of {})", plan.main_name, facts.launcher)
                  : facts.launcher);
  if (!plan.base_relative.empty()) {
    out += fmt::format("  base:        {}/{} (sys._base_executable: derived venvs use it)\n",
                       facts.venv, plan.base_relative);
  }
  return out;
}

Result<std::string> stamped_launcher(const InstallPlan& plan, const std::string& launcher,
                                     const std::string& launcher_image) {
  auto area = encode_stamp(plan.stamp, plan.stamp_version);
  if (!area) return area.take_error();
  auto range = find_section(launcher_image, kStampSection);
  if (!range || range->size != area->size()) {
    return Error{ErrorKind::kUsage,
                 fmt::format("{} has no stamp area of {} bytes", launcher, area->size()),
                 {},
                 "reinstall pyshim: the launcher and the tool come from different builds"};
  }
  std::string image = launcher_image;
  image.replace(range->offset, range->size, *area);
  return image;
}

InitPlan plan_init(const InstallOptions& options, bool with_pip,
                   std::vector<ResolvedPreload> resolved_preload) {
  InitPlan plan;
  plan.create = {options.python, "-m", "venv"};
  if (!with_pip) plan.create.emplace_back("--without-pip");
  plan.create.push_back(options.venv);
  plan.install = options;
  plan.install.python.clear();
  plan.install.launch_check_follows = true;
  plan.install.resolved_preload = std::move(resolved_preload);
  return plan;
}

Result<std::vector<FileAction>> plan_uninstall(const UninstallFacts& facts) {
  std::vector<FileAction> out;
  std::string state(kStateDirName);
  if (!facts.installed) {
    if (facts.has_state_dir) out.push_back(remove("", state));
    return out;
  }
  // Checked whole before any step: a damaged manifest or backup leaves the
  // venv as it is.
  auto steps = plan_restore(facts.manifest, facts.bin, facts.backup);
  if (!steps) return steps.take_error();
  std::string backup = fmt::format("{}/{}", kStateDirName, kBackupDirName);
  for (const Step& step : *steps) {
    if (step.kind == StepKind::kRestoreLink) {
      out.push_back(
          {FileAction::Kind::kSymlink, "bin", step.name, step.text, {}, 0, false, "restore"});
    } else if (step.kind == StepKind::kRestoreFile) {
      out.push_back({FileAction::Kind::kLink, "bin", step.name, {}, backup, 0, false, "restore"});
    }
  }
  out.push_back(remove("", std::string(kConfigName)));
  out.push_back(remove("lib", "pyshim"));
  for (const SiteDir& site : facts.site) {
    for (const char* name : {kBaseExecutablePth, kStartupPth, kStartupModule}) {
      out.push_back(remove(site.dir, name));
    }
    // The interpreter caches the hook module's bytecode; an uninstalled
    // venv must not keep it (nor a __pycache__ only it needed).
    if (!site.cache_is_dir) continue;
    std::string cache = site.dir + "/__pycache__";
    std::size_t left = site.cache.size();
    for (const std::string& name : site.cache) {
      if (name.starts_with("_pyshim_startup.")) {
        out.push_back(remove(cache, name));
        --left;
      }
    }
    if (left == 0) out.push_back(remove(site.dir, "__pycache__"));
  }
  // The manifest goes last: until then a re-run of uninstall finishes.
  out.push_back(remove(state, "base"));
  out.push_back(remove(state, std::string(kBackupDirName)));
  out.push_back(remove(state, std::string(kManifestFile)));
  out.push_back(remove("", state));
  return out;
}

}  // namespace pyshim
