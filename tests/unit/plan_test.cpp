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

}  // namespace
}  // namespace pyshim
