// The launch rules (pyshim/launch_rules.hpp) on their own: each rule's
// verdict, against the in-memory file system every launch test shares. The
// hot path, the general path and doctor all run these very functions.
#include "pyshim/launch_rules.hpp"

#include <elf.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>
#include <string>
#include <vector>

#include "pyshim/launch.hpp"

#include "fake_file_system.hpp"

namespace pyshim {
namespace {

using rules::LoaderRefusal;
using rules::Refusal;
using rules::Step;

constexpr std::uint32_t kUser = 1000;
constexpr std::uint32_t kStranger = 2000;

class LaunchRulesTest : public ::testing::Test {
 protected:
  void SetUp() override { files.default_uid = kUser; }

  rules::TrustedLookup look(const std::string& path, bool full = true,
                            const char* self = "/venv/bin/python3.11") {
    std::vector<char> room(256);
    rules::Arena arena(room.data(), room.size());
    return rules::look_up_trusted(os, kUser, self, path.c_str(), full ? &arena : nullptr);
  }

  testing::FakeFileSystem files;
  RulesOs os{files};
};

TEST(LaunchRules, InvokedByArgv0) {
  struct Case {
    const char* execfn;
    std::vector<const char*> argv;
    bool argv0;
  };
  const std::vector<Case> cases = {
      {"/v/bin/python", {"python"}, false},
      {nullptr, {"/v/bin/python"}, true},                             // no AT_EXECFN
      {"", {"/v/bin/python"}, true},                                  // an empty one
      {"/dev/fd/3", {"/v/bin/python"}, true},                         // fexecve
      {"/proc/self/fd/3", {"/v/bin/python"}, true},                   // fexecve, another libc
      {"/v/bin/tool", {"/v/bin/python", "/v/bin/tool"}, true},        // a #! script
      {"/v/bin/tool", {"/v/bin/python", "-E", "/v/bin/tool"}, true},  // with its argument
      {"/v/bin/tool", {"/v/bin/python", "-E", "-S", "/v/bin/tool"}, false},  // too far
      {"/v/bin/tool", {"python", "/v/bin/tool"}, false},             // the kernel gives a path
      {"/v/bin/python", {"/v/bin/python", "/v/bin/python"}, false},  // itself as its script
  };
  for (const Case& c : cases) {
    EXPECT_EQ(rules::invoked_by_argv0(c.execfn, static_cast<int>(c.argv.size()), c.argv.data()),
              c.argv0)
        << (c.execfn ? c.execfn : "(null)") << " argc=" << c.argv.size();
  }
}

TEST(LaunchRules, LoaderRefusal) {
  EXPECT_EQ(rules::loader_refusal_of("/plain/lib-x_1.so", true), LoaderRefusal::kNone);
  EXPECT_EQ(rules::loader_refusal_of("/a:b.so", true), LoaderRefusal::kSplits);
  EXPECT_EQ(rules::loader_refusal_of("/a b.so", true), LoaderRefusal::kSplits);
  EXPECT_EQ(rules::loader_refusal_of("/a b", false), LoaderRefusal::kWhitespace);
  EXPECT_EQ(rules::loader_refusal_of("/a;b", false), LoaderRefusal::kSplits);
  EXPECT_EQ(rules::loader_refusal_of("/a;b.so", true), LoaderRefusal::kNone);
  for (const char* space : {"/a\tb", "/a\nb", "/a\rb", "/a\vb", "/a\fb"}) {
    EXPECT_EQ(rules::loader_refusal_of(space, true), LoaderRefusal::kWhitespace) << space;
  }
  EXPECT_EQ(rules::loader_refusal_of("/$ORIGIN/x.so", true), LoaderRefusal::kToken);
  EXPECT_EQ(rules::loader_refusal_of("/$LIB", false), LoaderRefusal::kToken);
  std::string long_path = "/" + std::string(4095, 'x');
  EXPECT_EQ(rules::loader_refusal_of(long_path, true), LoaderRefusal::kTooLong);
  EXPECT_EQ(rules::loader_refusal_of(long_path, false), LoaderRefusal::kNone);
  EXPECT_EQ(rules::loader_refusal_of(long_path.substr(1), true), LoaderRefusal::kNone);
  EXPECT_TRUE(rules::needs_fd_preload("/a b/lib.so"));
  EXPECT_FALSE(rules::needs_fd_preload("/ab/lib.so"));
}

TEST_F(LaunchRulesTest, TrustOfTheCallersRootsAndStrangersFiles) {
  files.dir("/venv");
  files.file("/venv/mine", "x");
  EXPECT_EQ(look("/venv/mine").refused, Refusal::kNone);
  files.file("/venv/roots", "x");
  files.owner("/venv/roots", 0);
  EXPECT_EQ(look("/venv/roots").refused, Refusal::kNone);
  EXPECT_EQ(look("/venv/none").err, ENOENT);

  // Someone else's file: trusted only as the launcher binary is (its owner
  // owns the launcher, in a folder nobody else can write).
  files.file("/venv/theirs", "x");
  files.owner("/venv/theirs", kStranger);
  auto theirs = look("/venv/theirs");
  EXPECT_EQ(theirs.refused, Refusal::kStranger);
  EXPECT_EQ(theirs.uid, kStranger);
  files.file("/venv/bin/python3.11", "L", S_IFREG | 0755);
  files.owner("/venv/bin/python3.11", kStranger);
  EXPECT_EQ(look("/venv/theirs").refused, Refusal::kNone);
  EXPECT_EQ(look("/venv/theirs", true, nullptr).refused, Refusal::kStranger);  // no launcher
  files.dir("/venv", S_IFDIR | 0777);
  EXPECT_EQ(look("/venv/theirs").refused, Refusal::kStranger);  // anyone could plant it

  // Links: judged by their own owner, then by their target's.
  files.link("/venv/link", "/venv/theirs");
  EXPECT_EQ(look("/venv/link").refused, Refusal::kLinkTarget);
  files.link("/venv/link", "/venv/mine");
  EXPECT_EQ(look("/venv/link").refused, Refusal::kNone);
  files.default_uid = kStranger;
  files.link("/venv/their-link", "/venv/mine");
  EXPECT_EQ(look("/venv/their-link").refused, Refusal::kLinkOwner);
}

TEST_F(LaunchRulesTest, AFirstLookTakesOneLstatAndDecidesOnlyTheSimpleCase) {
  files.file("/venv/mine", "x");
  files.file("/venv/theirs", "x");
  files.owner("/venv/theirs", kStranger);
  files.link("/venv/link", "/venv/mine");
  files.calls = 0;
  EXPECT_EQ(look("/venv/mine", false).refused, Refusal::kNone);
  EXPECT_EQ(files.calls, 1);
  EXPECT_EQ(look("/venv/theirs", false).refused, Refusal::kUndecided);
  EXPECT_EQ(look("/venv/link", false).refused, Refusal::kUndecided);
  EXPECT_EQ(files.calls, 3);
}

TEST(LaunchRules, TheStampStandsForItsFileUnchangedAndNotRacy) {
  FileInfo info{{1, 7, 40, 10'000'000'000, 15'000'000'000}, S_IFREG | 0644, kUser};
  FileIdentity stamped = identity_of(info);
  EXPECT_TRUE(rules::stamp_still_true(stamped, info));
  EXPECT_TRUE(rules::take_from_stamp("/v/pyshim.toml", stamped, "/v/pyshim.toml", info));
  EXPECT_FALSE(rules::take_from_stamp("/v/pyshim.toml", stamped, "/v/bin/pyshim.toml", info));
  FileInfo edited = info;
  edited.ctime_ns += 1;
  EXPECT_FALSE(rules::stamp_still_true(stamped, edited));
  FileInfo racy = info;
  racy.mtime_ns = racy.ctime_ns - 1'000'000'000;  // within the 2 s granularity
  EXPECT_FALSE(rules::stamp_still_true(identity_of(racy), racy));
}

TEST(LaunchRules, ConfigCandidates) {
  std::vector<char> room(256);
  rules::Arena arena(room.data(), room.size());
  const char* out[2];
  ASSERT_EQ(rules::config_candidates(arena, "/venv/bin", out), 2);
  EXPECT_STREQ(out[0], "/venv/bin/pyshim.toml");
  EXPECT_STREQ(out[1], "/venv/pyshim.toml");
  ASSERT_EQ(rules::config_candidates(arena, "/", out), 1);
  EXPECT_STREQ(out[0], "/pyshim.toml");
  EXPECT_EQ(rules::config_candidates(arena, "", out), 0);
}

TEST(LaunchRules, RestoreLibraryCandidates) {
  std::vector<char> room(512);
  rules::Arena arena(room.data(), room.size());
  const char* out[3];
  ASSERT_EQ(rules::restore_library_candidates(arena, "/venv/bin/python3.11", out), 2);
  EXPECT_STREQ(out[0], "/venv/lib/pyshim/libpyshim-restore.so");
  EXPECT_STREQ(out[1], "/venv/bin/libpyshim-restore.so");
  ASSERT_EQ(rules::restore_library_candidates(arena, "/b/.pyshim/base/bin/python3.11", out), 3);
  EXPECT_STREQ(out[0], "/b/.pyshim/base/lib/pyshim/libpyshim-restore.so");
  EXPECT_STREQ(out[2], "/b/lib/pyshim/libpyshim-restore.so");
  EXPECT_EQ(rules::restore_library_candidates(arena, "python3.11", out), 0);  // not absolute
  EXPECT_EQ(rules::restore_library_candidates(arena, "", out), 0);
  EXPECT_EQ(rules::base_launcher_venv("/b/.pyshim/base/bin"), "/b");
  EXPECT_EQ(rules::base_launcher_venv("/.pyshim/base/bin"), "");
  EXPECT_EQ(rules::base_launcher_venv("/b/.pyshim/base/sbin"), "");
}

TEST(LaunchRules, MayBeARestoreLibrary) {
  FileInfo lib{{1, 7, 64, 0, 0}, S_IFREG | 0644, kUser};
  EXPECT_TRUE(rules::may_be_a_restore_library(lib, kUser));
  lib.size = 63;  // shorter than an ELF header
  EXPECT_FALSE(rules::may_be_a_restore_library(lib, kUser));
  lib.size = 64;
  lib.mode = S_IFREG | 0600;
  lib.uid = 0;
  EXPECT_FALSE(rules::may_be_a_restore_library(lib, kUser));  // not readable by the caller
  EXPECT_TRUE(rules::may_be_a_restore_library(lib, 0));
  lib.mode = S_IFDIR | 0755;
  EXPECT_FALSE(rules::may_be_a_restore_library(lib, 0));
}

TEST_F(LaunchRulesTest, CheckInterpreter) {
  FileInfo info;
  auto v = rules::check_interpreter(os, "/usr/bin/python3", info);
  EXPECT_EQ(v.step, Step::kInterpreter);
  EXPECT_EQ(v.kind, ErrorKind::kInterpreterNotFound);
  EXPECT_EQ(v.err, ENOENT);
  EXPECT_EQ(exit_code(v.kind), 127);
  files.dir("/usr/bin/python3");
  v = rules::check_interpreter(os, "/usr/bin/python3", info);
  EXPECT_EQ(v.kind, ErrorKind::kInterpreterNotExecutable);
  EXPECT_EQ(exit_code(v.kind), 126);
  files.file("/usr/bin/python3", "P", S_IFREG | 0644);
  EXPECT_EQ(rules::check_interpreter(os, "/usr/bin/python3", info).kind,
            ErrorKind::kInterpreterNotExecutable);
  files.file("/usr/bin/python3", "P", S_IFREG | 0755);
  EXPECT_TRUE(rules::check_interpreter(os, "/usr/bin/python3", info).passed());
  EXPECT_EQ(info.size, 1u);
  EXPECT_TRUE(rules::same_size_as_self(info, 1));
  EXPECT_TRUE(rules::same_size_as_self(info, 0));  // own size unknown: look closer
  EXPECT_FALSE(rules::same_size_as_self(info, 5000));
  const char* plain[] = {"HOME=/h", "PYSHIM_ORIG_LD_PRELOADX=1"};
  const char* hop[] = {"HOME=/h", "PYSHIM_ORIG_LD_PRELOAD="};
  EXPECT_FALSE(rules::started_by_a_launcher(EnvView(plain)));
  EXPECT_TRUE(rules::started_by_a_launcher(EnvView(hop)));
}

TEST_F(LaunchRulesTest, CheckPreloadsAndLibraryFoldersItemByItem) {
  files.file("/lib/a.so", "A");
  files.dir("/lib/dir.so");
  EXPECT_TRUE(rules::check_preload(os, "/lib/a.so", 9, 0).passed());
  auto v = rules::check_preload(os, "/lib/b.so", 9, 3);
  EXPECT_EQ(v.step, Step::kPreload);
  EXPECT_EQ(v.kind, ErrorKind::kPreloadNotFound);
  EXPECT_EQ(v.item, 3);
  EXPECT_EQ(rules::check_preload(os, "/lib/dir.so", 11, 0).kind, ErrorKind::kPreloadIsFolder);
  files.calls = 0;
  EXPECT_EQ(rules::check_preload(os, "/lib/a b.so", 11, 0).kind, ErrorKind::kPreloadRefused);
  EXPECT_EQ(files.calls, 0);  // refused before any lookup
  EXPECT_TRUE(rules::check_library_folder("/missing/is/fine", 0).passed());
  EXPECT_EQ(rules::check_library_folder("/a:b", 1).kind, ErrorKind::kLibraryFolderRefused);

  Config config;
  config.preload = {{"/lib/a.so", {}}, {"/lib/dir.so", {}}};
  config.library_path = {{"/l", {}}, {"/x;y", {}}};
  v = rules::check_lists(os, plan_config(config));
  EXPECT_EQ(v.kind, ErrorKind::kPreloadIsFolder);
  EXPECT_EQ(v.item, 1);
  config.preload.pop_back();
  v = rules::check_lists(os, plan_config(config));
  EXPECT_EQ(v.step, Step::kLibraryFolder);
  EXPECT_EQ(v.item, 1);
  config.library_path.pop_back();
  EXPECT_TRUE(rules::check_lists(os, plan_config(config)).passed());
}

TEST(LaunchRules, ExecveLimits) {
  std::string fits(rules::kMaxArgString - 1, 'x');
  std::string over(rules::kMaxArgString, 'x');
  EXPECT_FALSE(rules::too_long_for_execve(fits.size()));
  EXPECT_TRUE(rules::too_long_for_execve(over.size()));
  const char* env[] = {"A=1", fits.c_str(), over.c_str()};
  EXPECT_TRUE(rules::check_environment(env, 2).passed());
  auto v = rules::check_environment(env, 3);
  EXPECT_EQ(v.kind, ErrorKind::kTooLongForExecve);
  EXPECT_EQ(v.item, 2);
  std::vector<Setting> list(2, Setting{std::string(rules::kMaxArgString / 2, 'l'), {}});
  EXPECT_EQ(rules::list_too_long(list), rules::kMaxArgString + 1);  // two halves and a ':'
  list.pop_back();
  EXPECT_EQ(rules::list_too_long(list), 0u);
}

TEST(LaunchRules, DescriptorPath) {
  char out[rules::kFdPathSize];
  EXPECT_EQ(std::string(out, rules::write_fd_path(out, 0)), "/proc/self/fd/0");
  EXPECT_EQ(std::string(out, rules::write_fd_path(out, 1234567)), "/proc/self/fd/1234567");
  EXPECT_STREQ(out, "/proc/self/fd/1234567");
}

TEST(LaunchRules, ImageSize) {
  Elf64_Ehdr header{};
  header.e_ident[0] = 0x7f, header.e_ident[1] = 'E', header.e_ident[2] = 'L',
  header.e_ident[3] = 'F';
  header.e_shoff = 1000;
  header.e_shnum = 3;
  header.e_shentsize = 64;
  EXPECT_EQ(rules::image_size(&header), 1192u);
  header.e_ident[1] = 'X';
  EXPECT_EQ(rules::image_size(&header), 0u);
  EXPECT_EQ(rules::image_size(static_cast<const Elf64_Ehdr*>(nullptr)), 0u);
}

TEST(ErrorKinds, CarryTheirExitCodes) {
  EXPECT_EQ(exit_code(ErrorKind::kNone), 0);
  EXPECT_EQ(exit_code(ErrorKind::kCheckFailed), 1);
  EXPECT_EQ(exit_code(ErrorKind::kUsage), 2);
  EXPECT_EQ(exit_code(ErrorKind::kConfigNotFound), 125);
  EXPECT_EQ(exit_code(ErrorKind::kPreloadNotFound), 125);
  EXPECT_EQ(exit_code(ErrorKind::kInterpreterUnreadable), 126);
  EXPECT_EQ(exit_code(ErrorKind::kCannotExecute), 126);
  EXPECT_EQ(exit_code(ErrorKind::kNotFound), 127);
  Error e;
  EXPECT_EQ(e.exit_code(), 125);  // a shim failure unless said otherwise
}

}  // namespace
}  // namespace pyshim
