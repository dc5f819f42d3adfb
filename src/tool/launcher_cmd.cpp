// pyshim launcher OUT --python PY [config options]: a stamped launcher that
// needs no venv, for build systems' dev-mode entrypoints and
// multiprocessing.set_executable().
//
// What it writes, all in OUT's folder: OUT (a stamped copy of
// pyshim-launcher) and libpyshim-restore.so beside it (the launcher's
// second place to look; the first, ../lib/pyshim/, is left alone: it is
// outside what the user named, and refused when it holds another build's
// library). With --config FILE, also FILE, an editable pyshim.toml the
// launcher reads whenever it differs from its stamp. Every file is written
// only when its bytes change, so a build system that re-runs the command
// with the same arguments sees no new mtime and rebuilds nothing.
#include <sys/stat.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "files.hpp"
#include "install.hpp"
#include "pyshim/cli.hpp"
#include "pyshim/dir.hpp"
#include "pyshim/elf.hpp"
#include "pyshim/launch.hpp"
#include "pyshim/os.hpp"
#include "pyshim/stamp.hpp"
#include "venv_files.hpp"

namespace pyshim::cli {
namespace {

struct LauncherOptions {
  std::string out;
  std::string config;  // --config FILE ("" = the stamp alone)
  InstallOptions install;
};

Error usage_error(std::string message, std::string hint) {
  return Error{ErrorKind::kUsage, std::move(message), {}, std::move(hint)};
}

bool same_file(const FileInfo& a, const FileInfo& b) {
  return a.dev == b.dev && a.ino == b.ino;
}

// The launcher reads a pyshim.toml beside it, or in the folder above, before
// its stamp (README, "How it works", step 2). One
// there that is not this launcher's own config would silently win: refused.
Status check_config_lookup(const std::string& dir, const std::string& config) {
  auto own = config.empty() ? std::nullopt : stat_path(config);
  for (const std::string& candidate :
       {dir + "/" + std::string(kConfigName), dirname(dir) + "/" + std::string(kConfigName)}) {
    if (candidate == config) continue;
    if (!lstat_path(candidate)) continue;
    if (auto info = own ? stat_path(candidate) : std::nullopt; info && same_file(*info, *own)) {
      continue;
    }
    return usage_error(
        fmt::format("{} exists: the launcher would read it instead of its stamped config",
                    candidate),
        fmt::format("pass --config {} to make it this launcher's config, remove it, or write the "
                    "launcher into another folder",
                    candidate));
  }
  return Ok{};
}

// ../lib/pyshim/libpyshim-restore.so comes first in the launcher's lookup:
// if it is there and is not this build's library, the launcher would load a
// library of another version.
Status check_shadowing_restore(const std::string& dir, const std::string& restore_bytes) {
  std::string other = dirname(dir) + "/lib/pyshim/" + std::string(kRestoreLibraryName);
  auto info = stat_path(other);
  if (!info) return Ok{};
  if (S_ISREG(info->mode) && read_text(other) == restore_bytes) return Ok{};
  return usage_error(
      fmt::format("{} exists and is not this pyshim's restore library: the launcher would load "
                  "it before the one written beside it",
                  other),
      "write the launcher into another folder, or remove that file");
}

// Opens OUT's folder (created when missing: a build writes into its own
// tree), locked against a concurrent `pyshim launcher` or install there.
VenvLock open_out_dir(const std::string& dir) {
  make_folders(dir);  // the caller's own path: links in it are theirs (errors: open says)
  return VenvLock::open(dir);
}

int run_launcher(LauncherOptions options) {
  std::string out = absolute_path(options.out);
  std::string name(basename(out));
  std::string dir = dirname(out);
  if (name.empty() || name == "." || name == ".." || options.out.ends_with('/')) {
    return print_error(usage_error(fmt::format("{}: not a file name", options.out),
                                   "give the path of the launcher to write, e.g. build/python"));
  }
  if (!is_valid_utf8(out)) {
    return print_error(usage_error("the OUT path is not valid UTF-8",
                                   "the stamp and pyshim.toml hold UTF-8 text; use a UTF-8 name"));
  }
  auto interpreter = resolve_interpreter(options.install.python);
  if (!interpreter) return print_error(interpreter.error());
  if (is_pyshim_binary(*interpreter)) {
    return print_error(
        usage_error(fmt::format("the interpreter {} is a pyshim launcher", *interpreter),
                    "give the real Python with --python (a launcher's `pyshim show` names it)"));
  }
  if (is_pypy(*interpreter)) {
    return print_error(usage_error(
        fmt::format("{} is PyPy, which cannot run from a standalone launcher (it finds its lib/ "
                    "from argv[0])",
                    *interpreter),
        "make a venv with `pypy3 -m venv VENV` and `pyshim install VENV` instead"));
  }

  if (!options.install.startup.empty() || !options.install.python_path.empty()) {
    // The hooks run from a .pth file in the venv's site-packages: a
    // standalone launcher has none.
    return print_error(usage_error(
        "--startup and --python-path need a venv (the hooks run from its site-packages)",
        "make a venv with `pyshim init VENV --python PY --startup ...` and use VENV/bin/python"));
  }
  std::string config = options.config.empty() ? "" : absolute_path(options.config);
  if (!config.empty() && (config.ends_with('/') || !is_valid_utf8(config))) {
    return print_error(
        usage_error(fmt::format("--config {}: not a UTF-8 file path", options.config),
                    "give the path of the pyshim.toml to write"));
  }
  if (auto lookup = check_config_lookup(dir, config); !lookup) return print_error(lookup.error());

  // Without --config the arguments are the whole config; with it, they
  // change what they name in FILE and keep the rest (as install does).
  InstallOptions install = options.install;
  install.reset = config.empty();
  std::string source = config.empty() ? dir + "/" + std::string(kConfigName) : config;
  auto spec = build_config_spec(install, *interpreter, source);
  if (!spec) return print_error(spec.error());

  auto launcher = launcher_binary();
  if (!launcher) return print_error(launcher.error());
  RealFileSystem files;
  auto restore = find_restore_library(files, *launcher, nullptr, effective_uid());
  if (!restore) return print_error(restore.error());
  std::string restore_bytes = read_text(*restore);
  if (restore_bytes.empty()) {
    return print_error(usage_error(fmt::format("cannot read {}", *restore), "reinstall pyshim"));
  }
  if (auto shadow = check_shadowing_restore(dir, restore_bytes); !shadow) {
    return print_error(shadow.error());
  }

  VenvLock lock = open_out_dir(dir);
  const Dir& root = lock.root();
  if (auto st = root.stat(name)) {
    std::optional<std::string> bytes;
    if (S_ISREG(st->st_mode)) bytes = root.read(name);
    if (!bytes || !find_section(*bytes, kStampSection)) {
      return print_error(usage_error(
          fmt::format("{} exists and is not a pyshim launcher", out),
          "remove it or choose another path: pyshim launcher only replaces its own launchers"));
    }
  }

  std::string config_text = render_config(spec->config, spec->notes);
  bool changed = false;
  Stamp stamp;
  stamp.source = source;
  if (!config.empty()) {
    std::string config_dir = dirname(config);
    std::optional<Dir> opened;
    if (config_dir != dir) {
      make_folders(config_dir);
      opened.emplace(Dir::open(config_dir));
    }
    const Dir& folder = opened ? *opened : root;
    std::string config_name(basename(config));
    changed |= folder.write(config_name, config_text, 0644);
    auto st = folder.stat_for_stamp(config_name);
    if (!st || !S_ISREG(st->st_mode)) {
      return print_error(usage_error(fmt::format("{} vanished while writing it", config),
                                     "is another program changing it? run the command again"));
    }
    stamp.identity = identity_of(file_info_of(*st));
  }
  // Without --config the source is where a pyshim.toml beside the launcher
  // would be: there is none (checked above), so the stamp alone is used.
  auto resolved = parse_config(config_text, source);
  if (!resolved) return print_error(resolved.error());
  stamp.config = std::move(*resolved);
  stamp.restore_library = dir + "/" + std::string(kRestoreLibraryName);
  auto image = stamp_launcher_image(*launcher, stamp);
  if (!image) return print_error(image.error());

  changed |= root.write(kRestoreLibraryName, restore_bytes, 0644);
  changed |= root.write(name, *image, 0755);

  if (!changed) {
    std::cout << fmt::format("{} is already a launcher with this configuration; nothing changed\n",
                             out);
    return kExitOk;
  }
  std::cout << fmt::format("wrote launcher {}\n", out);
  std::cout << fmt::format("  interpreter: {}\n", *interpreter);
  std::cout << fmt::format("  config:      {}\n",
                           config.empty() ? "stamped in the launcher (no file)" : config);
  for (const Setting& path : spec->config.preload)
    std::cout << fmt::format("  preload:     {}\n", path.value);
  for (const Setting& folder : spec->config.library_path) {
    std::cout << fmt::format("  library:     {}\n", folder.value);
  }
  for (const EnvSetting& setting : spec->config.env) {
    std::cout << fmt::format(
        "  env:         {}={}{}\n", setting.name, setting.value,
        setting.mode == EnvMode::kSet ? "" : fmt::format(" ({})", env_mode_name(setting.mode)));
  }
  std::cout << fmt::format("  restore:     {}\n", stamp.restore_library);
  std::cout << fmt::format("check it with: pyshim doctor {}\n", out);
  return kExitOk;
}

}  // namespace

void setup_launcher(CLI::App& app, Context& context) {
  auto options = std::make_shared<LauncherOptions>();
  auto* sub = app.add_subcommand("launcher",
                                 "Write a stamped launcher outside any venv (for build systems and "
                                 "multiprocessing.set_executable).");
  sub->add_option("OUT", options->out, "The launcher to write")->required();
  sub->add_option("--python", options->install.python,
                  "The real interpreter (a path or a name "
                  "on PATH)")
      ->required();
  add_config_options(*sub, options->install);
  for (const char* name : {"--startup", "--python-path"}) {
    sub->get_option(name)->description(
        "Refused here: startup hooks run from a venv's site-packages (use pyshim init or "
        "install).");
  }
  sub->add_option("--config", options->config,
                  "Also write an editable pyshim.toml at FILE: the launcher reads it whenever it "
                  "differs from the stamp; the options change only what they name in it.");
  sub->footer(
      "Examples:\n"
      "  pyshim launcher build/asan-python --python /usr/bin/python3.11 --preload asan\n"
      "  pyshim launcher build/python --python python3 --preload jemalloc \\\n"
      "      --env MALLOC_CONF=background_thread:true --config build/pyshim.toml\n"
      "\n"
      "OUT's folder gets libpyshim-restore.so beside OUT. Run it again with the same\n"
      "arguments and no file changes (mtimes included); other arguments rewrite them.\n"
      "An existing OUT that is not a pyshim launcher is never replaced.");
  sub->callback([options, &context] { context.exit_code = run_launcher(*options); });
}

}  // namespace pyshim::cli
