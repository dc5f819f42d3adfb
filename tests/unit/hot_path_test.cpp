// The launcher's hot path (src/launcher/hot_path.hpp): how it puts the launch
// rules together for the stamped case. Both paths run the same rules
// (launch_rules.hpp, tested on their own in launch_rules_test.cpp) and the
// same planner; these tests hold the composition: for every case the hot
// path takes, it plans what the general path (prepare_launch) plans, byte
// for byte (interpreter, argv[0], every environment entry in order); every
// other case it hands to the general path, at the step that says why.
#include "hot_path.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pyshim/launch.hpp"
#include "pyshim/stamp.hpp"

#include "fake_file_system.hpp"

namespace pyshim {
namespace {

constexpr std::uint32_t kExe = S_IFREG | 0755;
constexpr std::uint32_t kUser = 1000;

// The general path sees the shared fake as a FileSystem, the hot path
// through FakeOs below. Files belong to kUser unless a test says otherwise.
using FakeFiles = testing::FakeFileSystem;

// The hot path's OS: the same files, plus the process's own facts.
struct FakeOs {
  FakeFiles& files;
  std::string self_exe;
  std::string cwd;
  std::vector<std::string> calls;
  int closed = -1;

  int stat(const char* path, FileInfo& info) {
    calls.push_back(std::string("stat ") + path);
    return files.stat(path, info);
  }
  // Listed as "stat": one newfstatat either way (the syscall test counts it so).
  int lstat(const char* path, FileInfo& info) {
    calls.push_back(std::string("stat ") + path);
    return files.lstat(path, info);
  }
  long readlink(const char* path, char* buffer, std::size_t size) {
    calls.push_back(std::string("readlink ") + path);
    std::string target;
    if (std::strcmp(path, "/proc/self/exe") == 0) {
      target = self_exe;
    } else if (int err = files.readlink(path, target); err != 0) {
      return -err;
    }
    std::size_t n = std::min(size, target.size());
    std::memcpy(buffer, target.data(), n);
    return static_cast<long>(n);
  }
  long getcwd(char* buffer, std::size_t size) {
    calls.push_back("getcwd");
    if (cwd.size() + 1 > size) return -ERANGE;
    std::memcpy(buffer, cwd.c_str(), cwd.size() + 1);
    return static_cast<long>(cwd.size() + 1);
  }
  int open_inherited(const char* path) {
    calls.push_back(std::string("open ") + path);
    int fd = -1;
    int err = files.open_inherited(path, fd);
    return err != 0 ? -err : fd;
  }
  void close(int fd) { closed = fd; }
};

struct Outcome {
  std::string interpreter;
  std::string argv0;
  std::vector<std::string> env;
  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& out, const Outcome& o) {
  out << "interpreter=" << o.interpreter << " argv0=" << o.argv0 << " env:";
  for (const std::string& e : o.env) out << " [" << e << "]";
  return out;
}

class HotPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    files.default_uid = kUser;
    files.file("/usr/bin/python3.11", std::string(2000, 'P'), kExe);
    files.file("/usr/lib/libjemalloc.so.2", "J");
    files.file("/usr/lib/libasan.so.8", "A");
    for (const char* system :
         {"/usr/bin/python3.11", "/usr/lib/libjemalloc.so.2", "/usr/lib/libasan.so.8"}) {
      files.owner(system, 0);  // root's
    }
    files.file("/venv/bin/python3.11", std::string(kSelfSize, 'L'), kExe);
    files.link("/venv/bin/python", "python3.11");
    files.link("/venv/bin/python3", "python3.11");
    files.dir("/venv");
    files.dir("/venv/lib/pyshim");
    files.file("/venv/lib/pyshim/libpyshim-restore.so", testing::elf_shared_object());
    config_text = "interpreter = \"/usr/bin/python3.11\"\n";
    caller = {"HOME=/home/u", "PATH=/usr/bin:/bin"};
    argv_strings = {"/venv/bin/python", "-c", "pass"};
    execfn = "/venv/bin/python";
  }

  // Writes /venv/pyshim.toml and stamps the launcher with it, as install does.
  void install(const std::string& text,
               const std::string& restore = "/venv/lib/pyshim/libpyshim-restore.so",
               bool racy = false) {
    config_text = text;
    files.file(config_path, text);
    if (racy) files.racy(config_path);
    auto config = parse_config(text, config_path);
    ASSERT_TRUE(config.ok()) << format_error(config.error());
    Stamp stamp;
    stamp.source = config_path;
    FileInfo info;
    ASSERT_EQ(files.stat(config_path, info), 0);
    stamp.identity = identity_of(info);
    stamp.restore_library = restore;
    stamp.config = std::move(*config);
    auto area = encode_stamp(stamp, "0.2.0");
    ASSERT_TRUE(area.ok());
    stamp_area = std::move(*area);
  }

  std::vector<char*> argv() {
    std::vector<char*> out;
    for (std::string& a : argv_strings) out.push_back(a.data());
    out.push_back(nullptr);
    return out;
  }
  std::vector<const char*> env() {
    std::vector<const char*> out;
    for (const std::string& e : caller) out.push_back(e.c_str());
    return out;
  }

  // P as src/os/system.cpp's invoked_path() makes it, with cwd as the cwd.
  std::string invoked_path(std::vector<char*>& args) {
    const char* const* a = args.data();
    int argc = static_cast<int>(argv_strings.size());
    const char* name = invoked_source(execfn_or_null(), argc, a) == InvokedSource::kExecFn
                           ? execfn_or_null()
                           : (argc > 0 ? a[0] : nullptr);
    if (name == nullptr || name[0] == '\0' || std::strchr(name, '/') == nullptr) return {};
    if (name[0] == '/') return name;
    std::string out = cwd;
    if (out != "/") out.push_back('/');
    while (name[0] == '.' && name[1] == '/') name += 2;
    return out + name;
  }
  const char* execfn_or_null() { return execfn ? execfn->c_str() : nullptr; }

  // The general path: what launcher_main() would exec.
  std::optional<Outcome> general() {
    auto args = argv();
    auto entries = env();
    LaunchRequest request;
    request.invoked_path = invoked_path(args);
    if (request.invoked_path.empty()) return std::nullopt;
    request.env = EnvView(entries);
    request.secure = secure;
    request.euid = euid;
    request.self_exe = self_exe;
    request.self_size = kSelfSize;
    auto stamp = decode_stamp(stamp_area);
    if (stamp) {
      if (*stamp) request.stamp = std::move(**stamp);
    } else {
      request.stamp_error = stamp.error();
    }
    auto launch = prepare_launch(files, request);
    if (!launch) {
      general_error = format_error(launch.error());
      return std::nullopt;
    }
    Outcome out{launch->plan.interpreter, launch->plan.argv0, {}};
    for (const char* e : launch->plan.env) {
      if (e != nullptr) out.env.emplace_back(e);
    }
    return out;
  }

  // The hot path: nullopt when it hands the launch to the general path.
  std::optional<Outcome> hot() {
    auto args = argv();
    auto entries = env();
    hot::Inputs in;
    in.argc = static_cast<int>(argv_strings.size());
    in.argv = args.data();
    in.env = EnvView(entries);
    in.execfn = execfn_or_null();
    in.secure = secure;
    in.euid = euid;
    in.self_size = kSelfSize;
    in.stamp_area = stamp_area;
    StampView stamp;
    if (!hot::accepts(in, stamp)) return std::nullopt;
    std::vector<char> memory(hot::arena_size(in, stamp));
    hot::Arena arena(memory.data(), memory.size());
    FakeOs os{files, self_exe, cwd, {}, -1};
    hot::Launch launch;
    hot_verdict = hot::plan(os, in, stamp, arena, launch);
    bool taken = hot::launches(hot_verdict);
    hot_calls = os.calls;
    if (!taken) return std::nullopt;
    Outcome out{launch.interpreter, launch.argv0, {}};
    for (const char** e = launch.env; *e != nullptr; ++e) out.env.emplace_back(*e);
    return out;
  }

  // The hot path takes this launch, and plans exactly what the general path
  // does.
  void expect_same(const char* what) {
    auto want = general();
    ASSERT_TRUE(want.has_value()) << what << ": general path failed: " << general_error;
    auto got = hot();
    ASSERT_TRUE(got.has_value()) << what << ": the hot path did not take it";
    EXPECT_EQ(*got, *want) << what;
  }

  // The hot path hands this launch to the general path.
  void expect_general(const char* what) { EXPECT_FALSE(hot().has_value()) << what; }

  static constexpr std::uint64_t kSelfSize = 5000;
  FakeFiles files;
  std::string config_path = "/venv/pyshim.toml";
  std::string config_text;
  std::string stamp_area = empty_stamp_area("0.2.0");
  std::vector<std::string> caller;
  std::vector<std::string> argv_strings;
  std::optional<std::string> execfn;
  std::string self_exe = "/venv/bin/python3.11";
  std::string cwd = "/home/u/work";
  bool secure = false;
  std::uint32_t euid = kUser;
  std::string general_error;
  std::vector<std::string> hot_calls;
  rules::Verdict hot_verdict;
};

const char* const kFullConfig =
    "interpreter = \"/usr/bin/python3.11\"\n"
    "preload = [\"/usr/lib/libasan.so.8\", \"/usr/lib/libjemalloc.so.2\"]\n"
    "library_path = [\"/layer/a\", \"/layer/b\"]\n"
    "[env]\nASAN_OPTIONS = \"detect_leaks=0\"\nHOME = \"/override\"\nEMPTY = \"\"\n"
    "[python]\nstartup = [\"plugins:load\", \"b.c:g\"]\npath = [\"src\"]\n";

TEST_F(HotPathTest, MinimalConfigIsTheSamePlan) {
  install(config_text);
  expect_same("minimal");
  // The usual launch: two config stats, the real binary, the restore
  // library, the interpreter.
  EXPECT_EQ(hot_calls,
            (std::vector<std::string>{
                "stat /venv/bin/pyshim.toml", "stat /venv/pyshim.toml", "readlink /proc/self/exe",
                "stat /venv/lib/pyshim/libpyshim-restore.so", "stat /usr/bin/python3.11"}));
}

TEST_F(HotPathTest, EveryConfigFeatureAgainstEveryCallerEnvironment) {
  const std::vector<std::string> configs = {
      "interpreter = \"/usr/bin/python3.11\"\n",
      kFullConfig,
      "interpreter = \"/usr/bin/python3.11\"\npreload = [\"/usr/lib/libjemalloc.so.2\"]\n"
      "library_path = [\"/layer/a\"]\nlibrary_path_position = \"append\"\n",
      "interpreter = \"/usr/bin/python3.11\"\nlibrary_path = [\"/layer/a\", \"/c\"]\n"
      "library_path_position = \"prepend\"\n[env]\nA = \"1\"\nB = \"x=y\"\n",
  };
  const std::vector<std::vector<std::string>> callers = {
      {},
      {"HOME=/home/u"},
      {"LD_PRELOAD=", "LD_LIBRARY_PATH="},
      {"LD_PRELOAD=/x.so /usr/lib/libjemalloc.so.2:/y.so", "LD_LIBRARY_PATH=/c:/layer/b:/d"},
      {"LD_PRELOAD=/a.so", "HOME=/root", "LD_PRELOAD=/b.so", "A=0", "A=2", "HOME=/x"},
      {"LD_LIBRARY_PATH=::/c::;/layer/a;", "LD_PRELOAD=  :: /z.so"},
      // An earlier hop's bookkeeping for the library path (its restore did
      // not run): the originals are the recorded ones.
      {"PYSHIM_ORIG_LD_LIBRARY_PATH=LD_LIBRARY_PATH=/orig", "LD_LIBRARY_PATH=/layer/a:/orig",
       "PYSHIM_STARTUP=stale"},
      {"PYSHIM_ORIG_LD_LIBRARY_PATH=", "LD_LIBRARY_PATH=/layer/a"},
      {"PATH=/bin", "LD_PRELOAD=/venv/lib/pyshim/libpyshim-restore.so", "PYTHONPATH=/p"},
  };
  for (const std::string& config : configs) {
    install(config);
    for (const auto& env : callers) {
      caller = env;
      std::string what = config + " with";
      for (const std::string& e : env) what += " [" + e + "]";
      expect_same(what.c_str());
    }
  }
}

TEST_F(HotPathTest, LibraryPathPositionBothWays) {
  for (const char* position : {"append", "prepend"}) {
    install(std::string("interpreter = \"/usr/bin/python3.11\"\nlibrary_path = [\"/l\"]\n"
                        "library_path_position = \"") +
            position + "\"\n");
    caller = {"LD_LIBRARY_PATH=/c:/l"};
    expect_same(position);
    caller = {};
    expect_same(position);
  }
}

TEST_F(HotPathTest, EveryWayOfBeingStarted) {
  install(kFullConfig);
  execfn = "/venv/bin/python3";  // through a link, by absolute path
  argv_strings = {"python3"};
  expect_same("absolute");
  execfn = "bin/python";  // by a relative path: P is made absolute, not resolved
  argv_strings = {"bin/python"};
  cwd = "/venv";
  expect_same("relative");
  execfn = "./././bin/python";
  expect_same("relative with ./");
  cwd = "/";
  execfn = "venv/bin/python";
  expect_same("relative to /");
  execfn = "/venv/bin/tool";  // a #! script: argv[0] is the launcher
  argv_strings = {"/venv/bin/python", "/venv/bin/tool", "arg"};
  expect_same("shebang");
  argv_strings = {"/venv/bin/python", "-E", "/venv/bin/tool"};
  expect_same("shebang with an argument");
  execfn = "/dev/fd/3";  // fexecve: argv[0]
  argv_strings = {"/venv/bin/python3.11"};
  expect_same("fexecve");
  execfn = "/venv/bin/python";
  argv_strings = {};  // execve with an empty argv
  expect_same("no argv");
}

TEST_F(HotPathTest, AConfigBesideTheLauncherOrNoneAtAll) {
  // Stamped from bin/pyshim.toml (a standalone launcher's layout).
  config_path = "/venv/bin/pyshim.toml";
  install(kFullConfig);
  expect_same("beside");
  // The config is gone and P is no link: the stamp alone (a copied launcher).
  files.remove("/venv/bin/pyshim.toml");
  execfn = "/venv/bin/python3.11";
  expect_same("stamp alone");
}

TEST_F(HotPathTest, RestoreLibraryFromEachPlaceAndThroughADescriptor) {
  install(kFullConfig);
  files.remove("/venv/lib/pyshim/libpyshim-restore.so");
  files.file("/venv/bin/libpyshim-restore.so", testing::elf_shared_object());
  expect_same("beside the binary");
  files.remove("/venv/bin/libpyshim-restore.so");
  files.file("/opt/My Stuff/libpyshim-restore.so", testing::elf_shared_object());
  install(kFullConfig, "/opt/My Stuff/libpyshim-restore.so");
  expect_same("stamped path with a space: /proc/self/fd/N");
  files.remove("/opt/My Stuff/libpyshim-restore.so");
  expect_general("no restore library anywhere");
}

TEST_F(HotPathTest, HandsEverythingElseToTheGeneralPath) {
  expect_general("unstamped");
  stamp_area = "damaged";
  expect_general("damaged stamp");
  install(kFullConfig);
  std::string area = stamp_area;
  stamp_area[100] = static_cast<char>(stamp_area[100] ^ 1);
  expect_general("checksum mismatch");
  stamp_area = area;

  for (const char* var : {"PYSHIM_CONFIG=/x.toml", "PYSHIM_CONFIG=", "PYSHIM_LOG=debug",
                          "PYSHIM_LOG=", "PYSHIM_ORIG_LD_PRELOAD=LD_PRELOAD=/x.so"}) {
    caller = {"HOME=/h", var};
    expect_general(var);
  }
  caller = {};
  secure = true;
  expect_general("AT_SECURE");
  secure = false;

  execfn = std::nullopt;  // no AT_EXECFN, a bare argv[0]: a PATH search
  argv_strings = {"python"};
  expect_general("PATH search");
  execfn = "/venv/bin/python";
  argv_strings = {"/venv/bin/python"};

  files.file(config_path, config_text + "# edited\n");
  expect_general("edited config: parsed");
  install(kFullConfig);
  files.file("/venv/bin/pyshim.toml", kFullConfig);
  expect_general("another config first");
  files.remove("/venv/bin/pyshim.toml");

  files.remove(config_path);
  files.link("/elsewhere/bin/python", "/venv/bin/python3.11");
  execfn = "/elsewhere/bin/python";
  expect_general("no config, P a link: the general path follows it");
  execfn = "/venv/bin/python";
  install(kFullConfig);
}

TEST_F(HotPathTest, SomeoneElsesConfig) {
  // A venv installed by another user: the hot path takes only the caller's
  // or root's files (trust_of) and leaves the rest of the rule to the
  // general path, which trusts the venv's own config as it trusts the
  // launcher binary that user also owns.
  files.dir("/venv");
  install(kFullConfig);
  euid = 2000;
  expect_general("another user's venv");
  auto planned = general();
  ASSERT_TRUE(planned.has_value()) << general_error;
  files.dir("/venv", S_IFDIR | 0777);
  expect_general("a stranger's config in a folder anyone can write");
  euid = 0;
  expect_general("root runs a stranger's config");
  files.dir("/venv");
  expect_general("root runs another user's venv");
  EXPECT_EQ(general(), planned) << general_error;
  euid = kUser;
  expect_same("the owner runs it");
}

TEST_F(HotPathTest, ARacilyCleanStampIsNotTrustedByIdentity) {
  // Stamped while the file's mtime was as recent as the stamp's clock: a
  // same-size edit in the same timestamp tick keeps the identity, so the
  // file is parsed (git's "racily clean" rule) and the edit is seen.
  files.file("/usr/bin/python3.12", std::string(2000, 'P'), kExe);
  install("interpreter = \"/usr/bin/python3.11\"\n", "/venv/lib/pyshim/libpyshim-restore.so",
          /*racy=*/true);
  files.edit_in_place(config_path, "interpreter = \"/usr/bin/python3.12\"\n");
  expect_general("racily clean stamp");
  auto planned = general();
  ASSERT_TRUE(planned.has_value()) << general_error;
  EXPECT_EQ(planned->interpreter, "/usr/bin/python3.12");
  // Not racy: the stamp is used.
  install("interpreter = \"/usr/bin/python3.11\"\n");
  expect_same("stamp older than the file by the granularity");
}

TEST_F(HotPathTest, ABaseLauncherOfAMovedVenvTakesTheVenvsOwnFiles) {
  // /venv was installed, then moved to /b: its base launcher's stamp still
  // names /venv, which exists again (someone's copy, say). The base launcher
  // is the general path's: it takes /b's config and restore library.
  install(config_text);
  files.dir("/b");
  files.dir("/b/lib/pyshim");
  files.file("/b/lib/pyshim/libpyshim-restore.so", testing::elf_shared_object());
  files.file("/b/pyshim.toml", "interpreter = \"/usr/bin/python3.11\"\n[env]\nMARK = \"b\"\n");
  files.file("/b/.pyshim/base/bin/python3.11", std::string(kSelfSize, 'L'), kExe);
  execfn = "/b/.pyshim/base/bin/python3.11";
  argv_strings[0] = *execfn;
  self_exe = *execfn;
  expect_general("a base launcher without a config beside it");
  auto planned = general();
  ASSERT_TRUE(planned.has_value()) << general_error;
  EXPECT_NE(std::find(planned->env.begin(), planned->env.end(), "MARK=b"), planned->env.end());
  bool b_restore = false;
  for (const std::string& e : planned->env) {
    if (e.starts_with("LD_PRELOAD="))
      b_restore = e == "LD_PRELOAD=/b/lib/pyshim/libpyshim-restore.so";
  }
  EXPECT_TRUE(b_restore);
}

TEST_F(HotPathTest, LinksAndStrangersFilesAreTheGeneralPathsToJudge) {
  install(config_text);
  // A link named pyshim.toml (its owner, not its target's, is what counts).
  files.remove(config_path);
  files.file("/etc/real.toml", config_text);
  files.link(config_path, "/etc/real.toml");
  expect_general("pyshim.toml is a link");
  files.remove("/etc/real.toml");
  files.remove(config_path);
  install(config_text);
  // A restore library someone else planted.
  files.owner("/venv/lib/pyshim/libpyshim-restore.so", 2000);
  expect_general("a stranger's restore library");
  files.owner("/venv/lib/pyshim/libpyshim-restore.so", kUser);
  expect_same("the caller's restore library");
}

TEST_F(HotPathTest, FailedChecksAreTheGeneralPathsToReport) {
  install("interpreter = \"/usr/bin/python3.11\"\npreload = [\"/usr/lib/libjemalloc.so.2\"]\n");
  files.remove("/usr/lib/libjemalloc.so.2");
  expect_general("missing preload");
  files.dir("/usr/lib/libjemalloc.so.2");
  expect_general("preload is a folder");
  files.file("/usr/lib/libjemalloc.so.2", "J");
  files.file("/usr/bin/python3.11", "P", S_IFREG | 0644);
  expect_general("interpreter not executable");
  files.remove("/usr/bin/python3.11");
  expect_general("interpreter missing");
  files.file("/usr/bin/python3.11", std::string(kSelfSize, 'L'), kExe);
  expect_general("interpreter the launcher's size");
  files.file("/usr/bin/python3.11", "P", kExe);
  files.file("/odd:lib.so", "O");
  install("interpreter = \"/usr/bin/python3.11\"\npreload = [\"/odd:lib.so\"]\n");
  expect_general("a preload the loader splits");
  caller = {"LD_LIBRARY_PATH=" + std::string(200000, 'x')};
  install("interpreter = \"/usr/bin/python3.11\"\nlibrary_path = [\"/l\"]\n");
  expect_general("an entry past the kernel's limit");
}

TEST_F(HotPathTest, SaysAtWhichStepItHandsOver) {
  install("interpreter = \"/usr/bin/python3.11\"\npreload = [\"/usr/lib/libjemalloc.so.2\"]\n");
  expect_same("the baseline");
  EXPECT_EQ(hot_verdict.step, rules::Step::kLaunch);
  files.remove("/usr/lib/libjemalloc.so.2");
  expect_general("missing preload");
  EXPECT_EQ(hot_verdict.step, rules::Step::kPreload);
  EXPECT_EQ(hot_verdict.kind, ErrorKind::kPreloadNotFound);
  files.file("/usr/lib/libjemalloc.so.2", "J");
  files.file("/usr/bin/python3.11", "P", S_IFREG | 0644);
  expect_general("interpreter not executable");
  EXPECT_EQ(hot_verdict.kind, ErrorKind::kInterpreterNotExecutable);
  files.file("/usr/bin/python3.11", std::string(kSelfSize, 'L'), kExe);
  expect_general("interpreter the launcher's size: only reading it tells");
  EXPECT_EQ(hot_verdict.step, rules::Step::kInterpreter);
  EXPECT_EQ(hot_verdict.kind, ErrorKind::kNone);
  files.file("/usr/bin/python3.11", "P", kExe);
  files.file(config_path, config_text + "# edited\n");
  expect_general("edited config");
  EXPECT_EQ(hot_verdict.step, rules::Step::kConfig);
  install(config_text);
  files.remove("/venv/lib/pyshim/libpyshim-restore.so");
  expect_general("no restore library");
  EXPECT_EQ(hot_verdict.step, rules::Step::kRestoreLibrary);
  EXPECT_EQ(hot_verdict.kind, ErrorKind::kRestoreLibraryNotFound);
}

}  // namespace
}  // namespace pyshim
