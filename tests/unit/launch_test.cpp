#include "pyshim/launch.hpp"

#include "fake_file_system.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>
#include <map>

#include <fmt/format.h>

namespace pyshim {
namespace {

using testing::FakeFileSystem;

constexpr std::uint32_t kExe = S_IFREG | 0755;

// A launcher image of 1000 bytes: every launcher carries the note.
std::string launcher_image() {
  std::string image = "ELF" + std::string(kLauncherNote, sizeof kLauncherNote);
  image.resize(1000, 'S');
  return image;
}

class LaunchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs.file("/opt/pyshim/bin/pyshim", launcher_image(), kExe, 7);
    fs.file("/opt/pyshim/lib/pyshim/libpyshim-restore.so", testing::elf_shared_object());
    fs.file("/usr/bin/python3.11", "PY", kExe);
    fs.file("/usr/lib/libjemalloc.so.2", "J");
    fs.link("/venv/bin/python", "/opt/pyshim/bin/pyshim");
    request.invoked_path = "/venv/bin/python";
    request.self_exe = "/opt/pyshim/bin/pyshim";
    request.self_size = 1000;
  }

  Error launch_error(const std::string& config) {
    fs.file("/venv/pyshim.toml", config);
    auto launch = prepare_launch(fs, request);
    EXPECT_FALSE(launch.ok());
    return launch.ok() ? Error{} : launch.error();
  }

  FakeFileSystem fs;
  LaunchRequest request;
};

TEST_F(LaunchTest, VenvConfigIsFoundOneLevelUpAndThePlanIsChecked) {
  fs.file("/venv/pyshim.toml",
          "interpreter = \"/usr/bin/python3.11\"\npreload = [\"/usr/lib/libjemalloc.so.2\"]\n");
  auto launch = prepare_launch(fs, request);
  ASSERT_TRUE(launch.ok()) << format_error(launch.error());
  EXPECT_EQ(launch->config.file, "/venv/pyshim.toml");
  EXPECT_EQ(launch->restore_library, "/opt/pyshim/lib/pyshim/libpyshim-restore.so");
  EXPECT_EQ(launch->plan.argv0, "/venv/bin/python");
  // bin/pyshim.toml miss, stat + read pyshim.toml, restore library (found,
  // then its ELF header and the interpreter's read), interpreter, preload.
  EXPECT_EQ(fs.calls, 8);
}

TEST_F(LaunchTest, ConfigBesideTheLauncherWinsOverTheOneAbove) {
  fs.file("/venv/bin/pyshim.toml", "interpreter = \"/usr/bin/python3.11\"");
  fs.file("/venv/pyshim.toml", "interpreter = \"/nope\"");
  auto found = find_config(fs, request);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->path, "/venv/bin/pyshim.toml");
}

TEST_F(LaunchTest, PyshimConfigOverridesUnlessSecure) {
  fs.file("/venv/pyshim.toml", "interpreter = \"/usr/bin/python3.11\"");
  fs.file("/etc/other.toml", "interpreter = \"/usr/bin/python3.11\"");
  std::vector<const char*> env = {"PYSHIM_CONFIG=/etc/other.toml"};
  request.env = EnvView(env);
  EXPECT_EQ(find_config(fs, request)->path, "/etc/other.toml");
  request.secure = true;
  EXPECT_EQ(find_config(fs, request)->path, "/venv/pyshim.toml");
}

TEST_F(LaunchTest, MissingPyshimConfigFileIsAnError) {
  std::vector<const char*> env = {"PYSHIM_CONFIG=/etc/missing.toml"};
  request.env = EnvView(env);
  auto found = find_config(fs, request);
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.error().exit_code(), 125);
  EXPECT_NE(found.error().message.find("/etc/missing.toml"), std::string::npos);
}

TEST_F(LaunchTest, NestedVenvFollowsTheLinkToTheOuterShimsConfig) {
  fs.file("/outer/pyshim.toml", "interpreter = \"/usr/bin/python3.11\"");
  fs.link("/outer/bin/python", "/opt/pyshim/bin/pyshim");
  fs.link("/inner/bin/python", "/outer/bin/python");
  request.invoked_path = "/inner/bin/python";
  auto found = find_config(fs, request);
  ASSERT_TRUE(found.ok()) << format_error(found.error());
  EXPECT_EQ(found->path, "/outer/pyshim.toml");
}

TEST_F(LaunchTest, NoConfigListsEveryPlaceSearched) {
  auto found = find_config(fs, request);
  ASSERT_FALSE(found.ok());
  const Error& e = found.error();
  EXPECT_EQ(e.exit_code(), 125);
  EXPECT_EQ(e.message, "no pyshim.toml found for /venv/bin/python");
  EXPECT_EQ(e.context,
            (std::vector<std::string>{
                "searched: /venv/bin/pyshim.toml", "searched: /venv/pyshim.toml",
                "searched: /opt/pyshim/bin/pyshim.toml", "searched: /opt/pyshim/pyshim.toml",
                "and the launcher carries no stamped config"}));
}

TEST_F(LaunchTest, RestoreLibraryInLibPyshimComesFirstThenBesideTheBinary) {
  fs.file("/opt/pyshim/bin/libpyshim-restore.so", testing::elf_shared_object());
  EXPECT_EQ(*find_restore_library(fs, "/opt/pyshim/bin/pyshim", nullptr, 0),
            "/opt/pyshim/lib/pyshim/libpyshim-restore.so");
  fs.file("/build/libpyshim-restore.so", testing::elf_shared_object());
  EXPECT_EQ(*find_restore_library(fs, "/build/pyshim", nullptr, 0), "/build/libpyshim-restore.so")
      << "not found";
}

TEST_F(LaunchTest, MissingRestoreLibraryIs125) {
  auto result = find_restore_library(fs, "/elsewhere/bin/pyshim", nullptr, 0);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().exit_code(), 125);
  EXPECT_EQ(result.error().context.size(), 2u);
}

TEST_F(LaunchTest, MissingInterpreterIs127WithLocation) {
  Error e = launch_error("\ninterpreter = \"/opt/py/bin/python3.12\"");
  EXPECT_EQ(e.exit_code(), 127);
  EXPECT_EQ(e.message, "interpreter not found: /opt/py/bin/python3.12");
  EXPECT_EQ(e.context[0], "config: /venv/pyshim.toml:2:15");
  EXPECT_EQ(e.hint, "fix 'interpreter' or run `pyshim doctor /venv/bin/python`");
}

TEST_F(LaunchTest, NonExecutableInterpreterIs126) {
  fs.file("/usr/bin/python3.11", "PY", S_IFREG | 0644);
  EXPECT_EQ(launch_error("interpreter = \"/usr/bin/python3.11\"").exit_code(), 126);
  fs.file("/usr/bin/pydir", "", S_IFDIR | 0755);
  EXPECT_EQ(launch_error("interpreter = \"/usr/bin/pydir\"").exit_code(), 126);
}

TEST_F(LaunchTest, InterpreterThatIsTheShimItselfIs125) {
  Error e = launch_error("interpreter = \"bin/python\"");
  EXPECT_EQ(e.exit_code(), 125);
  EXPECT_EQ(e.message, "interpreter resolves to the shim itself: /venv/bin/python");
}

TEST_F(LaunchTest, InterpreterThatIsACopyOfTheShimIs125) {
  // Another stamped copy: same size, different stamp bytes.
  std::string copy = launcher_image();
  copy[900] = 'X';
  fs.file("/other/python", copy, kExe);
  EXPECT_EQ(launch_error("interpreter = \"/other/python\"").message,
            "interpreter resolves to the shim itself: /other/python");
}

TEST_F(LaunchTest, SameSizeButDifferentFileIsNotTheShim) {
  fs.file("/other/python", std::string(1000, 'P'), kExe);
  fs.file("/venv/pyshim.toml", "interpreter = \"/other/python\"");
  EXPECT_TRUE(prepare_launch(fs, request).ok());
}

TEST_F(LaunchTest, ALauncherOfAnotherBuildIsRefusedWhenALauncherExecdThisOne) {
  std::string other = "ELF..." + std::string(kLauncherNote, sizeof kLauncherNote) + "...";
  fs.file("/other/bin/python", other, kExe);
  fs.file("/venv/pyshim.toml", "interpreter = \"/other/bin/python\"");
  // A normal launch does not read the interpreter (no extra syscalls).
  EXPECT_TRUE(prepare_launch(fs, request).ok());
  std::vector<const char*> env = {"PYSHIM_ORIG_LD_PRELOAD="};
  request.env = EnvView(env);
  auto launch = prepare_launch(fs, request);
  ASSERT_FALSE(launch.ok());
  EXPECT_EQ(launch.error().exit_code(), 125);
  EXPECT_EQ(launch.error().message, "interpreter resolves to the shim itself: /other/bin/python");
  request.env = {};
  request.thorough = true;
  EXPECT_FALSE(prepare_launch(fs, request).ok());
}

TEST_F(LaunchTest, MissingPreloadIs125) {
  Error e = launch_error("interpreter = \"/usr/bin/python3.11\"\npreload = [\"/no/libasan.so\"]");
  EXPECT_EQ(e.exit_code(), 125);
  EXPECT_EQ(e.message, "preload not found: /no/libasan.so");
  EXPECT_EQ(e.context[0], "config: /venv/pyshim.toml:2:12");
}

TEST_F(LaunchTest, SeparatorsInLoaderPathsAre125) {
  fs.file("/a b/lib.so", "X");
  Error preload =
      launch_error("interpreter = \"/usr/bin/python3.11\"\npreload = [\"/a b/lib.so\"]");
  EXPECT_EQ(preload.exit_code(), 125);
  EXPECT_EQ(preload.message,
            "cannot put /a b/lib.so in LD_PRELOAD: the loader splits LD_PRELOAD at ' ' and ':'");
  EXPECT_EQ(preload.context[0], "config: /venv/pyshim.toml:2:12");
  Error dir = launch_error("interpreter = \"/usr/bin/python3.11\"\nlibrary_path = [\"/x:y\"]");
  EXPECT_EQ(dir.exit_code(), 125);
  EXPECT_EQ(dir.message,
            "cannot put /x:y in LD_LIBRARY_PATH: the loader splits LD_LIBRARY_PATH at ':' and ';'");
  EXPECT_EQ(dir.context[0], "config: /venv/pyshim.toml:2:17");
  // Whitespace the loader does not split on is refused too, in both lists.
  for (const char* odd : {"/a\\rb", "/a\\u000bb", "/a\\fb", "/a\\tb"}) {
    Error e = launch_error(
        fmt::format("interpreter = \"/usr/bin/python3.11\"\nlibrary_path = [\"{}\"]", odd));
    EXPECT_EQ(e.exit_code(), 125) << odd;
    EXPECT_NE(e.message.find("it contains whitespace"), std::string::npos) << e.message;
  }
}

TEST(InvokedSource, ExecFnNormallyArgv0ForShebangScriptsAndFdExecs) {
  const char* plain[] = {"python", "-c", "pass"};
  EXPECT_EQ(invoked_source("/v/bin/python", 3, plain), InvokedSource::kExecFn);
  // #!/v/bin/python at the top of /v/bin/tool, run as `tool x`.
  const char* script[] = {"/v/bin/python", "/v/bin/tool", "x"};
  EXPECT_EQ(invoked_source("/v/bin/tool", 3, script), InvokedSource::kArgv0);
  // #!/v/bin/python -E: the optional argument comes first.
  const char* with_arg[] = {"/v/bin/python", "-E", "./tool"};
  EXPECT_EQ(invoked_source("./tool", 3, with_arg), InvokedSource::kArgv0);
  // `python /v/bin/python`: argv[0] has no slash, so it is not a #! run.
  const char* self_as_script[] = {"python", "/v/bin/python"};
  EXPECT_EQ(invoked_source("/v/bin/python", 2, self_as_script), InvokedSource::kExecFn);
  // `/v/bin/python /v/bin/python`: argv[0] is AT_EXECFN itself.
  const char* same[] = {"/v/bin/python", "/v/bin/python"};
  EXPECT_EQ(invoked_source("/v/bin/python", 2, same), InvokedSource::kExecFn);
  const char* fd[] = {"python"};
  EXPECT_EQ(invoked_source("/dev/fd/3", 1, fd), InvokedSource::kArgv0);
  EXPECT_EQ(invoked_source(nullptr, 1, fd), InvokedSource::kArgv0);
}

TEST(FormatError, PrintsMessageContextAndHint) {
  Error e{ErrorKind::kInterpreterNotFound,
          "interpreter not found: /x",
          {"config: /v/pyshim.toml:1:15"},
          "fix it"};
  EXPECT_EQ(format_error(e),
            "pyshim: error: interpreter not found: /x\n  config: /v/pyshim.toml:1:15\n"
            "  hint: fix it\n");
}

}  // namespace
}  // namespace pyshim

namespace pyshim {
namespace {

// A launcher copy at /venv/bin/python3.11 stamped from /venv/pyshim.toml.
class StampedLaunchTest : public LaunchTest {
 protected:
  void SetUp() override {
    LaunchTest::SetUp();
    fs.file("/venv/bin/python3.11", launcher_image(), kExe, 8);
    fs.file("/venv/lib/pyshim/libpyshim-restore.so", testing::elf_shared_object());
    fs.link("/venv/bin/python", "python3.11");
    fs.file("/venv/pyshim.toml", "interpreter = \"/usr/bin/python3.11\"\n");
    request.self_exe = "/venv/bin/python3.11";
    Stamp stamp;
    stamp.source = "/venv/pyshim.toml";
    FileInfo info;
    EXPECT_EQ(fs.stat(stamp.source, info), 0);
    stamp.identity = identity_of(info);
    stamp.restore_library = "/venv/lib/pyshim/libpyshim-restore.so";
    stamp.config.file = stamp.source;
    stamp.config.interpreter.value = "/usr/bin/python3.11";
    stamp.config.preload = {{"/usr/lib/libjemalloc.so.2", {}}};
    request.stamp = stamp;
    fs.calls = 0;
  }
  std::string preload_of(const Launch& launch) {
    for (const char* entry : launch.plan.env) {
      if (entry != nullptr && std::string_view(entry).starts_with("LD_PRELOAD=")) return entry + 11;
    }
    return "<unset>";
  }
};

TEST_F(StampedLaunchTest, TheStampedFileUnchangedIsNotReadOrParsed) {
  auto launch = prepare_launch(fs, request);
  ASSERT_TRUE(launch.ok()) << format_error(launch.error());
  EXPECT_EQ(launch->source, ConfigSource::kStamp);
  // The stamp says jemalloc; the file does not: the stamp was used.
  EXPECT_EQ(preload_of(*launch), "/usr/lib/libjemalloc.so.2:/venv/lib/pyshim/libpyshim-restore.so");
  // stat bin/pyshim.toml (miss), stat pyshim.toml, restore library (and the
  // ELF headers of it and the interpreter), interpreter, preload: no read of
  // the config.
  EXPECT_EQ(fs.calls, 7);
}

TEST_F(StampedLaunchTest, AHandEditIsParsedAtOnce) {
  fs.file("/venv/pyshim.toml", "interpreter = \"/usr/bin/python3.11\"\npreload = []\n");
  auto launch = prepare_launch(fs, request);
  ASSERT_TRUE(launch.ok()) << format_error(launch.error());
  EXPECT_EQ(launch->source, ConfigSource::kFile);
  EXPECT_EQ(preload_of(*launch), "/venv/lib/pyshim/libpyshim-restore.so");
}

TEST_F(StampedLaunchTest, ACopyFarAwayUsesTheStampAndItsEditedSource) {
  fs.file("/far/python", launcher_image(), kExe, 9);
  request.invoked_path = "/far/python";
  request.self_exe = "/far/python";
  auto launch = prepare_launch(fs, request);
  ASSERT_TRUE(launch.ok()) << format_error(launch.error());
  EXPECT_EQ(launch->source, ConfigSource::kStamp);
  EXPECT_EQ(launch->restore_library, "/venv/lib/pyshim/libpyshim-restore.so") << "the stamped one";

  fs.file("/venv/pyshim.toml", "interpreter = \"/usr/bin/python3.11\"\n");  // edited
  launch = prepare_launch(fs, request);
  ASSERT_TRUE(launch.ok());
  EXPECT_EQ(launch->source, ConfigSource::kFile);
  EXPECT_EQ(launch->config.file, "/venv/pyshim.toml");

  fs.remove("/venv/pyshim.toml");  // gone: the stamp alone
  launch = prepare_launch(fs, request);
  ASSERT_TRUE(launch.ok());
  EXPECT_EQ(launch->source, ConfigSource::kStamp);
  EXPECT_EQ(preload_of(*launch), "/usr/lib/libjemalloc.so.2:/venv/lib/pyshim/libpyshim-restore.so");
}

TEST_F(StampedLaunchTest, ADamagedStampIsAnErrorOnlyWhenNeeded) {
  request.stamp.reset();
  Error damaged;
  damaged.message = "the launcher's stamped config is damaged: checksum mismatch";
  request.stamp_error = damaged;
  EXPECT_TRUE(prepare_launch(fs, request).ok()) << "a pyshim.toml beside P needs no stamp";
  request.invoked_path = "/far/python";
  auto launch = prepare_launch(fs, request);
  ASSERT_FALSE(launch.ok());
  EXPECT_EQ(launch.error().exit_code(), 125);
  EXPECT_EQ(launch.error().message, damaged.message);
}

TEST_F(StampedLaunchTest, ARestoreLibraryPathTheLoaderWouldSplitIsPreloadedByDescriptor) {
  fs.file("/my venv/lib/pyshim/libpyshim-restore.so", testing::elf_shared_object());
  fs.file("/my venv/bin/python3.11", launcher_image(), kExe, 10);
  request.self_exe = "/my venv/bin/python3.11";
  auto launch = prepare_launch(fs, request);
  ASSERT_TRUE(launch.ok()) << format_error(launch.error());
  EXPECT_EQ(launch->restore_library, "/my venv/lib/pyshim/libpyshim-restore.so");
  EXPECT_EQ(preload_of(*launch), "/usr/lib/libjemalloc.so.2:/proc/self/fd/5");
  for (const char* path : {"/a:b/x.so", "/a b/x.so", "/a\tb/x.so", "/$ORIGIN/x.so"}) {
    EXPECT_TRUE(needs_fd_preload(path)) << path;
  }
  EXPECT_FALSE(needs_fd_preload("/plain/lib-x_1.so"));
}

}  // namespace
}  // namespace pyshim

namespace pyshim {
namespace {

TEST_F(LaunchTest, ASetuidLauncherRefusesToRun) {
  fs.file("/venv/pyshim.toml", "interpreter = \"/usr/bin/python3.11\"");
  request.secure = true;
  auto launch = prepare_launch(fs, request);
  ASSERT_FALSE(launch.ok());
  EXPECT_EQ(launch.error().exit_code(), 125);
  EXPECT_NE(launch.error().message.find("elevated privileges"), std::string::npos);
}

TEST_F(LaunchTest, AStrangersConfigInAFolderAnyoneCanWriteIsSkipped) {
  request.euid = 1000;
  fs.file("/venv/pyshim.toml", "interpreter = \"/nope\"");
  fs.owner("/venv/pyshim.toml", 1001);
  fs.file("/venv", "", S_IFDIR | 01777);
  auto found = find_config(fs, request);
  ASSERT_FALSE(found.ok());
  EXPECT_NE(found.error().context[1].find("skipped: owned by uid 1001"), std::string::npos)
      << found.error().context[1];
  // A stranger's in a folder only they can write: trusted only when they
  // own the launcher binary too (they could replace that anyway).
  fs.file("/venv", "", S_IFDIR | 0755);
  EXPECT_FALSE(find_config(fs, request).ok());
  fs.owner("/opt/pyshim/bin/pyshim", 1001);
  EXPECT_TRUE(find_config(fs, request).ok());
  // The caller's own, or root's: trusted.
  fs.file("/venv", "", S_IFDIR | 01777);
  fs.owner("/venv/pyshim.toml", 1000);
  EXPECT_TRUE(find_config(fs, request).ok());
}

TEST_F(LaunchTest, AVariableBeyondTheKernelsLimitIs125NotCannotExecute) {
  std::string huge(140000, 'x');
  std::vector<const char*> env = {nullptr};
  std::string entry = "LD_LIBRARY_PATH=/" + huge;
  env[0] = entry.c_str();
  request.env = EnvView(env);
  fs.file("/venv/pyshim.toml", "interpreter = \"/usr/bin/python3.11\"\nlibrary_path = [\"/l\"]\n");
  auto launch = prepare_launch(fs, request);
  ASSERT_FALSE(launch.ok());
  EXPECT_EQ(launch.error().exit_code(), 125);
  EXPECT_NE(launch.error().message.find("LD_LIBRARY_PATH would be"), std::string::npos);
}

TEST(Printable, EscapesControlBytesAndCapsLength) {
  EXPECT_EQ(printable("a\x1b[31mb\n", 100), "a\\x1b[31mb\\x0a");
  EXPECT_EQ(printable("caf\xc3\xa9 \xc2\x9b \xff", 100), "caf\xc3\xa9 \\xc2\\x9b \\xff");
  EXPECT_EQ(printable(std::string(50, 'x'), 10), "xxxxxxxxxx... (40 more bytes)");
  Error e;
  e.message = "bad \x07 bell";
  for (int i = 0; i < 30; ++i) e.context.push_back("line");
  std::string text = format_error(e);
  EXPECT_NE(text.find("bad \\x07 bell"), std::string::npos);
  EXPECT_NE(text.find("... (10 more lines)"), std::string::npos);
}

}  // namespace
}  // namespace pyshim

namespace pyshim {
namespace {

TEST_F(LaunchTest, AHugeListIsRefusedBeforeThePlanIsComputed) {
  std::string config = "interpreter = \"/usr/bin/python3.11\"\nlibrary_path = [";
  for (int i = 0; i < 100000; ++i) config += "\"/l/" + std::to_string(i) + "\",";
  config += "]\n";
  Error e = launch_error(config);
  EXPECT_EQ(e.exit_code(), 125);
  EXPECT_NE(e.message.find("LD_LIBRARY_PATH would be at least"), std::string::npos) << e.message;
}

}  // namespace
}  // namespace pyshim

namespace pyshim {
namespace {

TEST_F(LaunchTest, AScriptWhoseInterpreterIsALauncherRunsALauncher) {
  fs.file("/s1", "#!/opt/pyshim/bin/pyshim -E\nprint()\n", kExe);
  fs.file("/s2", "#! \t/s1\n", kExe);
  fs.file("/env", "#!/usr/bin/env python3\n", kExe);
  fs.file("/plain", "#!/usr/bin/python3.11\n", kExe);
  EXPECT_TRUE(runs_a_launcher(fs, "/opt/pyshim/bin/pyshim"));
  EXPECT_TRUE(runs_a_launcher(fs, "/s1"));
  EXPECT_TRUE(runs_a_launcher(fs, "/s2"));
  EXPECT_FALSE(runs_a_launcher(fs, "/env"));
  EXPECT_FALSE(runs_a_launcher(fs, "/plain"));
  EXPECT_FALSE(runs_a_launcher(fs, "/usr/bin/python3.11"));
  // The launch refuses it at the second hop (the bookkeeping is there).
  fs.file("/venv/pyshim.toml", "interpreter = \"/s2\"\n");
  std::vector<const char*> env = {"PYSHIM_ORIG_LD_PRELOAD="};
  request.env = EnvView(env);
  auto launch = prepare_launch(fs, request);
  ASSERT_FALSE(launch.ok());
  EXPECT_EQ(launch.error().exit_code(), 125);
  EXPECT_EQ(launch.error().message, "interpreter resolves to the shim itself: /s2");
}

}  // namespace
}  // namespace pyshim

namespace pyshim {
namespace {

TEST_F(LaunchTest, ARestoreLibraryTheLoaderWouldSkipIs125) {
  fs.file("/venv/pyshim.toml", "interpreter = \"/usr/bin/python3.11\"\n");
  const std::string restore = "/opt/pyshim/lib/pyshim/libpyshim-restore.so";
  fs.file(restore, "");
  auto launch = prepare_launch(fs, request);
  ASSERT_FALSE(launch.ok());
  EXPECT_EQ(launch.error().exit_code(), 125);
  EXPECT_EQ(launch.error().message,
            "restore library " + restore + " is not an ELF file (not an ELF file)");
  std::string image = testing::elf_shared_object();
  image[16] = 2;  // ET_EXEC
  fs.file(restore, image);
  EXPECT_EQ(prepare_launch(fs, request).error().message,
            "restore library " + restore + " is not a shared object");
  // A 32-bit interpreter cannot take a 64-bit library.
  std::string interpreter = testing::elf_shared_object();
  interpreter[4] = 1;  // ELFCLASS32
  interpreter.resize(52);
  interpreter[16] = 2, interpreter[40] = 52, interpreter[42] = 32;
  fs.file("/usr/bin/python3.11", interpreter, kExe);
  fs.file(restore, testing::elf_shared_object());
  auto wrong = prepare_launch(fs, request);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("the interpreter /usr/bin/python3.11 is"), std::string::npos)
      << wrong.error().message;
  fs.file("/usr/bin/python3.11", "PY", kExe);
  EXPECT_TRUE(prepare_launch(fs, request).ok());
}

}  // namespace
}  // namespace pyshim

namespace pyshim {
namespace {

TEST_F(StampedLaunchTest, WithoutProcTheDescriptorPreloadIs125) {
  fs.file("/my venv/lib/pyshim/libpyshim-restore.so", testing::elf_shared_object());
  fs.file("/my venv/bin/python3.11", launcher_image(), kExe, 10);
  request.self_exe = "/my venv/bin/python3.11";
  fs.proc_mounted = false;
  auto launch = prepare_launch(fs, request);
  ASSERT_FALSE(launch.ok());
  EXPECT_EQ(launch.error().exit_code(), 125);
  EXPECT_EQ(launch.error().message,
            "cannot preload the restore library /my venv/lib/pyshim/libpyshim-restore.so as "
            "/proc/self/fd/5: /proc is not usable");
}

TEST_F(LaunchTest, WithoutItsRealBinaryNothingIsLookedUpRelativeToTheCwd) {
  fs.file("/venv/pyshim.toml", "interpreter = \"/usr/bin/python3.11\"\n");
  fs.file("./lib/pyshim/libpyshim-restore.so", testing::elf_shared_object());
  fs.file("lib/pyshim/libpyshim-restore.so", testing::elf_shared_object());
  fs.file("libpyshim-restore.so", testing::elf_shared_object());
  request.self_exe = "";
  int before = fs.calls;
  auto launch = prepare_launch(fs, request);
  ASSERT_FALSE(launch.ok());
  EXPECT_EQ(launch.error().exit_code(), 125);
  EXPECT_EQ(launch.error().message, "restore library libpyshim-restore.so not found");
  ASSERT_FALSE(launch.error().context.empty());
  EXPECT_NE(launch.error().context[0].find("/proc/self/exe is unreadable"), std::string::npos);
  EXPECT_GT(fs.calls, before);
  EXPECT_TRUE(restore_library_candidates("").empty());
  EXPECT_TRUE(restore_library_candidates("pyshim").empty());
  // The stamped path (absolute, trusted) is still used.
  Stamp stamp;
  stamp.restore_library = "/opt/pyshim/lib/pyshim/libpyshim-restore.so";
  EXPECT_EQ(*find_restore_library(fs, "", &stamp, 0), stamp.restore_library);
  // A stranger's file where the stamp points is not.
  fs.owner(stamp.restore_library, 1001);
  EXPECT_FALSE(find_restore_library(fs, "", &stamp, 0).ok());
}

TEST_F(LaunchTest, ABaseLaunchersVenvComesBeforeItsStamp) {
  EXPECT_EQ(base_launcher_venv("/b/.pyshim/base/bin"), "/b");
  EXPECT_EQ(base_launcher_venv("/.pyshim/base/bin"), "");
  EXPECT_EQ(base_launcher_venv("/b/bin"), "");
  EXPECT_EQ(restore_library_candidates("/b/.pyshim/base/bin/python3.11"),
            (std::vector<std::string>{"/b/.pyshim/base/lib/pyshim/libpyshim-restore.so",
                                      "/b/.pyshim/base/bin/libpyshim-restore.so",
                                      "/b/lib/pyshim/libpyshim-restore.so"}));
}

}  // namespace
}  // namespace pyshim
