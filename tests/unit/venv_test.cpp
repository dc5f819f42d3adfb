#include "pyshim/venv.hpp"

#include <gtest/gtest.h>

namespace pyshim {
namespace {

TEST(ParsePyvenvCfg, ReadsKeysCaseInsensitively) {
  auto cfg = parse_pyvenv_cfg(
      "home = /usr/bin\nInclude-System-Site-Packages = false\nversion = 3.11.2\n"
      "executable = /usr/bin/python3.11\nnonsense line\n");
  EXPECT_EQ(cfg["home"], "/usr/bin");
  EXPECT_EQ(cfg["include-system-site-packages"], "false");
  EXPECT_EQ(cfg["executable"], "/usr/bin/python3.11");
  EXPECT_EQ(cfg.size(), 4u);
}

TEST(IsInterpreterName, AcceptsVersionedNamesOnly) {
  for (const char* yes : {"python", "python3", "python3.11", "pypy", "pypy3", "pypy3.9"}) {
    EXPECT_TRUE(is_interpreter_name(yes)) << yes;
  }
  for (const char* no : {"python3-config", "python3.", "pythonw", "pip", "python3.11.py", "py"}) {
    EXPECT_FALSE(is_interpreter_name(no)) << no;
  }
}

TEST(FindInLdconfig, PicksTheEntryForThisAbi) {
  const char* listing =
      "1234 libs found in cache `/etc/ld.so.cache'\n"
      "\tlibjemalloc.so.2 (libc6) => /usr/lib/i386-linux-gnu/libjemalloc.so.2\n"
      "\tlibjemalloc.so.2 (libc6,x86-64) => /lib/x86_64-linux-gnu/libjemalloc.so.2\n"
      "\tlibjemalloc.so (libc6,x86-64) => /lib/x86_64-linux-gnu/libjemalloc.so\n";
  EXPECT_EQ(find_in_ldconfig(listing, "libjemalloc.so.2", "x86-64"),
            "/lib/x86_64-linux-gnu/libjemalloc.so.2");
  EXPECT_EQ(find_in_ldconfig(listing, "libjemalloc.so.2", ""),
            "/usr/lib/i386-linux-gnu/libjemalloc.so.2");
  EXPECT_EQ(find_in_ldconfig(listing, "libmimalloc.so.2", "x86-64"), std::nullopt);
}

TEST(Presets, AreKnownAndSanitizersAreRecognised) {
  ASSERT_NE(find_preset("jemalloc"), nullptr);
  EXPECT_EQ(find_preset("jemalloc")->package, "libjemalloc2");
  EXPECT_TRUE(find_preset("asan")->from_toolchain);
  EXPECT_EQ(find_preset("nope"), nullptr);
  EXPECT_TRUE(is_sanitizer_runtime("/usr/lib/x86_64-linux-gnu/libasan.so.8.0.0"));
  EXPECT_FALSE(is_sanitizer_runtime("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"));
}

TEST(RenderConfig, RoundTripsThroughTheParser) {
  Config spec;
  spec.interpreter = {"/usr/bin/python3.11"};
  spec.preload = {{"/usr/lib/libasan.so.8"}, {"/usr/lib/libjemalloc.so.2"}};
  spec.library_path = {{"/layer/a"}, {"/we\"ird"}};
  spec.library_path_position = Position::kAppend;
  spec.env = {{"ASAN_OPTIONS", "detect_leaks=0"}};
  spec.startup = {{"loader:load_plugins"}};
  spec.python_path = {{"/app/src"}};
  std::string text =
      render_config(spec, {"preload 'asan' resolved with gcc -print-file-name=libasan.so"});
  auto config = parse_config(text, "/v/pyshim.toml");
  ASSERT_TRUE(config.ok()) << format_error(config.error()) << text;
  EXPECT_EQ(config->interpreter.value, spec.interpreter.value);
  ASSERT_EQ(config->preload.size(), 2u);
  EXPECT_EQ(config->preload[1].value, "/usr/lib/libjemalloc.so.2");
  EXPECT_EQ(config->library_path[1].value, "/we\"ird");
  EXPECT_EQ(config->library_path_position, Position::kAppend);
  EXPECT_EQ(config->env.at(0).value, "detect_leaks=0");
  EXPECT_NE(text.find("# preload 'asan'"), std::string::npos);
  ASSERT_EQ(config->startup.size(), 1u);
  EXPECT_EQ(config->startup[0].value, "loader:load_plugins");
  EXPECT_EQ(config->python_path.at(0).value, "/app/src");
}

TEST(RenderConfig, EmptyListsStillParse) {
  Config spec;
  spec.interpreter = {"/p"};
  auto config = parse_config(render_config(spec), "/v/pyshim.toml");
  ASSERT_TRUE(config.ok());
  EXPECT_TRUE(config->preload.empty());
}

}  // namespace
}  // namespace pyshim
