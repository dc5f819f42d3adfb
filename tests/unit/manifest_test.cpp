#include "pyshim/manifest.hpp"

#include <gtest/gtest.h>

namespace pyshim {
namespace {

BinEntry link(std::string name, std::string target) {
  return {std::move(name), BinEntry::Kind::kSymlink, std::move(target), false, 1, 0};
}
BinEntry file(std::string name, std::uint64_t ino, bool launcher = false) {
  return {std::move(name), BinEntry::Kind::kFile, {}, launcher, 1, ino};
}

TEST(PlanRecord, BacksUpEveryFileBeforeTheManifestAndRecordsLinks) {
  auto steps = plan_record({file("python3.11", 10), link("python", "python3.11"),
                            file("activate", 11), link("python3", "python3.11")},
                           true);
  ASSERT_TRUE(steps.ok()) << format_error(steps.error());
  ASSERT_EQ(steps->size(), 2u);
  EXPECT_EQ((*steps)[0].kind, StepKind::kBackup);
  EXPECT_EQ((*steps)[0].name, "python3.11");
  EXPECT_EQ((*steps)[1].kind, StepKind::kWriteManifest) << "the manifest comes last";
  auto manifest = parse_manifest((*steps)[1].text, "m");
  ASSERT_TRUE(manifest.ok());
  ASSERT_EQ(manifest->entries.size(), 3u) << "activate is not an interpreter";
  EXPECT_FALSE(manifest->entries[0].symlink.has_value());
  EXPECT_EQ(manifest->entries[1].symlink, "python3.11");
}

TEST(PlanRecord, RefusesALauncherWithoutAManifest) {
  auto steps = plan_record({file("python3.11", 10, /*launcher=*/true)}, true);
  ASSERT_FALSE(steps.ok());
  EXPECT_EQ(steps.error().message,
            "bin/python3.11 is already a pyshim launcher, but the venv has no install manifest");
}

TEST(PlanRecord, RefusesALinkToTheBaseLauncherWithoutAManifest) {
  // A 3.11+ shim venv's bin/python3.X links to its base launcher: it is
  // install's own, not an original to put back.
  auto steps = plan_record(
      {link("python", "python3.11"), link("python3.11", "../.pyshim/base/bin/python3.11")}, true);
  ASSERT_FALSE(steps.ok());
  EXPECT_EQ(steps.error().message,
            "bin/python3.11 is already a pyshim launcher, but the venv has no install manifest");
}

TEST(PlanRestore, PutsBackWhatChangedAndSkipsWhatIsAlreadyBack) {
  Manifest m{
      true,
      {{"python3.11", std::nullopt}, {"python", "python3.11"}, {"python3", "/usr/bin/python3"}}};
  std::vector<BinEntry> backup = {file("python3.11", 10)};
  // Half restored: python3.11 is the original inode again, python is right.
  auto steps = plan_restore(
      m, {file("python3.11", 10), link("python", "python3.11"), link("python3", "python3.11")},
      backup);
  ASSERT_TRUE(steps.ok());
  ASSERT_EQ(steps->size(), 1u);
  EXPECT_EQ((*steps)[0].kind, StepKind::kRestoreLink);
  EXPECT_EQ((*steps)[0].text, "/usr/bin/python3");
  steps = plan_restore(m, {file("python3.11", 99, true)}, backup);
  ASSERT_TRUE(steps.ok());
  EXPECT_EQ(steps->size(), 3u) << "a missing name is restored too";
}

TEST(PlanRestore, AMissingOrPlantedBackupChangesNothing) {
  Manifest m{true, {{"python3.11", std::nullopt}}};
  auto steps = plan_restore(m, {file("python3.11", 99, true)}, {});
  ASSERT_FALSE(steps.ok());
  steps = plan_restore(m, {file("python3.11", 99, true)}, {link("python3.11", "/bin/bash")});
  ASSERT_FALSE(steps.ok());
  EXPECT_NE(steps.error().message.find("not a regular file"), std::string::npos);
}

TEST(PlanRestore, AFileAlreadyBackWhoseBackupIsGoneIsSkipped) {
  // An uninstall killed while it removed .pyshim/backup/: bin/ is restored.
  Manifest m{true, {{"python3.11", std::nullopt}}};
  auto steps = plan_restore(m, {file("python3.11", 10)}, {});
  ASSERT_TRUE(steps.ok());
  EXPECT_TRUE(steps->empty());
}

TEST(ParseManifest, RejectsNamesThatLeaveBinAndUnknownBackups) {
  for (const char* text : {
           "schema = 1\n[[replaced]]\nname = '../../etc/passwd'\nfile = true\n",
           "schema = 1\n[[replaced]]\nname = 'python'\nfile = '../../../bin/bash'\n",
           "schema = 1\n[[replaced]]\nname = 'python'\n",
           "schema = 1\n[[replaced]]\nname = 'python'\nfile = true\n[[replaced]]\nname = "
           "'python'\nfile = true\n",
           "schema = 2\n[[replaced]]\nname = 'python'\nfile = true\n",
           "not toml at all [",
       }) {
    EXPECT_FALSE(parse_manifest(text, "m").ok()) << text;
  }
}

TEST(ParseManifest, ReadsA01ManifestIgnoringItsMode) {
  auto m = parse_manifest(
      "schema = 1\ncopy = false\n[[replaced]]\nname = 'python'\nfile = 'backup/python'\nmode = "
      "3565\n",
      "m");
  ASSERT_TRUE(m.ok()) << format_error(m.error());
  EXPECT_FALSE(m->entries[0].symlink.has_value());
}

}  // namespace
}  // namespace pyshim
