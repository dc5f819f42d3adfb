// decide_root_trust / decide_run_as: the one rule for what root may run.
#include <sys/stat.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "pyshim/process.hpp"

#include "pyshim/root_trust.hpp"

namespace pyshim {
namespace {

PathStep folder(std::string path, std::uint32_t uid = 0, std::uint32_t perms = 0755) {
  return {std::move(path), true, false, uid, S_IFDIR | perms};
}
PathStep file(std::string path, std::uint32_t uid = 0, std::uint32_t perms = 0755) {
  return {std::move(path), true, true, uid, S_IFREG | perms};
}
PathStep missing(std::string path) {
  return {std::move(path), false, true, 0, 0};
}

LoadedPath loaded(std::string what, std::string path, std::vector<PathStep> steps) {
  LoadedPath out;
  out.what = std::move(what);
  out.path = std::move(path);
  out.steps = std::move(steps);
  return out;
}

LoadedPath system_python() {
  return loaded("interpreter", "/usr/bin/python3.11",
                {folder("/"), folder("/usr"), folder("/usr/bin"), file("/usr/bin/python3.11")});
}

TEST(RootTrust, RootOnlyPathsAreTrusted) {
  RootTrust trust = decide_root_trust({system_python()});
  EXPECT_TRUE(trust.root_only);
  EXPECT_EQ(describe(trust), "only root can change what it loads");
}

TEST(RootTrust, AFolderOnTheWayOwnedBySomeoneElseIsNot) {
  auto layer =
      loaded("library folder", "/srv/layer/share/venv/dynlib",
             {folder("/"), folder("/srv"), folder("/srv/layer", 1000), folder("/srv/layer/share"),
              folder("/srv/layer/share/venv"), folder("/srv/layer/share/venv/dynlib")});
  layer.steps.back().member = true;
  RootTrust trust = decide_root_trust({system_python(), layer});
  EXPECT_FALSE(trust.root_only);
  EXPECT_EQ(trust.what, "library folder");
  EXPECT_EQ(trust.step, "/srv/layer");
  EXPECT_EQ(describe(trust),
            "the library folder /srv/layer/share/venv/dynlib: /srv/layer is owned by uid 1000");
}

TEST(RootTrust, GroupOrOtherWritableIsNot) {
  auto group =
      loaded("preload", "/opt/lib/x.so",
             {folder("/"), folder("/opt", 0, 0775), folder("/opt/lib"), file("/opt/lib/x.so")});
  EXPECT_EQ(decide_root_trust({group}).reason, "writable by its group");
  auto others =
      loaded("preload", "/opt/x.so", {folder("/"), folder("/opt"), file("/opt/x.so", 0, 0646)});
  RootTrust trust = decide_root_trust({others});
  EXPECT_EQ(trust.reason, "writable by others");
  EXPECT_EQ(describe(trust), "the preload /opt/x.so is writable by others");
}

TEST(RootTrust, AStickyFolderOnTheWayIsFineButNotAsWhatIsLoaded) {
  PathStep tmp = folder("/tmp", 0, 01777);
  auto file_in_tmp = loaded("preload", "/tmp/x.so", {folder("/"), tmp, file("/tmp/x.so")});
  EXPECT_TRUE(decide_root_trust({file_in_tmp}).root_only);
  // As a library folder, anyone could add a library to it.
  PathStep tmp_member = tmp;
  tmp_member.member = true;
  auto tmp_folder = loaded("library folder", "/tmp", {folder("/"), tmp_member});
  EXPECT_FALSE(decide_root_trust({tmp_folder}).root_only);
}

TEST(RootTrust, AMissingPathIsFineOnlyWhereOnlyRootCouldCreateIt) {
  auto in_usr =
      loaded("library folder", "/usr/none", {folder("/"), folder("/usr"), missing("/usr/none")});
  EXPECT_TRUE(decide_root_trust({in_usr}).root_only);
  auto in_tmp = loaded("library folder", "/tmp/none",
                       {folder("/"), folder("/tmp", 0, 01777), missing("/tmp/none")});
  RootTrust trust = decide_root_trust({in_tmp});
  EXPECT_FALSE(trust.root_only);
  EXPECT_EQ(describe(trust),
            "the library folder /tmp/none does not exist, and /tmp is writable by others");
}

TEST(RootTrust, AnIncompleteOrEmptyWalkIsNotTrusted) {
  LoadedPath loop = system_python();
  loop.complete = false;
  EXPECT_EQ(decide_root_trust({loop}).reason, "could not be examined completely");
  EXPECT_FALSE(decide_root_trust({loaded("home", "/x", {})}).root_only);
}

TEST(RootTrust, PathsAreEscapedInTheDescription) {
  auto evil = loaded("preload", "/opt/\x1b[2Jx.so", {folder("/"), file("/opt/\x1b[2Jx.so", 7)});
  EXPECT_EQ(describe(decide_root_trust({evil})), "the preload /opt/\\x1b[2Jx.so is owned by uid 7");
}

TEST(RunAs, OnlyRootEverDrops) {
  auto foreign =
      loaded("interpreter", "/home/u/py",
             {folder("/"), folder("/home"), folder("/home/u", 1000), file("/home/u/py", 1000)});
  EXPECT_FALSE(decide_run_as(1000, {foreign}, 1000).drops());
  RunAs as_owner = decide_run_as(0, {foreign}, 1000);
  EXPECT_EQ(as_owner.uid, 1000);
  EXPECT_EQ(as_owner.gid, kNoGroupGid);
  EXPECT_EQ(as_owner.trust.step, "/home/u");
  RunAs as_nobody = decide_run_as(0, {foreign}, 0);
  EXPECT_EQ(as_nobody.uid, kNobodyUid);
  EXPECT_FALSE(decide_run_as(0, {system_python()}, 1000).drops());
}

// examine_path on a real folder: what the rule is fed.
class ExaminePath : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pyshim-examine-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = std::filesystem::canonical(tmpl).string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::vector<std::string> paths(const LoadedPath& loaded) {
    std::vector<std::string> out;
    for (const PathStep& step : loaded.steps) out.push_back(step.path);
    return out;
  }
  static bool has(const std::vector<std::string>& list, const std::string& item) {
    return std::find(list.begin(), list.end(), item) != list.end();
  }

  std::string dir_;
};

TEST_F(ExaminePath, WalksEveryFolderFromTheRootAndFollowsLinksToTheirTargets) {
  std::filesystem::create_directories(dir_ + "/real/lib");
  std::ofstream(dir_ + "/real/lib/x.so") << "x";
  std::filesystem::create_directory_symlink("real", dir_ + "/link");
  LoadedPath loaded = examine_path("preload", dir_ + "/link/lib/x.so", LoadScope::kFile);
  EXPECT_TRUE(loaded.complete);
  std::vector<std::string> got = paths(loaded);
  EXPECT_EQ(got.front(), "/");
  EXPECT_TRUE(has(got, dir_));
  EXPECT_TRUE(has(got, dir_ + "/real"));
  EXPECT_TRUE(has(got, dir_ + "/real/lib/x.so"));
  EXPECT_FALSE(has(got, dir_ + "/link")) << "a link is a step by what it names";
  EXPECT_TRUE(loaded.steps.back().member);
  EXPECT_FALSE(loaded.steps.front().member);
}

TEST_F(ExaminePath, StopsAtTheFirstMissingComponent) {
  LoadedPath loaded = examine_path("library folder", dir_ + "/none/deeper", LoadScope::kFolder);
  EXPECT_TRUE(loaded.complete);
  ASSERT_FALSE(loaded.steps.empty());
  EXPECT_EQ(loaded.steps.back().path, dir_ + "/none");
  EXPECT_FALSE(loaded.steps.back().exists);
}

TEST_F(ExaminePath, AFolderBringsItsEntriesAndATreeEverythingBelow) {
  std::filesystem::create_directories(dir_ + "/libs/sub");
  std::ofstream(dir_ + "/libs/a.so") << "a";
  std::ofstream(dir_ + "/libs/sub/b.so") << "b";
  std::filesystem::create_directories(dir_ + "/elsewhere");
  std::ofstream(dir_ + "/elsewhere/c.so") << "c";
  std::filesystem::create_symlink(dir_ + "/elsewhere/c.so", dir_ + "/libs/c.so");
  std::vector<std::string> folder = paths(examine_path("f", dir_ + "/libs", LoadScope::kFolder));
  EXPECT_TRUE(has(folder, dir_ + "/libs/a.so"));
  EXPECT_TRUE(has(folder, dir_ + "/libs/sub"));
  EXPECT_FALSE(has(folder, dir_ + "/libs/sub/b.so"));
  EXPECT_TRUE(has(folder, dir_ + "/elsewhere/c.so")) << "an entry's link is followed";
  std::vector<std::string> tree = paths(examine_path("t", dir_ + "/libs", LoadScope::kTree));
  EXPECT_TRUE(has(tree, dir_ + "/libs/sub/b.so"));
}

TEST_F(ExaminePath, ALinkLoopIsIncomplete) {
  std::filesystem::create_symlink("b", dir_ + "/a");
  std::filesystem::create_symlink("a", dir_ + "/b");
  LoadedPath loaded = examine_path("interpreter", dir_ + "/a", LoadScope::kFile);
  EXPECT_FALSE(loaded.complete);
  EXPECT_FALSE(decide_root_trust({loaded}).root_only);
}

}  // namespace
}  // namespace pyshim
