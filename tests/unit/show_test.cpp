#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "pyshim/explain.hpp"

namespace pyshim {
namespace {

constexpr const char* kRestore = "/opt/pyshim/lib/pyshim/libpyshim-restore.so";
constexpr const char* kConfigText = R"(interpreter = "/usr/bin/python3.11"
preload = ["/usr/lib/libjemalloc.so.2"]
library_path = ["dynlib"]
[env]
ZED = "last in key order, first in the file"
MALLOC_CONF = "background_thread:true"
)";

// A launch planned for a caller environment; owns everything the plan
// points into.
struct Planned {
  Planned(const char* config_text, std::vector<std::string> caller_env)
      : env_storage(std::move(caller_env)) {
    for (const std::string& entry : env_storage) env.push_back(entry.c_str());
    auto config = parse_config(config_text, "/venv/pyshim.toml");
    EXPECT_TRUE(config.ok()) << format_error(config.error());
    launch.config = std::move(*config);
    launch.restore_library = kRestore;
    launch.restore_preload = kRestore;
    request.invoked_path = "/venv/bin/python";
    request.env = EnvView(env);
    launch.plan = make_plan({&launch.config, request.env, request.invoked_path, kRestore});
  }

  const EnvChange* change(std::string_view name) const {
    for (const EnvChange& c : changes) {
      if (c.name == name) return &c;
    }
    return nullptr;
  }

  std::vector<std::string> env_storage;
  std::vector<const char*> env;
  LaunchRequest request;
  Launch launch;
  std::vector<EnvChange> changes;
};

std::vector<std::string> names(const std::vector<EnvChange>& changes) {
  std::vector<std::string> out;
  for (const EnvChange& c : changes) out.push_back(c.name);
  return out;
}

TEST(EnvChanges, UnsetCallerGetsEverythingAddedWithOrigins) {
  Planned p(kConfigText, {"PATH=/usr/bin", "HOME=/root"});
  p.changes = env_changes(p.launch, p.request.env);
  EXPECT_EQ(names(p.changes),
            (std::vector<std::string>{"LD_PRELOAD", "LD_LIBRARY_PATH", "ZED", "MALLOC_CONF",
                                      "PYSHIM_ORIG_LD_PRELOAD", "PYSHIM_ORIG_LD_LIBRARY_PATH",
                                      "PYSHIM_TARGET"}));

  const EnvChange* preload = p.change("LD_PRELOAD");
  ASSERT_NE(preload, nullptr);
  EXPECT_TRUE(preload->added);
  EXPECT_FALSE(preload->before.has_value());
  EXPECT_EQ(preload->value, std::string("/usr/lib/libjemalloc.so.2:") + kRestore);
  EXPECT_EQ(preload->origin,
            (std::vector<std::string>{"/venv/pyshim.toml:2:12", "restore library"}));
  EXPECT_TRUE(preload->restored_before_main);

  const EnvChange* library_path = p.change("LD_LIBRARY_PATH");
  ASSERT_NE(library_path, nullptr);
  EXPECT_EQ(library_path->value, "/venv/dynlib");
  EXPECT_EQ(library_path->origin, (std::vector<std::string>{"/venv/pyshim.toml:3:17"}));

  const EnvChange* zed = p.change("ZED");
  ASSERT_NE(zed, nullptr);
  EXPECT_EQ(zed->origin, (std::vector<std::string>{"/venv/pyshim.toml:5:7"}));
  EXPECT_FALSE(zed->restored_before_main);

  const EnvChange* bookkeeping = p.change("PYSHIM_ORIG_LD_PRELOAD");
  ASSERT_NE(bookkeeping, nullptr);
  EXPECT_EQ(bookkeeping->value, "");
  EXPECT_EQ(bookkeeping->origin, (std::vector<std::string>{std::string(kOriginBookkeeping)}));
  EXPECT_TRUE(bookkeeping->restored_before_main);
}

TEST(EnvChanges, EmptyBeforeIsNotUnset) {
  Planned p(kConfigText, {"LD_PRELOAD=", "LD_LIBRARY_PATH="});
  p.changes = env_changes(p.launch, p.request.env);
  const EnvChange* preload = p.change("LD_PRELOAD");
  ASSERT_NE(preload, nullptr);
  EXPECT_FALSE(preload->added);
  ASSERT_TRUE(preload->before.has_value());
  EXPECT_EQ(*preload->before, "");
  // An empty caller value contributes nothing, so it is not an origin.
  EXPECT_EQ(preload->origin,
            (std::vector<std::string>{"/venv/pyshim.toml:2:12", "restore library"}));
  EXPECT_EQ(p.change("PYSHIM_ORIG_LD_PRELOAD")->value, "LD_PRELOAD=");
}

TEST(EnvChanges, CallersOwnEntriesAreNamedAsAnOrigin) {
  Planned p(kConfigText, {"LD_PRELOAD=/caller/libx.so", "LD_LIBRARY_PATH=/caller/lib"});
  p.changes = env_changes(p.launch, p.request.env);
  const EnvChange* preload = p.change("LD_PRELOAD");
  ASSERT_NE(preload, nullptr);
  EXPECT_EQ(preload->before, std::optional<std::string>("/caller/libx.so"));
  EXPECT_EQ(preload->origin.back(), kOriginCaller);
  EXPECT_EQ(p.change("LD_LIBRARY_PATH")->origin.back(), kOriginCaller);
}

constexpr const char* kEnvModesConfig = R"(interpreter = "/usr/bin/python3.11"
[env]
PYTHONPATH = { prepend = "/build/python" }
CLASSPATH = { append = "/x.jar" }
)";

TEST(EnvChanges, PrependAndAppendNameTheCallersPart) {
  Planned p(kEnvModesConfig, {"PYTHONPATH=/caller"});
  p.changes = env_changes(p.launch, p.request.env);
  const EnvChange* path = p.change("PYTHONPATH");
  ASSERT_NE(path, nullptr);
  EXPECT_EQ(path->value, "/build/python:/caller");
  EXPECT_EQ(path->mode, std::optional<EnvMode>(EnvMode::kPrepend));
  EXPECT_EQ(path->caller_part, std::optional<std::string>("/caller"));
  EXPECT_EQ(path->origin,
            (std::vector<std::string>{"/venv/pyshim.toml:3:26", std::string(kOriginCaller)}));
  const EnvChange* classpath = p.change("CLASSPATH");
  ASSERT_NE(classpath, nullptr);
  EXPECT_EQ(classpath->mode, std::optional<EnvMode>(EnvMode::kAppend));
  EXPECT_EQ(classpath->caller_part, std::nullopt);
  EXPECT_EQ(classpath->origin, (std::vector<std::string>{"/venv/pyshim.toml:4:24"}));

  std::string text = show_text(p.request, p.launch);
  EXPECT_NE(text.find("  PYTHONPATH=/build/python:/caller\n"
                      "    changed, before: \"/caller\"\n"
                      "    from: /venv/pyshim.toml:3:26, caller's environment\n"
                      "    prepend: the caller's part is \"/caller\"\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("    append: the caller had none\n"), std::string::npos) << text;

  std::string json = show_json(p.request, p.launch);
  EXPECT_NE(json.find("\"caller_part\" : \"/caller\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"mode\" : \"prepend\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"mode\" : \"append\""), std::string::npos) << json;
  // A set entry keeps the keys it had before the forms existed.
  Planned set(kConfigText, {});
  std::string plain = show_json(set.request, set.launch);
  EXPECT_EQ(plain.find("\"mode\""), std::string::npos) << plain;
  EXPECT_EQ(plain.find("\"caller_part\""), std::string::npos) << plain;
}

TEST(EnvChanges, APartAlreadyInPlaceIsNoChange) {
  Planned p(kEnvModesConfig, {"PYTHONPATH=/build/python:/caller", "CLASSPATH=/c.jar:/x.jar"});
  p.changes = env_changes(p.launch, p.request.env);
  EXPECT_EQ(p.change("PYTHONPATH"), nullptr);
  EXPECT_EQ(p.change("CLASSPATH"), nullptr);
}

TEST(EnvChanges, UnchangedVariablesAreLeftOut) {
  Planned p(kConfigText, {"MALLOC_CONF=background_thread:true", "ZED=other"});
  p.changes = env_changes(p.launch, p.request.env);
  EXPECT_EQ(p.change("MALLOC_CONF"), nullptr);
  ASSERT_NE(p.change("ZED"), nullptr);
  EXPECT_FALSE(p.change("ZED")->added);
  EXPECT_EQ(p.change("ZED")->before, std::optional<std::string>("other"));
}

TEST(EnvChanges, NoLibraryPathMeansLdLibraryPathUntouched) {
  Planned p("interpreter = \"/usr/bin/python3.11\"\n", {"LD_LIBRARY_PATH=/x"});
  p.changes = env_changes(p.launch, p.request.env);
  EXPECT_EQ(p.change("LD_LIBRARY_PATH"), nullptr);
  ASSERT_NE(p.change("LD_PRELOAD"), nullptr);
  EXPECT_EQ(p.change("LD_PRELOAD")->origin, (std::vector<std::string>{"restore library"}));
}

TEST(EnvChanges, StartupHooksVariableComesFromThePythonSection) {
  Planned p("interpreter = \"/usr/bin/python3.11\"\n[python]\nstartup = [\"app.plugins:load\"]\n",
            {});
  p.changes = env_changes(p.launch, p.request.env);
  EXPECT_EQ(names(p.changes),
            (std::vector<std::string>{"LD_PRELOAD", "PYSHIM_STARTUP", "PYSHIM_ORIG_LD_PRELOAD",
                                      "PYSHIM_ORIG_LD_LIBRARY_PATH", "PYSHIM_TARGET"}));
  const EnvChange* startup = p.change("PYSHIM_STARTUP");
  ASSERT_NE(startup, nullptr);
  EXPECT_EQ(startup->origin, (std::vector<std::string>{"/venv/pyshim.toml:3:12"}));
  EXPECT_TRUE(startup->restored_before_main);
}

TEST(ShowJson, IsStableAndDistinguishesUnsetFromEmpty) {
  Planned p("interpreter = \"/usr/bin/python3.11\"\npreload = [\"/l/a.so\"]\n",
            {"LD_PRELOAD=", "PATH=/bin"});
  EXPECT_EQ(show_json(p.request, p.launch),
            R"json({
    "argv0" : "/venv/bin/python",
    "config" : "/venv/pyshim.toml",
    "config_source" : "file",
    "env" : [
        {
            "action" : "changed",
            "before" : "",
            "name" : "LD_PRELOAD",
            "origin" : [
                "/venv/pyshim.toml:2:12",
                "restore library"
            ],
            "restored_before_main" : true,
            "value" : "/l/a.so:/opt/pyshim/lib/pyshim/libpyshim-restore.so"
        },
        {
            "action" : "added",
            "name" : "PYSHIM_ORIG_LD_PRELOAD",
            "origin" : [
                "bookkeeping (removed by the restore library before main)"
            ],
            "restored_before_main" : true,
            "value" : "LD_PRELOAD="
        },
        {
            "action" : "added",
            "name" : "PYSHIM_ORIG_LD_LIBRARY_PATH",
            "origin" : [
                "bookkeeping (removed by the restore library before main)"
            ],
            "restored_before_main" : true,
            "value" : ""
        },
        {
            "action" : "added",
            "name" : "PYSHIM_TARGET",
            "origin" : [
                "bookkeeping (removed by the restore library before main)"
            ],
            "restored_before_main" : true,
            "value" : "/venv/bin/python"
        }
    ],
    "interpreter" : {
        "origin" : "/venv/pyshim.toml:1:15",
        "path" : "/usr/bin/python3.11"
    },
    "launcher" : "/venv/bin/python",
    "library_path" : [],
    "library_path_position" : "prepend",
    "preload" : [
        {
            "origin" : "/venv/pyshim.toml:2:12",
            "path" : "/l/a.so"
        }
    ],
    "restore_library" : "/opt/pyshim/lib/pyshim/libpyshim-restore.so",
    "schema" : 1
}
)json");
}

TEST(ShowJson, EscapesQuotesAndNewlines) {
  Planned p("interpreter = \"/usr/bin/python3.11\"\n[env]\nX = \"a\\\"b\\nc\"\n", {});
  std::string json = show_json(p.request, p.launch);
  EXPECT_NE(json.find(R"("value" : "a\"b\nc")"), std::string::npos) << json;
}

// show and show --json list the top-level keys from the key table: each
// one (bar [env], shown as the environment) has its label and its JSON field.
TEST(ShowText, ListsEveryTopLevelKeyOfTheTable) {
  Planned p("interpreter = \"/usr/bin/python3.11\"\nlibrary_path = [\"/l\"]\n", {});
  std::string text = show_text(p.request, p.launch);
  std::string json = show_json(p.request, p.launch);
  for (const ConfigKey& key : config_keys()) {
    if (!key.section.empty()) continue;
    if (key.kind != KeyKind::kPosition) {
      EXPECT_NE(text.find(fmt::format("\n{}:", key.name)), std::string::npos) << key.name << text;
    }
    EXPECT_NE(json.find(fmt::format("\"{}\" :", key.name)), std::string::npos) << key.name;
  }
  EXPECT_NE(text.find("prepended to the caller's LD_LIBRARY_PATH  (default)"), std::string::npos)
      << text;
}

TEST(ShowText, SaysWhereEachPartComesFrom) {
  Planned p(kConfigText, {"LD_PRELOAD=", "MALLOC_CONF=old"});
  std::string text = show_text(p.request, p.launch);
  EXPECT_NE(text.find("config:          /venv/pyshim.toml  (parsed at launch)\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("interpreter:     /usr/bin/python3.11  (/venv/pyshim.toml:1:15)\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("argv[0]:         /venv/bin/python\n"), std::string::npos) << text;
  EXPECT_NE(text.find(std::string("restore library: ") + kRestore), std::string::npos) << text;
  EXPECT_NE(text.find("  LD_PRELOAD=/usr/lib/libjemalloc.so.2:"), std::string::npos) << text;
  EXPECT_NE(text.find("    changed, before: empty\n"), std::string::npos) << text;
  EXPECT_NE(text.find("    changed, before: \"old\"\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  LD_LIBRARY_PATH=/venv/dynlib\n    added, before: unset\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("restored to the caller's values inside the\ninterpreter before main()"),
            std::string::npos)
      << text;
}

// ---------------------------------------------------------------- doctor

TEST(ProbeOutput, UnescapesAndKeepsRepeatedKeys) {
  auto probe = ProbeOutput::parse("a=x\\\\y\\nz\nm=1\nm=2\nnoise without equals\nempty=\n");
  EXPECT_EQ(probe.get("a"), std::optional<std::string>("x\\y\nz"));
  EXPECT_EQ(probe.all("m"), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(probe.get("empty"), std::optional<std::string>(""));
  EXPECT_FALSE(probe.has("missing"));
}

TEST(LexicallyNormal, CollapsesDotsAndSlashes) {
  EXPECT_EQ(lexically_normal("/a/./b//../c/"), "/a/c");
  EXPECT_EQ(lexically_normal("/../a"), "/a");
  EXPECT_EQ(lexically_normal("/"), "/");
}

class RoundTripChecks : public ::testing::Test {
 protected:
  void SetUp() override {
    trip.launcher = "/venv/bin/python";
    trip.preloads = {{"/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
                      "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}};
    trip.restore_library = {kRestore, kRestore};
    trip.status = "exit status 0";
    trip.timeout_seconds = 30;
  }

  static std::string good_output() {
    return "executable=/venv/bin/python\n"
           "implementation=cpython\n"
           "parent.map=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n"
           "parent.map=/opt/pyshim/lib/pyshim/libpyshim-restore.so\n"
           "spawn.map=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n"
           "spawn.ok=1\n"
           "sh.ok=1\n"
           "done=1\n";
  }

  std::vector<Check> failures() const {
    std::vector<Check> out;
    for (const Check& c : round_trip_checks(trip)) {
      if (c.state != Check::State::kPass) out.push_back(c);
    }
    return out;
  }

  RoundTrip trip;
};

TEST_F(RoundTripChecks, GoodOutputPassesEveryCheck) {
  trip.out = good_output();
  std::vector<Check> checks = round_trip_checks(trip);
  ASSERT_EQ(checks.size(), 7u);
  for (const Check& c : checks) EXPECT_EQ(c.state, Check::State::kPass) << format_check(c);
  EXPECT_EQ(format_check(checks[0]), "✓ sys.executable is the launcher: /venv/bin/python\n");
  EXPECT_EQ(format_check(checks[4]), "✓ /bin/sh child gets the caller's LD_LIBRARY_PATH (unset)\n");
}

TEST_F(RoundTripChecks, PreloadMissingInTheSpawnWorkerIsNamed) {
  std::string out = good_output();
  out.erase(out.find("spawn.map="), out.find("spawn.ok") - out.find("spawn.map="));
  trip.out = out;
  trip.err = "ERROR: ld.so: object 'x' cannot be preloaded\n";
  std::vector<Check> failed = failures();
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].what,
            "preload mapped in a spawn worker: /usr/lib/x86_64-linux-gnu/libjemalloc.so.2");
  EXPECT_EQ(failed[0].context,
            (std::vector<std::string>{"stderr: ERROR: ld.so: object 'x' cannot be preloaded"}));
}

TEST_F(RoundTripChecks, LoaderComplaintIsQuotedOnceWithoutRepeats) {
  std::string out = good_output();
  out.erase(out.find("parent.map=/usr"), out.find("parent.map=/opt") - out.find("parent.map=/usr"));
  out.erase(out.find("spawn.map="), out.find("spawn.ok") - out.find("spawn.map="));
  trip.out = out;
  trip.err = "ERROR: ld.so: skipped\nERROR: ld.so: skipped\nother\nERROR: ld.so: skipped\n";
  std::vector<Check> failed = failures();
  ASSERT_EQ(failed.size(), 2u);
  EXPECT_EQ(failed[0].context,
            (std::vector<std::string>{"stderr: ERROR: ld.so: skipped", "stderr: other"}));
  EXPECT_TRUE(failed[1].context.empty());
}

TEST_F(RoundTripChecks, ShChildMustGetTheCallersValuesExactly) {
  trip.caller_preload = "";  // set to empty in the caller: the child must not see it unset
  trip.out = good_output() + "sh.ld_library_path=/venv/dynlib\n";
  std::vector<Check> failed = failures();
  ASSERT_EQ(failed.size(), 2u);
  EXPECT_EQ(format_check(failed[0]),
            "✗ /bin/sh child gets the caller's LD_PRELOAD (set to empty): it got unset\n"
            "  fix: the restore library did not run before main(): check that it is in "
            "LD_PRELOAD (`pyshim show`) and that the interpreter is dynamically linked\n");
  EXPECT_EQ(failed[1].reason, "it got \"/venv/dynlib\"");
}

TEST_F(RoundTripChecks, LeakedPreloadAndBookkeepingInTheShChild) {
  trip.out = good_output() + "sh.map=/opt/pyshim/lib/pyshim/libpyshim-restore.so\n" +
             "sh.bookkeeping=PYSHIM_ORIG_LD_PRELOAD\n";
  std::vector<Check> failed = failures();
  ASSERT_EQ(failed.size(), 2u);
  EXPECT_EQ(failed[0].reason, std::string("mapped: ") + kRestore);
  EXPECT_EQ(failed[1].reason, "it has PYSHIM_ORIG_LD_PRELOAD");
}

TEST_F(RoundTripChecks, CallersOwnPreloadInTheShChildIsFine) {
  trip.caller_preload = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
  trip.out = good_output() + "sh.ld_preload=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n" +
             "sh.map=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n";
  EXPECT_TRUE(failures().empty());
}

TEST_F(RoundTripChecks, WrongExecutable) {
  std::string out = good_output();
  out.replace(out.find("/venv/bin/python"), 16, "/usr/bin/python3.11");
  trip.out = out;
  std::vector<Check> failed = failures();
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].reason, "it is \"/usr/bin/python3.11\", not /venv/bin/python");
}

TEST_F(RoundTripChecks, NoProbeOutputIsOneFailureWithStderr) {
  trip.out = "";
  trip.status = "exit status 127";
  trip.err = "pyshim: error: interpreter not found: /nope\n  config: /venv/pyshim.toml:1:15\n";
  std::vector<Check> checks = round_trip_checks(trip);
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].state, Check::State::kFail);
  EXPECT_EQ(checks[0].reason,
            "`/venv/bin/python -c <probe>` did not run the probe to the end (exit status 127, no "
            "output)");
  EXPECT_EQ(checks[0].context.size(), 2u);
}

TEST_F(RoundTripChecks, Timeout) {
  trip.timed_out = true;
  std::vector<Check> checks = round_trip_checks(trip);
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].reason, "no answer within 30 s");
}

TEST_F(RoundTripChecks, SpawnErrorIsReported) {
  std::string out = good_output();
  out.replace(out.find("spawn.ok=1"), 10, "spawn.error=OSError: boom");
  out.erase(out.find("spawn.map="), out.find("spawn.error") - out.find("spawn.map="));
  trip.out = out;
  std::vector<Check> failed = failures();
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].what, "a multiprocessing spawn worker starts");
  EXPECT_EQ(failed[0].reason, "OSError: boom");
}

TEST(FormatCheck, SkipLine) {
  EXPECT_EQ(format_check(Check::skip("round_trip", "live round trip", "the config is invalid")),
            "- live round trip: skipped (the config is invalid)\n");
}

TEST_F(RoundTripChecks, IdsAreStableSnakeCaseNames) {
  trip.out = good_output();
  std::vector<std::string> ids;
  for (const Check& c : round_trip_checks(trip)) ids.push_back(c.id);
  EXPECT_EQ(ids, (std::vector<std::string>{
                     "sys_executable", "preload_mapped", "spawn_preload_mapped", "sh_ld_preload",
                     "sh_ld_library_path", "sh_nothing_mapped", "sh_no_bookkeeping"}));
}

TEST(DoctorJson, OneObjectPerCheckWithContextInTheMessage) {
  std::vector<Check> checks = {
      Check::pass("config", "config found and valid: /venv/pyshim.toml"),
      Check::fail("preload", "preload /l/a.so", "not found", "install the library",
                  {"config: /venv/pyshim.toml:2:12"}),
      Check::skip("round_trip", "live round trip", "the launcher would refuse to start"),
  };
  EXPECT_EQ(doctor_json("/venv/bin/python", false, checks), R"json({
    "checks" : [
        {
            "fix" : "",
            "id" : "config",
            "message" : "config found and valid: /venv/pyshim.toml",
            "ok" : true
        },
        {
            "fix" : "install the library",
            "id" : "preload",
            "message" : "preload /l/a.so: not found\nconfig: /venv/pyshim.toml:2:12",
            "ok" : false
        },
        {
            "fix" : "",
            "id" : "round_trip",
            "message" : "live round trip: skipped (the launcher would refuse to start)",
            "ok" : false
        }
    ],
    "launcher" : "/venv/bin/python",
    "ok" : false,
    "schema" : 1
}
)json");
}

TEST(ErrorJson, CarriesTheExitCodeAndEveryPart) {
  Error error{ErrorKind::kNotFound,
              "interpreter not found: /opt/py",
              {"config: /v/pyshim.toml:1:15"},
              "fix 'interpreter'"};
  EXPECT_EQ(error_json(error), R"json({
    "error" : {
        "context" : [
            "config: /v/pyshim.toml:1:15"
        ],
        "exit_code" : 127,
        "hint" : "fix 'interpreter'",
        "message" : "interpreter not found: /opt/py"
    },
    "schema" : 1
}
)json");
}

TEST(ImportChecks, BothProcessesPass) {
  ImportTrip trip;
  trip.module = "myext";
  trip.interpreter = {.ran = true, .ok = true, .status = "exit status 0"};
  trip.worker = {.ran = true, .ok = true, .status = "exit status 0"};
  std::vector<Check> checks = import_checks(trip);
  ASSERT_EQ(checks.size(), 2u);
  EXPECT_EQ(format_check(checks[0]), "✓ myext imports in the interpreter\n");
  EXPECT_EQ(checks[0].id, "import");
  EXPECT_EQ(format_check(checks[1]), "✓ myext imports in a spawn worker\n");
  EXPECT_EQ(checks[1].id, "import_spawn");
}

TEST(ImportChecks, TheWorkerIsNamedWithItsStderrAndWhomItRanAs) {
  ImportTrip trip;
  trip.module = "myext";
  trip.run_as = "uid 1000, gid 65534";
  trip.interpreter = {.ran = true, .ok = true, .status = "exit status 0"};
  trip.worker = {.ran = true,
                 .ok = false,
                 .status = "exit status 1",
                 .err = "Traceback (most recent call last):\nImportError: no \x1b[31m\n"};
  std::vector<Check> checks = import_checks(trip);
  ASSERT_EQ(checks.size(), 2u);
  EXPECT_EQ(checks[0].state, Check::State::kPass);
  EXPECT_EQ(checks[1].state, Check::State::kFail);
  std::string text = format_check(checks[1]);
  EXPECT_TRUE(
      text.starts_with("✗ myext imports in a spawn worker: it could not import it "
                       "(exit status 1)\n"
                       "  run as uid 1000, gid 65534\n"
                       "  stderr: Traceback (most recent call last):\n"
                       "  stderr: ImportError: no \\x1b[31m\n"
                       "  fix: a spawn worker starts afresh"))
      << text;
}

TEST(ImportChecks, AnInterpreterFailureSkipsTheWorker) {
  ImportTrip trip;
  trip.module = "nope";
  trip.interpreter = {.ran = true, .ok = false, .timed_out = true, .timeout_seconds = 30};
  std::vector<Check> checks = import_checks(trip);
  ASSERT_EQ(checks.size(), 2u);
  EXPECT_EQ(format_check(checks[0]).substr(0, format_check(checks[0]).find('\n')),
            "✗ nope imports in the interpreter: it did not finish within 30 s");
  EXPECT_EQ(format_check(checks[1]),
            "- nope imports in a spawn worker: skipped (the interpreter cannot import it)\n");
}

}  // namespace
}  // namespace pyshim
