// pyshim uninstall VENV: put back exactly what install replaced.
#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "pyshim/cli.hpp"
#include "pyshim/os.hpp"
#include "venv_dir.hpp"
#include "venv_files.hpp"

namespace fs = std::filesystem;

namespace pyshim::cli {
namespace {

int run_uninstall(const std::string& venv_arg, bool dry) {
  set_dry_run(dry);
  fs::path venv = absolute_path(venv_arg);
  VenvLock lock = VenvLock::open(venv.string());
  auto state = read_venv_state(lock.root());
  if (!state) return print_error(state.error());
  if (!state->installed && lock.root().stat(kStateDir)) {
    // No manifest but .pyshim/ is there: an install stopped before it wrote
    // the manifest (bin/ untouched, backups are extra links) or an uninstall
    // stopped after removing it. Either way only .pyshim/ is left to remove.
    lock.root().remove(kStateDir);
    if (dry) {
      std::cout << fmt::format(
          "dry run: would finish an interrupted install or uninstall of {}; "
          "nothing was changed\n",
          venv.string());
      return 0;
    }
    std::cout << fmt::format("finished an interrupted install or uninstall: removed {}/{}\n",
                             venv.string(), kStateDir);
    return 0;
  }
  if (!state->installed) {
    return print_error(
        Error{ErrorKind::kUsage,
              fmt::format("{} is not a venv installed by `pyshim install`", venv_arg),
              {fmt::format("missing: {}", (venv / kStateDir / kManifestName).string())},
              "nothing to undo"});
  }
  if (auto restored = restore_manifest(lock.root()); !restored)
    return print_error(restored.error());
  if (dry) {
    std::cout << fmt::format("dry run: the changes above would restore {}; nothing was changed\n",
                             venv.string());
    return 0;
  }
  std::cout << fmt::format("restored {}: bin/ is as before `pyshim install`; pyshim.toml removed\n",
                           venv.string());
  return 0;
}

}  // namespace

void setup_uninstall(CLI::App& app, Context& context) {
  auto venv = std::make_shared<std::string>();
  auto dry = std::make_shared<bool>(false);
  auto* sub = app.add_subcommand("uninstall", "Undo `pyshim install`: restore the venv's bin/.");
  sub->add_option("VENV", *venv, "The shim venv")->required();
  sub->add_flag("--dry-run", *dry, "Print each file it would put back or remove; change nothing.");
  sub->footer("Examples:\n  pyshim uninstall .venv\n  pyshim uninstall .venv --dry-run");
  sub->callback([venv, dry, &context] { context.exit_code = run_uninstall(*venv, *dry); });
}

}  // namespace pyshim::cli
