#include "pyshim/plan.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace pyshim {
namespace {

constexpr const char* kRestore = "/opt/pyshim/lib/pyshim/libpyshim-restore.so";

Config make_config() {
  auto config = parse_config(R"(
interpreter = "/usr/bin/python3.11"
preload = ["/usr/lib/libjemalloc.so.2"]
library_path = ["/layer/a", "/layer/b"]
[env]
MALLOC_CONF = "background_thread:true"
)",
                             "/venv/pyshim.toml");
  EXPECT_TRUE(config.ok());
  return std::move(*config);
}

// The environment a child would see: plan the launch, then do what the
// restore library does.
std::vector<std::string> to_strings(const Plan& plan) {
  std::vector<std::string> out;
  for (const char* entry : plan.env) {
    if (entry != nullptr) out.emplace_back(entry);
  }
  return out;
}

std::vector<std::string> plan_env(const Config& config, const std::vector<std::string>& env) {
  std::vector<const char*> view;
  for (const std::string& entry : env) view.push_back(entry.c_str());
  Plan plan = make_plan({&config, EnvView(view), "/venv/bin/python", kRestore});
  EXPECT_EQ(plan.env.back(), nullptr);
  return to_strings(plan);
}

std::string value_of(const std::vector<std::string>& env, std::string_view name) {
  for (const std::string& entry : env) {
    if (entry.starts_with(std::string(name) + "=")) return entry.substr(name.size() + 1);
  }
  return "<unset>";
}

TEST(MakePlan, SetsArgv0AndInterpreter) {
  Config config = make_config();
  std::vector<const char*> env;
  Plan plan = make_plan({&config, EnvView(env), "/venv/bin/python", kRestore});
  EXPECT_EQ(plan.interpreter, "/usr/bin/python3.11");
  EXPECT_EQ(plan.argv0, "/venv/bin/python");
}

TEST(MakePlan, UnsetCallerValuesAreRecordedAsUnset) {
  auto env = plan_env(make_config(), {"HOME=/root"});
  EXPECT_EQ(value_of(env, "LD_PRELOAD"), std::string("/usr/lib/libjemalloc.so.2:") + kRestore);
  EXPECT_EQ(value_of(env, "LD_LIBRARY_PATH"), "/layer/a:/layer/b");
  EXPECT_EQ(value_of(env, "PYSHIM_ORIG_LD_PRELOAD"), "");
  EXPECT_EQ(value_of(env, "PYSHIM_ORIG_LD_LIBRARY_PATH"), "");
  EXPECT_EQ(value_of(env, "MALLOC_CONF"), "background_thread:true");
  EXPECT_EQ(env[0], "HOME=/root");
}

// The restore library restores only in the process started with this argv[0].
TEST(MakePlan, RecordsTheInterpretersArgv0AsTheRestoreTarget) {
  auto env = plan_env(make_config(), {"HOME=/root"});
  EXPECT_EQ(value_of(env, "PYSHIM_TARGET"), "/venv/bin/python");
  // Nested (an earlier hop passed it on): replaced, never repeated.
  env = plan_env(make_config(), {"PYSHIM_TARGET=/outer/bin/python", "PYSHIM_TARGET="});
  EXPECT_EQ(std::count_if(env.begin(), env.end(),
                          [](const std::string& e) { return e.starts_with("PYSHIM_TARGET="); }),
            1);
  EXPECT_EQ(value_of(env, "PYSHIM_TARGET"), "/venv/bin/python");
}

TEST(MakePlan, EmptyCallerValuesAreRecordedAsEmpty) {
  auto env = plan_env(make_config(), {"LD_PRELOAD=", "LD_LIBRARY_PATH="});
  EXPECT_EQ(value_of(env, "PYSHIM_ORIG_LD_PRELOAD"), "LD_PRELOAD=");
  EXPECT_EQ(value_of(env, "PYSHIM_ORIG_LD_LIBRARY_PATH"), "LD_LIBRARY_PATH=");
  EXPECT_EQ(value_of(env, "LD_LIBRARY_PATH"), "/layer/a:/layer/b");
}

TEST(MakePlan, CallerEntriesComeAfterConfiguredOnesWithoutDuplicates) {
  auto env = plan_env(make_config(), {"LD_PRELOAD=/x.so /usr/lib/libjemalloc.so.2:/y.so",
                                      "LD_LIBRARY_PATH=/c:/layer/b:/d"});
  EXPECT_EQ(value_of(env, "LD_PRELOAD"),
            std::string("/usr/lib/libjemalloc.so.2:") + kRestore + ":/x.so:/y.so");
  EXPECT_EQ(value_of(env, "LD_LIBRARY_PATH"), "/layer/a:/layer/b:/c:/d");
  EXPECT_EQ(value_of(env, "PYSHIM_ORIG_LD_PRELOAD"),
            "LD_PRELOAD=/x.so /usr/lib/libjemalloc.so.2:/y.so");
  // In place: the caller's variables keep their positions.
  EXPECT_TRUE(env[0].starts_with("LD_PRELOAD="));
  EXPECT_TRUE(env[1].starts_with("LD_LIBRARY_PATH="));
}

TEST(MakePlan, AppendPutsConfiguredDirsAfterTheCallers) {
  Config config = make_config();
  config.library_path_position = Position::kAppend;
  auto env = plan_env(config, {"LD_LIBRARY_PATH=/c:/layer/a"});
  EXPECT_EQ(value_of(env, "LD_LIBRARY_PATH"), "/c:/layer/a:/layer/b");
}

TEST(MakePlan, NoLibraryPathLeavesTheCallersAlone) {
  auto config = parse_config("interpreter = \"/p\"", "/v/pyshim.toml");
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(value_of(plan_env(*config, {}), "LD_LIBRARY_PATH"), "<unset>");
  EXPECT_EQ(value_of(plan_env(*config, {"LD_LIBRARY_PATH=/c"}), "LD_LIBRARY_PATH"), "/c");
}

TEST(MakePlan, NestedLaunchesWhoseRestoreDidNotRunDoNotGrow) {
  for (Position position : {Position::kPrepend, Position::kAppend}) {
    Config config = make_config();
    config.library_path_position = position;
    std::vector<std::string> caller = {"PATH=/bin", "LD_LIBRARY_PATH=/c", "LD_PRELOAD="};
    auto once = plan_env(config, caller);
    auto env = once;
    for (int depth = 2; depth <= 10; ++depth) {
      env = plan_env(config, env);
      EXPECT_EQ(env, once) << "depth " << depth;
    }
    EXPECT_EQ(value_of(env, "PYSHIM_ORIG_LD_LIBRARY_PATH"), "LD_LIBRARY_PATH=/c");
    EXPECT_EQ(value_of(env, "PYSHIM_ORIG_LD_PRELOAD"), "LD_PRELOAD=");
  }
}

TEST(MakePlan, AShimChainKeepsBothConfigsPreloads) {
  Config outer = make_config();
  auto inner_config = parse_config("interpreter = \"/p\"\npreload = [\"/asan.so\"]", "/v/x.toml");
  ASSERT_TRUE(inner_config.ok());
  auto env = plan_env(*inner_config, plan_env(outer, {}));
  EXPECT_EQ(value_of(env, "LD_PRELOAD"),
            std::string("/asan.so:") + kRestore + ":/usr/lib/libjemalloc.so.2");
  EXPECT_EQ(value_of(env, "PYSHIM_ORIG_LD_PRELOAD"), "");
}

TEST(MakePlan, StartupHooksTravelInOneVariableOnlyWhenConfigured) {
  EXPECT_EQ(value_of(plan_env(make_config(), {}), "PYSHIM_STARTUP"), "<unset>");
  auto config = parse_config(
      "interpreter = \"/p\"\n[python]\nstartup = [\"a:f\", \"b.c:g\"]\npath = [\"src\"]\n",
      "/v/pyshim.toml");
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(value_of(plan_env(*config, {}), "PYSHIM_STARTUP"),
            "/v/pyshim.toml\npath=/v/src\nhook=a:f\nhook=b.c:g");
}

TEST(MakePlan, DuplicateEntriesCollapseToOneWithTheLoadersValue) {
  // The loader reads the last LD_PRELOAD; the plan keeps the first slot.
  auto env = plan_env(make_config(), {"LD_PRELOAD=/a.so", "HOME=/root", "LD_PRELOAD=/b.so",
                                      "MALLOC_CONF=x", "MALLOC_CONF=y"});
  EXPECT_EQ(std::count_if(env.begin(), env.end(),
                          [](const std::string& e) { return e.starts_with("LD_PRELOAD="); }),
            1);
  EXPECT_EQ(env[0], std::string("LD_PRELOAD=/usr/lib/libjemalloc.so.2:") + kRestore + ":/b.so");
  EXPECT_EQ(env[1], "HOME=/root");
  EXPECT_EQ(value_of(env, "PYSHIM_ORIG_LD_PRELOAD"), "LD_PRELOAD=/b.so");
  EXPECT_EQ(std::count_if(env.begin(), env.end(),
                          [](const std::string& e) { return e.starts_with("MALLOC_CONF="); }),
            1);
  EXPECT_EQ(value_of(env, "MALLOC_CONF"), "background_thread:true");
}

// The heap-free planner in buffers of exactly plan_size(): what make_plan
// gives, for caller lists full of separators and duplicates; one byte or
// slot less than the bound is never written past (the plan refuses).
TEST(PlanEnv, FitsThePlanSizeBoundAndNeverWritesPastIt) {
  auto config = parse_config(R"(
interpreter = "/p"
preload = ["/a.so", "/b.so", "/a.so"]
library_path = ["/l1", "/l2"]
library_path_position = "append"
[env]
X = "1"
[python]
startup = ["m:f"]
path = ["src"]
)",
                             "/v/pyshim.toml");
  ASSERT_TRUE(config.ok());
  const std::vector<std::vector<std::string>> callers = {
      {},
      {"LD_PRELOAD=", "LD_LIBRARY_PATH="},
      {"LD_PRELOAD=: : :/a.so: :/c.so:/c.so", "LD_LIBRARY_PATH=;;:/l2:/x;/x:", "X=0", "X=2"},
      {"PYSHIM_ORIG_LD_PRELOAD=LD_PRELOAD=/o.so", "PYSHIM_ORIG_LD_LIBRARY_PATH=",
       "LD_PRELOAD=/a.so:" + std::string(kRestore), "PYSHIM_STARTUP=old"},
  };
  PlanConfig view = plan_config(*config);
  for (const auto& caller : callers) {
    std::vector<const char*> env;
    for (const std::string& e : caller) env.push_back(e.c_str());
    PlanSize size = plan_size(view, EnvView(env), std::string_view(kRestore).size(),
                              std::string_view("/venv/bin/python").size());
    std::vector<const char*> slots(size.entries);
    std::string bytes(size.bytes, '\0');
    std::vector<std::string_view> pieces(size.pieces);
    PlanBuffers buffers{slots.data(), slots.size(),  bytes.data(),
                        bytes.size(), pieces.data(), pieces.size()};
    std::size_t n = plan_env(view, EnvView(env), kRestore, "/venv/bin/python", buffers);
    ASSERT_GT(n, 0u);
    ASSERT_EQ(slots[n], nullptr);
    EXPECT_LE(buffers.bytes_used, size.bytes);
    std::vector<std::string> got(slots.begin(), slots.begin() + static_cast<long>(n));
    EXPECT_EQ(got, plan_env(*config, caller));

    // One slot, byte or piece less than this plan needs: refused, and
    // nothing written past the end.
    for (int which = 0; which < 3; ++which) {
      std::size_t env_capacity = which == 0 ? n : size.entries;
      std::size_t bytes_capacity = which == 1 ? buffers.bytes_used - 1 : size.bytes;
      std::size_t pieces_capacity = which == 2 ? 0 : size.pieces;
      std::vector<const char*> small_slots(env_capacity + 1, "guard");
      std::string small_bytes(bytes_capacity + 1, '#');
      std::vector<std::string_view> small_pieces(pieces_capacity + 1, "guard");
      PlanBuffers small{small_slots.data(), env_capacity,        small_bytes.data(),
                        bytes_capacity,     small_pieces.data(), pieces_capacity};
      EXPECT_EQ(plan_env(view, EnvView(env), kRestore, "/venv/bin/python", small), 0u) << which;
      EXPECT_STREQ(small_slots[env_capacity], "guard") << which;
      EXPECT_EQ(small_bytes[bytes_capacity], '#') << which;
      EXPECT_EQ(small_pieces[pieces_capacity], "guard") << which;
    }
  }
}

TEST(PlanEnv, StartupValueIsWhatThePlanSets) {
  auto config =
      parse_config("interpreter = \"/p\"\n[python]\nstartup = [\"a:f\"]\npath = [\"s\", \"/t\"]\n",
                   "/v/pyshim.toml");
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(value_of(plan_env(*config, {}), "PYSHIM_STARTUP"), startup_value(*config));
  EXPECT_EQ(startup_value(*config), "/v/pyshim.toml\npath=/v/s\npath=/t\nhook=a:f");
}

TEST(EnvGet, DistinguishesUnsetFromEmpty) {
  std::vector<const char*> env = {"A=", "AB=x"};
  EXPECT_EQ(env_get(EnvView(env), "A").data() != nullptr, true);
  EXPECT_EQ(env_get(EnvView(env), "A"), "");
  EXPECT_EQ(env_get(EnvView(env), "AB"), "x");
  EXPECT_EQ(env_get(EnvView(env), "B").data(), nullptr);
}

TEST(AppendUnique, SplitsOnSeparatorsAndSkipsEmptyAndDuplicates) {
  std::vector<std::string_view> out = {"/a"};
  append_unique(out, "/b::/a /c:", ": ");
  EXPECT_EQ(out, (std::vector<std::string_view>{"/a", "/b", "/c"}));
}

Config env_modes_config() {
  auto config = parse_config(R"(interpreter = "/usr/bin/python3.11"
[env]
PYTHONPATH = { prepend = "/build/python" }
CLASSPATH = { append = "/x.jar" }
)",
                             "/venv/pyshim.toml");
  EXPECT_TRUE(config.ok());
  return std::move(*config);
}

TEST(EnvModes, PrependAndAppendKeepTheCallersValue) {
  Config config = env_modes_config();
  auto env = plan_env(config, {"PYTHONPATH=/caller/a:/caller/b", "CLASSPATH=/c.jar"});
  EXPECT_EQ(value_of(env, "PYTHONPATH"), "/build/python:/caller/a:/caller/b");
  EXPECT_EQ(value_of(env, "CLASSPATH"), "/c.jar:/x.jar");
}

TEST(EnvModes, UnsetOrEmptyCallerGivesThePartAlone) {
  Config config = env_modes_config();
  auto env = plan_env(config, {"CLASSPATH="});
  EXPECT_EQ(value_of(env, "PYTHONPATH"), "/build/python");
  // Not ":/x.jar": an empty piece means the current directory to PYTHONPATH
  // and most other path lists.
  EXPECT_EQ(value_of(env, "CLASSPATH"), "/x.jar");
}

TEST(EnvModes, NestedLaunchesAddThePartOnce) {
  Config config = env_modes_config();
  std::vector<std::string> env = {"PYTHONPATH=/caller", "HOME=/root"};
  std::vector<std::string> first = plan_env(config, env);
  std::vector<std::string> again = first;
  for (int hop = 0; hop < 10; ++hop) again = plan_env(config, again);
  EXPECT_EQ(again, first);
  EXPECT_EQ(value_of(again, "PYTHONPATH"), "/build/python:/caller");
  EXPECT_EQ(value_of(again, "CLASSPATH"), "/x.jar");
}

TEST(EnvModes, OnlyWholePiecesAtTheRightEndCount) {
  Config config = env_modes_config();
  // "/build/python2" starts with the part's bytes, not with the piece; a
  // part in the middle is not at the end the config asks for.
  auto env = plan_env(config, {"PYTHONPATH=/build/python2", "CLASSPATH=/x.jar:/y.jar"});
  EXPECT_EQ(value_of(env, "PYTHONPATH"), "/build/python:/build/python2");
  EXPECT_EQ(value_of(env, "CLASSPATH"), "/x.jar:/y.jar:/x.jar");
  // A child that changed the variable gets the part added again.
  env = plan_env(config, {"PYTHONPATH=/mine:/build/python", "CLASSPATH=/x.jar"});
  EXPECT_EQ(value_of(env, "PYTHONPATH"), "/build/python:/mine:/build/python");
  EXPECT_EQ(value_of(env, "CLASSPATH"), "/x.jar");
}

TEST(EnvModes, TheLastCallerEntryIsTheOneExtended) {
  Config config = env_modes_config();
  auto env = plan_env(config, {"PYTHONPATH=/first", "HOME=/root", "PYTHONPATH=/last"});
  EXPECT_EQ(value_of(env, "PYTHONPATH"), "/build/python:/last");
  EXPECT_EQ(std::count_if(env.begin(), env.end(),
                          [](const std::string& e) { return e.starts_with("PYTHONPATH="); }),
            1);
}

TEST(EnvModes, PlanSizeBoundsTheCallersPart) {
  // A caller value far longer than the config: plan_size must account for it
  // (make_plan would otherwise lose the entries plan_env could not write).
  Config config = env_modes_config();
  std::string big(5000, 'p');
  auto env = plan_env(config, {"PYTHONPATH=/" + big, "CLASSPATH=/" + big});
  EXPECT_EQ(value_of(env, "PYTHONPATH"), "/build/python:/" + big);
  EXPECT_EQ(value_of(env, "CLASSPATH"), "/" + big + ":/x.jar");
}

}  // namespace
}  // namespace pyshim
