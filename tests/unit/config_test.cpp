#include "pyshim/config.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

namespace pyshim {
namespace {

Config parse_ok(std::string_view text, std::string_view file = "/venv/pyshim.toml") {
  auto result = parse_config(text, file);
  EXPECT_TRUE(result.ok()) << (result.ok() ? "" : format_error(result.error()));
  return result.ok() ? std::move(*result) : Config{};
}

Error parse_error(std::string_view text, std::string_view file = "/venv/pyshim.toml") {
  auto result = parse_config(text, file);
  EXPECT_FALSE(result.ok());
  return result.ok() ? Error{} : result.error();
}

TEST(ParseConfig, ReadsEveryKeyAndResolvesRelativePathsAgainstTheConfigDir) {
  Config config = parse_ok(R"(
interpreter = "/usr/bin/python3.11"
preload = ["/usr/lib/libjemalloc.so.2", "lib/libx.so"]
library_path = ["share/venv/dynlib", "../framework/share/venv/dynlib", "/abs/dir"]
library_path_position = "append"
[env]
ASAN_OPTIONS = "detect_leaks=0"
B = ""
)");
  EXPECT_EQ(config.interpreter.value, "/usr/bin/python3.11");
  EXPECT_EQ(config.interpreter.origin.line, 2u);
  EXPECT_EQ(config.interpreter.origin.column, 15u);
  ASSERT_EQ(config.preload.size(), 2u);
  EXPECT_EQ(config.preload[1].value, "/venv/lib/libx.so");
  ASSERT_EQ(config.library_path.size(), 3u);
  EXPECT_EQ(config.library_path[0].value, "/venv/share/venv/dynlib");
  EXPECT_EQ(config.library_path[1].value, "/venv/../framework/share/venv/dynlib");
  EXPECT_EQ(config.library_path[2].value, "/abs/dir");
  EXPECT_EQ(config.library_path_position, Position::kAppend);
  ASSERT_EQ(config.env.size(), 2u);
  EXPECT_EQ(config.env[0].name, "ASAN_OPTIONS");
  EXPECT_EQ(config.env[0].value, "detect_leaks=0");
  EXPECT_EQ(config.env[1].value, "");
}

TEST(ParseConfig, EnvKeepsFileOrder) {
  Config config =
      parse_ok("interpreter = \"/p\"\n[env]\nZED = \"1\"\nALPHA = \"2\"\nMID = \"3\"\n");
  ASSERT_EQ(config.env.size(), 3u);
  EXPECT_EQ(config.env[0].name, "ZED");
  EXPECT_EQ(config.env[1].name, "ALPHA");
  EXPECT_EQ(config.env[2].name, "MID");
}

TEST(ParseConfig, RelativeInterpreterResolvesAgainstConfigDir) {
  EXPECT_EQ(parse_ok("interpreter = \"./py/bin/python\"", "/a/b/pyshim.toml").interpreter.value,
            "/a/b/py/bin/python");
}

TEST(ParseConfig, DefaultsToPrependAndNoExtras) {
  Config config = parse_ok("interpreter = \"/p\"");
  EXPECT_EQ(config.library_path_position, Position::kPrepend);
  EXPECT_TRUE(config.preload.empty());
  EXPECT_TRUE(config.env.empty());
}

TEST(ParseConfig, InvalidTomlNamesFileLineAndColumn) {
  Error e = parse_error("interpreter = \"/p\"\npreload = [\"/x\"\n", "/v/pyshim.toml");
  EXPECT_EQ(e.exit_code(), 125);
  EXPECT_NE(e.message.find("invalid TOML"), std::string::npos);
  ASSERT_FALSE(e.context.empty());
  EXPECT_EQ(e.context[0].rfind("config: /v/pyshim.toml:", 0), 0u) << e.context[0];
}

TEST(ParseConfig, UnknownKeySuggestsNearest) {
  Error e = parse_error("interpreter = \"/p\"\npreloads = []\n");
  EXPECT_EQ(e.message, "unknown key 'preloads'");
  EXPECT_EQ(e.context[0], "config: /venv/pyshim.toml:2:1");
  EXPECT_EQ(e.hint, "did you mean 'preload'?");
}

TEST(ParseConfig, UnknownKeyFarFromAnyListsValidKeys) {
  Error e = parse_error("interpreter = \"/p\"\nzzzzzz = 1\n");
  EXPECT_NE(e.hint.find("valid keys: interpreter"), std::string::npos) << e.hint;
}

TEST(ParseConfig, MissingInterpreterIsAnError) {
  Error e = parse_error("preload = []\n");
  EXPECT_EQ(e.message, "no 'interpreter' set");
}

TEST(ParseConfig, WrongTypesAreErrorsWithLocation) {
  EXPECT_EQ(parse_error("interpreter = 3").message, "'interpreter' must be a string");
  EXPECT_EQ(parse_error("interpreter = \"/p\"\npreload = \"/x\"").message,
            "'preload' must be an array of strings");
  EXPECT_EQ(parse_error("interpreter = \"/p\"\nlibrary_path = [1]").message,
            "'library_path' must be a string");
  Error position = parse_error("interpreter = \"/p\"\nlibrary_path_position = \"middle\"");
  EXPECT_NE(position.message.find("\"middle\""), std::string::npos);
  EXPECT_EQ(position.context[0], "config: /venv/pyshim.toml:2:25");
  EXPECT_EQ(parse_error("interpreter = \"/p\"\n[env]\nX = 1").message, "[env] X must be a string");
  EXPECT_EQ(parse_error("interpreter = \"\"").message, "'interpreter' contains an empty path");
}

TEST(ParseConfig, BarePreloadNameIsRefused) {
  Error e = parse_error("interpreter = \"/p\"\npreload = [\"libjemalloc.so.2\"]");
  EXPECT_EQ(e.message, "preload 'libjemalloc.so.2' is a bare library name");
  EXPECT_EQ(e.context[0], "config: /venv/pyshim.toml:2:12");
}

TEST(ParseConfig, EnvMayNotSetWhatPyshimManages) {
  EXPECT_NE(parse_error("interpreter = \"/p\"\n[env]\nLD_PRELOAD = \"/x\"").hint.find("preload"),
            std::string::npos);
  EXPECT_NE(parse_error("interpreter = \"/p\"\n[env]\nLD_LIBRARY_PATH = \"/x\"")
                .hint.find("library_path"),
            std::string::npos);
  EXPECT_EQ(parse_error("interpreter = \"/p\"\n[env]\nPYSHIM_ORIG_LD_PRELOAD = \"\"").message,
            "[env] may not set PYSHIM_ORIG_LD_PRELOAD: pyshim manages it");
}

TEST(ParseConfig, EnvPrependAndAppendForms) {
  Config config = parse_ok(R"(interpreter = "/p"
[env]
PYTHONPATH = { prepend = "/build/python" }
CLASSPATH = { append = "/x.jar" }
PLAIN = "v"
)");
  ASSERT_EQ(config.env.size(), 3u);
  EXPECT_EQ(config.env[0].name, "PYTHONPATH");
  EXPECT_EQ(config.env[0].value, "/build/python");
  EXPECT_EQ(config.env[0].mode, EnvMode::kPrepend);
  EXPECT_EQ(config.env[0].origin.line, 3u);
  EXPECT_EQ(config.env[0].origin.column, 26u);  // the value inside the braces
  EXPECT_EQ(config.env[1].mode, EnvMode::kAppend);
  EXPECT_EQ(config.env[1].value, "/x.jar");
  EXPECT_EQ(config.env[2].mode, EnvMode::kSet);
}

TEST(ParseConfig, EnvFormErrorsNameTheLineAndTheForms) {
  Error unknown = parse_error("interpreter = \"/p\"\n[env]\nA = { insert = \"x\" }");
  EXPECT_EQ(unknown.message,
            "[env] A must be a string or one of { prepend = \"...\" }, { append = \"...\" }");
  EXPECT_EQ(unknown.context[0], "config: /venv/pyshim.toml:3:7");
  EXPECT_NE(unknown.hint.find("A = { prepend = \"v\" }"), std::string::npos);
  EXPECT_EQ(
      parse_error("interpreter = \"/p\"\n[env]\nA = { prepend = \"a\", append = \"b\" }").message,
      unknown.message);
  EXPECT_EQ(parse_error("interpreter = \"/p\"\n[env]\nA = {}").message, unknown.message);
  Error number = parse_error("interpreter = \"/p\"\n[env]\nA = { append = 1 }");
  EXPECT_EQ(number.message, "[env] A must be a string");
  EXPECT_EQ(number.hint, "quote the value: A = { append = \"...\" }");
  Error empty = parse_error("interpreter = \"/p\"\n[env]\nA = { prepend = \"\" }");
  EXPECT_EQ(empty.message, "[env] A would prepend nothing");
  EXPECT_EQ(parse_error("interpreter = \"/p\"\n[env]\nA = { append = \"a\\u0000b\" }").message,
            "[env] A contains a NUL character");
}

TEST(ParseConfig, EnvFormsMayNotTouchWhatPyshimManages) {
  for (const char* name : {"LD_PRELOAD", "LD_LIBRARY_PATH", "PYSHIM_CONFIG"}) {
    for (const char* form : {"{ prepend = \"/x\" }", "{ append = \"/x\" }"}) {
      Error e = parse_error(fmt::format("interpreter = \"/p\"\n[env]\n{} = {}", name, form));
      EXPECT_EQ(e.message, fmt::format("[env] may not set {}: pyshim manages it", name));
    }
  }
}

TEST(ParseConfig, PythonAndDynlibSections) {
  Config config = parse_ok(R"(
interpreter = "/p"
[python]
startup = ["loader:load_plugins", "pkg.sub:fn_2"]
path = ["src"]
[dynlib]
exclude = ["**/libbar.so"]
)");
  ASSERT_EQ(config.startup.size(), 2u);
  EXPECT_EQ(config.startup[1].value, "pkg.sub:fn_2");
  EXPECT_EQ(config.startup[0].origin.line, 4u);
  ASSERT_EQ(config.python_path.size(), 1u);
  EXPECT_EQ(config.python_path[0].value, "/venv/src");
  ASSERT_EQ(config.dynlib_exclude.size(), 1u);
  EXPECT_EQ(config.dynlib_exclude[0].value, "**/libbar.so");
}

TEST(ParseConfig, SectionErrorsNameTheKey) {
  Error unknown = parse_error("interpreter = \"/p\"\n[python]\nstartpu = []\n");
  EXPECT_EQ(unknown.message, "unknown key 'startpu' in [python]");
  EXPECT_EQ(unknown.hint, "did you mean 'startup'?");
  EXPECT_EQ(unknown.context[0], "config: /venv/pyshim.toml:3:1");
  for (const char* bad : {"loader", "loader:", ":f", "a..b:f", "1a:f", "a-b:f"}) {
    Error e =
        parse_error(std::string("interpreter = \"/p\"\n[python]\nstartup = [\"") + bad + "\"]\n");
    EXPECT_NE(e.message.find("is not \"package.module:function\""), std::string::npos) << bad;
  }
  EXPECT_EQ(parse_error("interpreter = \"/p\"\ndynlib = 3\n").message, "'dynlib' must be a table");
}

// The key table drives the parser: a config holding every row's key parses,
// and each key lands where its row says.
TEST(ConfigKeys, EveryRowIsParsedIntoItsField) {
  std::string text;
  std::string section;
  for (const ConfigKey& key : config_keys()) {
    if (key.section != section && key.kind != KeyKind::kEnv) {
      section = std::string(key.section);
      text += fmt::format("[{}]\n", section);
    }
    switch (key.kind) {
      case KeyKind::kPath:
        text += fmt::format("{} = \"/p/{}\"\n", key.name, key.name);
        break;
      case KeyKind::kPaths:
      case KeyKind::kPreloads:
      case KeyKind::kStrings:
        text += fmt::format("{} = [\"/p/{}\"]\n", key.name, key.name);
        break;
      case KeyKind::kHooks:
        text += fmt::format("{} = [\"m:f\"]\n", key.name);
        break;
      case KeyKind::kPosition:
        text += fmt::format("{} = \"append\"\n", key.name);
        break;
      case KeyKind::kEnv:
        text += "[env]\nA = { prepend = \"/a\" }\n";
        section = "env";
        break;
    }
  }
  Config config = parse_ok(text);
  for (const ConfigKey& key : config_keys()) {
    if (key.one != nullptr) {
      EXPECT_EQ((config.*key.one).value, fmt::format("/p/{}", key.name));
    }
    if (key.many != nullptr) {
      ASSERT_EQ((config.*key.many).size(), 1u) << key.name;
      EXPECT_EQ((config.*key.many)[0].value,
                key.kind == KeyKind::kHooks ? "m:f" : fmt::format("/p/{}", key.name));
    }
  }
  EXPECT_EQ(config.library_path_position, Position::kAppend);
  ASSERT_EQ(config.env.size(), 1u);
  EXPECT_EQ(config.env[0].mode, EnvMode::kPrepend);
  EXPECT_EQ(known_top_level_keys(),
            (std::vector<std::string_view>{"interpreter", "preload", "library_path",
                                           "library_path_position", "env", "python", "dynlib"}));
}

// ... and render_config writes every row from the same table: what it writes
// parses back to the same values, each under its row's comment.
TEST(ConfigKeys, EveryRowIsWrittenAndReadBack) {
  Config config;
  config.interpreter = {"/usr/bin/python3"};
  for (const ConfigKey& key : config_keys()) {
    if (key.many != nullptr) {
      config.*key.many = {{key.kind == KeyKind::kHooks ? "m:f" : fmt::format("/p/{}", key.name)}};
    }
  }
  config.library_path_position = Position::kAppend;
  config.env = {{"A", "/a", {}, EnvMode::kAppend}, {"B c", "x\"y"}};
  std::string text = render_config(config, {"a note"});
  Config again = parse_ok(text);
  for (const ConfigKey& key : config_keys()) {
    if (key.one != nullptr) {
      EXPECT_EQ((again.*key.one).value, (config.*key.one).value) << text;
    }
    if (key.many != nullptr) {
      EXPECT_EQ(values(again.*key.many), values(config.*key.many)) << key.name << "\n" << text;
    }
    if (!key.comment.empty()) {
      EXPECT_NE(text.find(key.comment), std::string::npos) << key.name;
    }
  }
  EXPECT_EQ(again.library_path_position, Position::kAppend);
  ASSERT_EQ(again.env.size(), 2u);
  EXPECT_EQ(again.env[0].mode, EnvMode::kAppend);
  EXPECT_EQ(again.env[1].name, "B c");
  EXPECT_EQ(again.env[1].value, "x\"y");
  EXPECT_NE(text.find("\n# a note\n"), std::string::npos);
  // A section none of whose keys is set is left out; [env] stays, to be filled in.
  Config bare;
  bare.interpreter = {"/usr/bin/python3"};
  std::string minimal = render_config(bare);
  EXPECT_EQ(minimal.find("[python]"), std::string::npos) << minimal;
  EXPECT_EQ(minimal.find("[dynlib]"), std::string::npos) << minimal;
  EXPECT_NE(minimal.find("\n[env]\n"), std::string::npos) << minimal;
  EXPECT_TRUE(parse_ok(minimal).preload.empty());
}

TEST(Nearest, FindsCloseKeysOnly) {
  std::vector<std::string_view> keys = {"interpreter", "preload", "library_path"};
  EXPECT_EQ(nearest("interpeter", keys), "interpreter");
  EXPECT_EQ(nearest("librarypath", keys), "library_path");
  EXPECT_EQ(nearest("q", keys), "");
}

TEST(ResolvePath, JoinsAndStripsDotSlash) {
  EXPECT_EQ(resolve_path("/a", "./b"), "/a/b");
  EXPECT_EQ(resolve_path("/", "b"), "/b");
  EXPECT_EQ(resolve_path("/a", "/b"), "/b");
}

}  // namespace
}  // namespace pyshim
