// install, uninstall and the config they write, planned on facts alone: no
// disk, no processes (install_plan.hpp).
#include "pyshim/install_plan.hpp"

#include <elf.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "pyshim/elf.hpp"
#include "pyshim/launch.hpp"

namespace pyshim {
namespace {

using Kind = FileAction::Kind;

BinEntry link(std::string name, std::string target) {
  return {std::move(name), BinEntry::Kind::kSymlink, std::move(target), false, 1, 0};
}
BinEntry file(std::string name, std::uint64_t ino, bool launcher = false) {
  return {std::move(name), BinEntry::Kind::kFile, {}, launcher, 1, ino};
}

// A minimal ELF64 image with a .pyshim.stamp section holding an unstamped
// area of this version: what the launcher binary looks like to the plan.
std::string launcher_image(std::string_view version) {
  std::string area = empty_stamp_area(version);
  const std::string names = std::string("\0.shstrtab\0", 11) + std::string(kStampSection) + '\0';
  Elf64_Ehdr ehdr{};
  std::memcpy(ehdr.e_ident, ELFMAG, SELFMAG);
  ehdr.e_ident[EI_CLASS] = ELFCLASS64;
  ehdr.e_ident[EI_DATA] = ELFDATA2LSB;
  ehdr.e_shentsize = sizeof(Elf64_Shdr);
  ehdr.e_shnum = 3;
  ehdr.e_shstrndx = 1;
  std::size_t area_at = sizeof ehdr;
  std::size_t names_at = area_at + area.size();
  ehdr.e_shoff = names_at + names.size();
  Elf64_Shdr shdr[3]{};
  shdr[1].sh_name = 1;
  shdr[1].sh_type = SHT_STRTAB;
  shdr[1].sh_offset = names_at;
  shdr[1].sh_size = names.size();
  shdr[2].sh_name = 11;
  shdr[2].sh_type = SHT_PROGBITS;
  shdr[2].sh_offset = area_at;
  shdr[2].sh_size = area.size();
  std::string image(reinterpret_cast<const char*>(&ehdr), sizeof ehdr);
  image += area + names;
  image.append(reinterpret_cast<const char*>(shdr), sizeof shdr);
  return image;
}

// A venv as `python3.11 -m venv` leaves it, before any install.
InstallFacts fresh_venv() {
  InstallFacts facts;
  facts.venv = "/home/u/venv";
  facts.interpreter = "/usr/bin/python3.11";
  facts.pyvenv_cfg = "home = /usr/bin\nversion = 3.11.2\n";
  facts.bin = {file("activate", 5), link("python", "python3.11"), link("python3", "python3.11"),
               link("python3.11", "/usr/bin/python3.11")};
  facts.site = {SiteDir{"lib/python3.11/site-packages", false, false, false, {}}};
  facts.config.cwd = "/home/u";
  facts.launcher = "/usr/lib/pyshim/pyshim-launcher";
  facts.launcher_image = launcher_image("0.3.0");
  facts.restore_library = "/usr/lib/pyshim/libpyshim-restore.so";
  facts.restore_image = "restore library bytes";
  facts.startup_module = "# the hook module\n";
  return facts;
}

// The same venv after a default install: launchers in bin/, a manifest, a
// pyshim.toml (given as the config facts' current file).
InstallFacts installed_venv(const std::string& config_text) {
  InstallFacts facts = fresh_venv();
  facts.installed = true;
  facts.configured_interpreter = facts.interpreter;
  facts.bin = {file("activate", 5), link("python", "python3.11"), link("python3", "python3.11"),
               file("python3.11", 7, true)};
  facts.config.current = *parse_config(config_text, "/home/u/venv/pyshim.toml");
  return facts;
}

std::size_t index_of(const std::vector<FileAction>& actions, Kind kind, std::string_view dir,
                     std::string_view name) {
  for (std::size_t i = 0; i < actions.size(); ++i) {
    if (actions[i].kind == kind && actions[i].dir == dir && actions[i].name == name) return i;
  }
  return actions.size();
}

std::vector<std::string> lines(const std::vector<FileAction>& actions) {
  std::vector<std::string> out;
  for (const FileAction& action : actions) out.push_back(describe(action));
  return out;
}

TEST(PlanInstall, FreshVenvBacksUpThenWritesConfigThenLaunchersAndBaseLauncher) {
  InstallOptions options;
  auto plan = plan_install(fresh_venv(), options);
  ASSERT_TRUE(plan.ok()) << format_error(plan.error());
  EXPECT_TRUE(plan->copy);
  EXPECT_EQ(plan->names, (std::vector<std::string>{"python", "python3", "python3.11"}));
  EXPECT_EQ(plan->main_name, "python3.11");
  EXPECT_EQ(plan->base_relative, ".pyshim/base/bin/python3.11");
  EXPECT_EQ(plan->spec.config.interpreter.value, "/usr/bin/python3.11");
  EXPECT_NE(plan->config_text.find("interpreter = '/usr/bin/python3.11'"), std::string::npos)
      << plan->config_text;
  // The stamp is known before anything is written, but for the identity of
  // the file not yet written.
  EXPECT_EQ(plan->stamp.source, "/home/u/venv/pyshim.toml");
  EXPECT_EQ(plan->stamp.restore_library, "/home/u/venv/lib/pyshim/libpyshim-restore.so");
  EXPECT_EQ(plan->stamp.config.interpreter.value, "/usr/bin/python3.11");
  EXPECT_EQ(plan->stamp.identity, FileIdentity{});
  EXPECT_EQ(plan->stamp_version, "0.3.0");
  EXPECT_TRUE(plan->linked) << "pyvenv.cfg says 3.11: getpath finds the base launcher";
  const std::vector<std::string> expected = {
      "sync .pyshim/backup",
      "write .pyshim/manifest.toml (" + std::to_string(plan->actions[1].text.size()) +
          " bytes, mode 0644)",
      "write pyshim.toml (" + std::to_string(plan->config_text.size()) + " bytes, mode 0644)",
      "stamp the launchers with pyshim.toml as written (its identity)",
      "write lib/pyshim/libpyshim-restore.so (21 bytes, mode 0644)",
      "write .pyshim/base/bin/python3.11: the stamped launcher (mode 0755)",
      "link .pyshim/base/bin/python as a symlink -> python3.11",
      "link .pyshim/base/bin/python3 as a symlink -> python3.11",
      "link .pyshim/base/lib as a symlink -> ../../lib",
      "link bin/python3.11 as a symlink -> ../.pyshim/base/bin/python3.11",
      "link bin/python as a symlink -> python3.11",
      "link bin/python3 as a symlink -> python3.11",
      "remove lib/python3.11/site-packages/pyshim-base-executable.pth",
      "remove lib/python3.11/site-packages/pyshim-startup.pth",
      "remove lib/python3.11/site-packages/_pyshim_startup.py",
  };
  EXPECT_EQ(lines(plan->actions), expected);
  // Only symlinks in bin/: nothing to back up, the manifest records them.
  auto manifest = parse_manifest(plan->actions[1].text, "m");
  ASSERT_TRUE(manifest.ok());
  EXPECT_EQ(manifest->entries.size(), 3u);
}

// Before 3.11 CPython computes no base executable for a venv: bin/ gets a
// launcher copy of its own and a .pth names the base launcher.
InstallFacts fresh_venv_310() {
  InstallFacts facts = fresh_venv();
  facts.interpreter = "/usr/bin/python3.10";
  facts.pyvenv_cfg = "home = /usr/bin\nversion = 3.10.13\n";
  facts.bin = {file("activate", 5), link("python", "python3.10"), link("python3", "python3.10"),
               link("python3.10", "/usr/bin/python3.10")};
  facts.site = {SiteDir{"lib/python3.10/site-packages", false, false, false, {}}};
  return facts;
}

TEST(PlanInstall, Before311BinHasItsOwnLauncherAndAPthNamesTheBaseLauncher) {
  auto plan = plan_install(fresh_venv_310(), InstallOptions{});
  ASSERT_TRUE(plan.ok()) << format_error(plan.error());
  EXPECT_FALSE(plan->linked);
  const std::vector<std::string> expected = {
      "sync .pyshim/backup",
      "write .pyshim/manifest.toml (" + std::to_string(plan->actions[1].text.size()) +
          " bytes, mode 0644)",
      "write pyshim.toml (" + std::to_string(plan->config_text.size()) + " bytes, mode 0644)",
      "stamp the launchers with pyshim.toml as written (its identity)",
      "write lib/pyshim/libpyshim-restore.so (21 bytes, mode 0644)",
      "write bin/python3.10: the stamped launcher (mode 0755)",
      "link bin/python as a symlink -> python3.10",
      "link bin/python3 as a symlink -> python3.10",
      "write .pyshim/base/bin/python3.10: the stamped launcher (mode 0755)",
      "link .pyshim/base/bin/python as a symlink -> python3.10",
      "link .pyshim/base/bin/python3 as a symlink -> python3.10",
      "link .pyshim/base/lib as a symlink -> ../../lib",
      "write lib/python3.10/site-packages/pyshim-base-executable.pth (74 bytes, mode 0644)",
      "remove lib/python3.10/site-packages/pyshim-startup.pth",
      "remove lib/python3.10/site-packages/_pyshim_startup.py",
  };
  EXPECT_EQ(lines(plan->actions), expected);
  EXPECT_EQ(plan->actions[12].text,
            "import sys;sys._base_executable=sys.prefix+'/.pyshim/base/bin/python3.10'\n");
}

TEST(PlanInstall, WithHooksOnePthDoesBothBefore311AndOnlyTheHooksFrom311) {
  InstallOptions options;
  options.startup = {"mymod:init"};
  for (bool before_311 : {true, false}) {
    InstallFacts facts = before_311 ? fresh_venv_310() : fresh_venv();
    auto plan = plan_install(facts, options);
    ASSERT_TRUE(plan.ok()) << format_error(plan.error());
    const std::string& site = facts.site[0].dir;
    const auto& a = plan->actions;
    EXPECT_LT(index_of(a, Kind::kRemove, site, "pyshim-base-executable.pth"), a.size());
    std::size_t pth = index_of(a, Kind::kWrite, site, "pyshim-startup.pth");
    ASSERT_LT(pth, a.size());
    EXPECT_EQ(a[pth].text, before_311
                               ? "import sys;sys._base_executable=sys.prefix+'/.pyshim/base/bin/"
                                 "python3.10';import _pyshim_startup;_pyshim_startup.run()\n"
                               : "import _pyshim_startup; _pyshim_startup.run()\n");
  }
}

TEST(PlanInstall, AFolderWhereTheBaseLibLinkBelongsIsReplaced) {
  InstallFacts facts = fresh_venv();
  facts.base_lib_is_folder = true;
  auto plan = plan_install(facts, InstallOptions{});
  ASSERT_TRUE(plan.ok()) << format_error(plan.error());
  const auto& a = plan->actions;
  std::size_t removed = index_of(a, Kind::kRemove, ".pyshim/base", "lib");
  std::size_t linked = index_of(a, Kind::kSymlink, ".pyshim/base", "lib");
  ASSERT_LT(linked, a.size());
  EXPECT_LT(removed, linked);
  EXPECT_EQ(index_of(plan_install(fresh_venv(), InstallOptions{})->actions, Kind::kRemove,
                     ".pyshim/base", "lib"),
            plan_install(fresh_venv(), InstallOptions{})->actions.size())
      << "a link already there is replaced in place, nothing removed first";
}

TEST(PlanInstall, TheLayoutFollowsPyvenvCfgsVersion) {
  EXPECT_TRUE(links_to_base_launcher("home = /usr/bin\nversion = 3.11.2\n"));
  EXPECT_TRUE(links_to_base_launcher("version_info = 3.13.0.final.0\n"));
  EXPECT_TRUE(links_to_base_launcher("version = 4.0\n"));
  EXPECT_FALSE(links_to_base_launcher("version = 3.10.13\n"));
  EXPECT_FALSE(links_to_base_launcher("version = 3.8\n"));
  EXPECT_FALSE(links_to_base_launcher("home = /usr/bin\n")) << "no version: keep the .pth";
  EXPECT_FALSE(links_to_base_launcher("version = three\n"));
}

TEST(PlanInstall, OriginalFilesAreBackedUpBeforeTheManifestAndBeforeBinChanges) {
  InstallFacts facts = fresh_venv();
  facts.bin = {file("python", 8), link("python3", "python"), link("python3.11", "python")};
  auto plan = plan_install(facts, InstallOptions{});
  ASSERT_TRUE(plan.ok()) << format_error(plan.error());
  const auto& a = plan->actions;
  std::size_t backup = index_of(a, Kind::kLink, ".pyshim/backup", "python");
  std::size_t manifest = index_of(a, Kind::kWrite, ".pyshim", "manifest.toml");
  ASSERT_LT(backup, a.size());
  EXPECT_EQ(a[backup].from, "bin");
  EXPECT_EQ(describe(a[backup]), "back up bin/python in .pyshim/backup");
  EXPECT_LT(backup, manifest);
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].dir == "bin") {
      EXPECT_GT(i, manifest) << describe(a[i]);
    }
  }
  // No python3.X entry is a file: the one that is (python) carries the launcher.
  EXPECT_EQ(plan->main_name, "python3.11") << "pyvenv.cfg's version names an existing entry";
  facts.bin = {file("python", 8), link("python3", "python")};
  plan = plan_install(facts, InstallOptions{});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->main_name, "python");
}

TEST(PlanInstall, ReinstallChangingOneKeyChangesOnlyTheConfigAndTheStamp) {
  InstallFacts facts = fresh_venv();
  auto first = plan_install(facts, InstallOptions{});
  ASSERT_TRUE(first.ok());
  InstallFacts again = installed_venv(first->config_text);
  auto same = plan_install(again, InstallOptions{});
  ASSERT_TRUE(same.ok()) << format_error(same.error());
  EXPECT_EQ(same->config_text, first->config_text) << "no option: the file stays as it is";
  EXPECT_EQ(index_of(same->actions, Kind::kWrite, ".pyshim", "manifest.toml"), same->actions.size())
      << "the manifest is written once, by the first install";

  InstallOptions options;
  options.env = {"MALLOC_ARENA_MAX=2"};
  auto changed = plan_install(again, options);
  ASSERT_TRUE(changed.ok()) << format_error(changed.error());
  EXPECT_NE(changed->config_text.find("MALLOC_ARENA_MAX = '2'"), std::string::npos);
  ASSERT_EQ(changed->stamp.config.env.size(), 1u);
  EXPECT_EQ(changed->stamp.config.env[0].name, "MALLOC_ARENA_MAX");
  ASSERT_EQ(changed->actions.size(), same->actions.size());
  for (std::size_t i = 0; i < same->actions.size(); ++i) {
    FileAction a = same->actions[i];
    FileAction b = changed->actions[i];
    if (a.kind == Kind::kWrite && a.dir.empty() && a.name == "pyshim.toml") {
      EXPECT_NE(a.text, b.text);
      continue;
    }
    EXPECT_EQ(a, b) << describe(a) << " / " << describe(b);
  }
}

TEST(PlanInstall, ReinstallKeepsWhatNoOptionNamesAndResetDropsIt) {
  InstallFacts facts = installed_venv(
      "interpreter = \"/usr/bin/python3.11\"\npreload = [\"/usr/lib/libjemalloc.so.2\"]\n"
      "[env]\nA = \"1\"\n[dynlib]\nexclude = [\"big/**\"]\n");
  InstallOptions options;
  options.env = {"B=2"};
  auto plan = plan_install(facts, options);
  ASSERT_TRUE(plan.ok()) << format_error(plan.error());
  EXPECT_EQ(values(plan->spec.config.preload),
            std::vector<std::string>{"/usr/lib/libjemalloc.so.2"});
  ASSERT_EQ(plan->spec.config.env.size(), 2u);
  EXPECT_EQ(plan->spec.config.env[0].name, "A");
  EXPECT_EQ(plan->spec.config.env[1].name, "B");
  options.reset = true;
  plan = plan_install(facts, options);
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->spec.config.preload.empty());
  ASSERT_EQ(plan->spec.config.env.size(), 1u);
  EXPECT_EQ(values(plan->spec.config.dynlib_exclude), std::vector<std::string>{"big/**"})
      << "[dynlib] exclude has no option: kept even by --reset";
}

TEST(PlanInstall, UpgradeStampsTheNewLauncherVersionAndCopiesTheNewRestoreLibrary) {
  InstallFacts facts = installed_venv("interpreter = \"/usr/bin/python3.11\"\n");
  facts.launcher_image = launcher_image("0.4.0");
  facts.restore_image = "the new restore library";
  auto plan = plan_install(facts, InstallOptions{});
  ASSERT_TRUE(plan.ok()) << format_error(plan.error());
  EXPECT_EQ(plan->stamp_version, "0.4.0");
  std::size_t restore = index_of(plan->actions, Kind::kWrite, "lib/pyshim", "libpyshim-restore.so");
  ASSERT_LT(restore, plan->actions.size());
  EXPECT_EQ(plan->actions[restore].text, "the new restore library");
  EXPECT_EQ(index_of(plan->actions, Kind::kLink, ".pyshim/backup", "python3.11"),
            plan->actions.size())
      << "the launcher now in bin/ is not backed up as an original";
  // The image each launcher gets: the new binary, its area stamped.
  plan->stamp.identity = {1, 2, 3, 4, 5};
  auto image = stamped_launcher(*plan, facts.launcher, facts.launcher_image);
  ASSERT_TRUE(image.ok()) << format_error(image.error());
  auto range = find_section(*image, kStampSection);
  ASSERT_TRUE(range.has_value());
  auto decoded = decode_stamp(std::string_view(*image).substr(range->offset, range->size));
  ASSERT_TRUE(decoded.ok());
  ASSERT_TRUE(decoded->has_value());
  EXPECT_EQ((*decoded)->identity, (FileIdentity{1, 2, 3, 4, 5}));
  EXPECT_EQ((*decoded)->source, "/home/u/venv/pyshim.toml");
  EXPECT_EQ(stamp_version(std::string_view(*image).substr(range->offset, range->size)), "0.4.0");
}

TEST(PlanInstall, ALauncherWithoutAStampAreaIsRefusedBeforeAnythingIsWritten) {
  InstallFacts facts = fresh_venv();
  facts.launcher_image = "not an ELF file";
  auto plan = plan_install(facts, InstallOptions{});
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message.find("has no stamp area"), std::string::npos)
      << plan.error().message;
}

TEST(PlanInstall, AnotherInterpreterNeedsForce) {
  InstallFacts facts = installed_venv("interpreter = \"/usr/bin/python3.11\"\n");
  facts.interpreter = "/opt/python3.12/bin/python3.12";
  auto plan = plan_install(facts, InstallOptions{});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().hint, "pass --force to switch it to /opt/python3.12/bin/python3.12");
  InstallOptions options;
  options.force = true;
  plan = plan_install(facts, options);
  ASSERT_TRUE(plan.ok()) << format_error(plan.error());
  EXPECT_EQ(plan->stamp.config.interpreter.value, "/opt/python3.12/bin/python3.12");
}

TEST(PlanInstall, SymlinkLinksEveryNameToTheSharedLauncherAndRemovesTheCopiesLast) {
  InstallFacts facts = installed_venv("interpreter = \"/usr/bin/python3.11\"\n");
  InstallOptions options;
  options.symlink = true;
  auto plan = plan_install(facts, options);
  ASSERT_TRUE(plan.ok()) << format_error(plan.error());
  EXPECT_FALSE(plan->copy);
  EXPECT_EQ(plan->stamp.restore_library, "/usr/lib/pyshim/libpyshim-restore.so");
  const auto& a = plan->actions;
  for (const char* name : {"python", "python3", "python3.11"}) {
    std::size_t i = index_of(a, Kind::kSymlink, "bin", name);
    ASSERT_LT(i, a.size()) << name;
    EXPECT_EQ(a[i].text, "/usr/lib/pyshim/pyshim-launcher");
  }
  EXPECT_EQ(index_of(a, Kind::kWrite, "lib/pyshim", "libpyshim-restore.so"), a.size());
  EXPECT_LT(index_of(a, Kind::kWriteLauncher, ".pyshim/base/bin", "python3.11"), a.size())
      << "the base launcher is a stamped copy in either layout";
  EXPECT_EQ(describe(a.back()), "remove lib/pyshim")
      << "the copies' restore library goes last: a copy started before still finds it";
}

TEST(PlanInstall, PyPyGetsACopyAndNoBaseLauncher) {
  InstallFacts facts = fresh_venv();
  facts.interpreter = "/opt/pypy3.10/bin/pypy3.10";
  facts.pypy = true;
  facts.pyvenv_cfg = "home = /opt/pypy3.10/bin\nversion = 3.10.14\n";
  facts.bin = {link("pypy", "pypy3.10"),
               link("pypy3", "pypy3.10"),
               link("pypy3.10", "/opt/pypy3.10/bin/pypy3.10"),
               link("python", "pypy3.10"),
               link("python3", "pypy3.10"),
               link("python3.10", "pypy3.10")};
  InstallOptions options;
  options.symlink = true;
  auto plan = plan_install(facts, options);
  ASSERT_TRUE(plan.ok()) << format_error(plan.error());
  EXPECT_TRUE(plan->copy) << "PyPy resolves argv[0]'s link: it needs a copy";
  EXPECT_EQ(plan->main_name, "python3.10");
  EXPECT_TRUE(plan->base_relative.empty());
  for (const FileAction& action : plan->actions) {
    EXPECT_FALSE(action.dir.starts_with(".pyshim/base")) << describe(action);
  }
  EXPECT_LT(index_of(plan->actions, Kind::kRemove, "lib/python3.11/site-packages",
                     "pyshim-base-executable.pth"),
            plan->actions.size());
  EXPECT_LT(index_of(plan->actions, Kind::kWriteLauncher, "bin", "python3.10"),
            plan->actions.size());
}

TEST(PlanInstall, StartupHooksWriteTheModuleAndCompileItOnlyWhenNeeded) {
  InstallFacts facts = fresh_venv();
  InstallOptions options;
  options.startup = {"mypkg.boot:run"};
  auto plan = plan_install(facts, options);
  ASSERT_TRUE(plan.ok()) << format_error(plan.error());
  const std::string site = "lib/python3.11/site-packages";
  std::size_t module = index_of(plan->actions, Kind::kWrite, site, "_pyshim_startup.py");
  std::size_t compile = index_of(plan->actions, Kind::kCompile, site, "_pyshim_startup.py");
  ASSERT_LT(module, plan->actions.size());
  EXPECT_EQ(plan->actions[module].text, "# the hook module\n");
  ASSERT_LT(compile, plan->actions.size());
  EXPECT_GT(compile, module);
  EXPECT_EQ(plan->actions[compile].text, "/usr/bin/python3.11");
  facts.site[0].module_current = true;
  facts.site[0].has_bytecode = true;
  plan = plan_install(facts, options);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(index_of(plan->actions, Kind::kCompile, site, "_pyshim_startup.py"),
            plan->actions.size());
  options.startup = {"not a hook"};
  EXPECT_FALSE(plan_install(facts, options).ok());
}

TEST(PlanInstall, RefusesAVenvWithoutInterpretersOrSitePackages) {
  InstallFacts facts = fresh_venv();
  facts.bin = {file("activate", 5)};
  auto plan = plan_install(facts, InstallOptions{});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().message, "/home/u/venv/bin has no python executables");
  facts = fresh_venv();
  facts.site.clear();
  plan = plan_install(facts, InstallOptions{});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().message, "/home/u/venv has no lib/*/site-packages");
}

TEST(PlanInstall, LayersAppendTheirFoldersAndSyncTheVenvsOwnDynlib) {
  InstallFacts facts = fresh_venv();
  facts.config.layer_dirs = {"/home/u/venv/share/venv/dynlib", "/opt/base/share/venv/dynlib"};
  InstallOptions options;
  options.layers = {"/opt/base"};
  options.library_path_append = {"extra"};
  auto plan = plan_install(facts, options);
  ASSERT_TRUE(plan.ok()) << format_error(plan.error());
  EXPECT_EQ(values(plan->spec.config.library_path),
            (std::vector<std::string>{"/home/u/venv/share/venv/dynlib",
                                      "/opt/base/share/venv/dynlib", "/home/u/extra"}));
  EXPECT_EQ(plan->spec.config.library_path_position, Position::kAppend);
  EXPECT_LT(index_of(plan->actions, Kind::kSyncDynlib, "share/venv/dynlib", ""),
            plan->actions.size());
  options.library_path = {"/x"};
  EXPECT_FALSE(check_config_options(options).ok());
}

TEST(PlanConfig, PresetsAsGatheredSanitizersFirstAndAsanOptions) {
  ConfigFacts facts;
  facts.cwd = "/work";
  facts.preload = {{"jemalloc", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
                    "preload 'jemalloc': libjemalloc.so.2 from the loader cache -> /usr/lib/"
                    "x86_64-linux-gnu/libjemalloc.so.2"},
                   {"asan", "/usr/lib/gcc/x86_64-linux-gnu/12/libasan.so.8", "asan note"}};
  InstallOptions options;
  options.preload = {"jemalloc", "asan"};
  options.python_path = {"./src"};
  auto spec = plan_config(options, "/usr/bin/python3", facts);
  ASSERT_TRUE(spec.ok()) << format_error(spec.error());
  EXPECT_EQ(values(spec->config.preload),
            (std::vector<std::string>{"/usr/lib/gcc/x86_64-linux-gnu/12/libasan.so.8",
                                      "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}));
  ASSERT_EQ(spec->config.env.size(), 1u);
  EXPECT_EQ(spec->config.env[0].name, "ASAN_OPTIONS");
  EXPECT_EQ(spec->config.env[0].value, "detect_leaks=0");
  EXPECT_EQ(spec->notes.size(), 3u) << "two presets and the ASAN_OPTIONS line";
  EXPECT_EQ(values(spec->config.python_path), std::vector<std::string>{"/work/src"});
  options.env = {"ASAN_OPTIONS=halt_on_error=0"};
  spec = plan_config(options, "/usr/bin/python3", facts);
  ASSERT_TRUE(spec.ok());
  ASSERT_EQ(spec->config.env.size(), 1u);
  EXPECT_EQ(spec->config.env[0].value, "halt_on_error=0") << "the user's value is kept";
  options.env = {"LD_PRELOAD=/x.so"};
  EXPECT_FALSE(plan_config(options, "/usr/bin/python3", facts).ok());
}

// Uninstall of a venv whose bin/python3.11 was a file (now a launcher) and
// whose hooks were enabled.
UninstallFacts installed_with_hooks() {
  UninstallFacts facts;
  facts.has_state_dir = true;
  facts.installed = true;
  facts.manifest = {true, {{"python", "python3.11"}, {"python3.11", std::nullopt}}};
  facts.bin = {link("python", "python3.11"), file("python3.11", 70, true)};
  facts.backup = {file("python3.11", 7)};
  facts.site = {SiteDir{
      "lib/python3.11/site-packages", true, true, true, {"_pyshim_startup.cpython-311.pyc"}}};
  return facts;
}

TEST(PlanUninstall, RestoresBackupsThenRemovesEverythingPyshimAddedTheManifestLast) {
  auto plan = plan_uninstall(installed_with_hooks());
  ASSERT_TRUE(plan.ok()) << format_error(plan.error());
  const std::vector<std::string> expected = {
      "restore bin/python3.11 from .pyshim/backup/python3.11",
      "remove pyshim.toml",
      "remove lib/pyshim",
      "remove lib/python3.11/site-packages/pyshim-base-executable.pth",
      "remove lib/python3.11/site-packages/pyshim-startup.pth",
      "remove lib/python3.11/site-packages/_pyshim_startup.py",
      "remove lib/python3.11/site-packages/__pycache__/_pyshim_startup.cpython-311.pyc",
      "remove lib/python3.11/site-packages/__pycache__",
      "remove .pyshim/base",
      "remove .pyshim/backup",
      "remove .pyshim/manifest.toml",
      "remove .pyshim",
  };
  EXPECT_EQ(lines(*plan), expected);
  EXPECT_EQ((*plan)[0].kind, Kind::kLink);
  EXPECT_EQ((*plan)[0].from, ".pyshim/backup");
}

TEST(PlanUninstall, KeepsABytecodeFolderOthersUseAndRestoresLinks) {
  UninstallFacts facts = installed_with_hooks();
  facts.site[0].cache.push_back("six.cpython-311.pyc");
  facts.bin = {link("python", "python3.11"), link("python3.11", "python3")};
  facts.manifest.entries.push_back({"python3", "/usr/bin/python3"});
  facts.bin.push_back(link("python3", "python3.11"));
  auto plan = plan_uninstall(facts);
  ASSERT_TRUE(plan.ok()) << format_error(plan.error());
  auto described = lines(*plan);
  EXPECT_NE(std::find(described.begin(), described.end(),
                      "restore bin/python3 as a symlink -> /usr/bin/python3"),
            described.end());
  EXPECT_EQ(std::find(described.begin(), described.end(),
                      "remove lib/python3.11/site-packages/__pycache__"),
            described.end());
}

TEST(PlanUninstall, ADamagedBackupPlansNothingAndAnInterruptedOneRemovesTheStateFolder) {
  UninstallFacts facts = installed_with_hooks();
  facts.backup = {link("python3.11", "/bin/bash")};
  EXPECT_FALSE(plan_uninstall(facts).ok());
  UninstallFacts interrupted;
  interrupted.has_state_dir = true;
  auto plan = plan_uninstall(interrupted);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(lines(*plan), std::vector<std::string>{"remove .pyshim"});
  plan = plan_uninstall(UninstallFacts{});
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->empty());
}

}  // namespace
}  // namespace pyshim

namespace pyshim {
namespace {

TEST(InstallSummary, NamesTheLaunchersTheirLayoutAndTheBaseLauncher) {
  InstallFacts facts = fresh_venv();
  auto plan = plan_install(facts, InstallOptions{});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(install_summary(*plan, facts),
            "installed pyshim into /home/u/venv\n"
            "  interpreter: /usr/bin/python3.11\n"
            "  config:      /home/u/venv/pyshim.toml\n"
            "  launchers:   python, python3, python3.11 -> .pyshim/base/bin/python3.11 (a stamped "
            "copy of /usr/lib/pyshim/pyshim-launcher)\n"
            "  base:        /home/u/venv/.pyshim/base/bin/python3.11 (sys._base_executable: "
            "derived venvs use it)\n");
}

}  // namespace
}  // namespace pyshim

namespace pyshim {
namespace {

TEST(PlanInit, CreatesWithoutPipThenInstallsWithThePreloadsAlreadyResolved) {
  InstallOptions options;
  options.venv = "env";
  options.python = "python3.11";
  options.preload = {"jemalloc"};
  auto plan = plan_init(options, false, {{"jemalloc", "/usr/lib/libjemalloc.so.2", "note"}});
  EXPECT_EQ(plan.create,
            (std::vector<std::string>{"python3.11", "-m", "venv", "--without-pip", "env"}));
  EXPECT_TRUE(plan.install.python.empty()) << "read back from the new venv's pyvenv.cfg";
  EXPECT_TRUE(plan.install.launch_check_follows);
  ASSERT_TRUE(plan.install.resolved_preload.has_value());
  EXPECT_EQ(plan.install.resolved_preload->at(0).path, "/usr/lib/libjemalloc.so.2");
  EXPECT_EQ(plan.install.preload, options.preload);
  EXPECT_EQ(plan_init(options, true, {}).create,
            (std::vector<std::string>{"python3.11", "-m", "venv", "env"}));
}

}  // namespace
}  // namespace pyshim
