// pyshim uninstall VENV: put back exactly what install replaced.
// Gather (the manifest, bin/, the backups, site-packages) -> plan
// (plan_uninstall, install_plan.hpp: everything it restores or removes) ->
// apply (apply_plan, install.hpp).
#include <sys/stat.h>

#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "install.hpp"
#include "pyshim/cli.hpp"
#include "pyshim/dir.hpp"
#include "pyshim/install_plan.hpp"
#include "pyshim/os.hpp"
#include "venv_files.hpp"

namespace fs = std::filesystem;

namespace pyshim::cli {
namespace {

Result<UninstallFacts> gather_uninstall(const Dir& root) {
  UninstallFacts facts;
  auto state = read_venv_state(root);
  if (!state) return state.take_error();
  facts.installed = state->installed;
  facts.has_state_dir = root.stat(kStateDir).has_value();
  if (!facts.installed) return facts;
  auto bin = root.sub("bin", false);
  if (!bin) {
    throw fs::filesystem_error("no bin/ folder", root.path_of("bin"),
                               std::make_error_code(std::errc::no_such_file_or_directory));
  }
  Dir state_dir = *root.sub(kStateDir, false);
  std::string where = state_dir.path_of(kManifestName);
  auto text = state_dir.read(kManifestName, 1 << 20);
  if (!text) {
    return Error{ErrorKind::kUsage,
                 "cannot read the install manifest",
                 {"manifest: " + where},
                 "it must be a regular file; recreate the venv if it was damaged"};
  }
  auto manifest = parse_manifest(*text, where);
  if (!manifest) return manifest.take_error();
  facts.manifest = std::move(*manifest);
  facts.bin = gather_entries(*bin);
  if (auto backup = state_dir.sub(std::string(kBackupDirName), false)) {
    facts.backup = gather_entries(*backup);
  }
  facts.site = gather_site_dirs(root, {});
  return facts;
}

int run_uninstall(const std::string& venv_arg, bool dry) {
  set_dry_run(dry);
  fs::path venv = absolute_path(venv_arg);
  VenvLock lock = VenvLock::open(venv.string());
  auto facts = gather_uninstall(lock.root());
  if (!facts) return print_error(facts.error());
  if (!facts->installed && !facts->has_state_dir) {
    return print_error(
        Error{ErrorKind::kUsage,
              fmt::format("{} is not a venv installed by `pyshim install`", venv_arg),
              {fmt::format("missing: {}", (venv / kStateDir / kManifestName).string())},
              "nothing to undo"});
  }
  auto plan = plan_uninstall(*facts);
  if (!plan) return print_error(plan.error());
  auto applied = apply_plan(lock.root(), *plan, nullptr);
  if (!applied) return print_error(applied.error());
  if (!facts->installed) {
    // No manifest but .pyshim/ is there: an install stopped before it wrote
    // the manifest (bin/ untouched, backups are extra links) or an uninstall
    // stopped after removing it. Either way only .pyshim/ was left to remove.
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
