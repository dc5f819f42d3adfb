// Prints the config fuzzer's dictionary entries for pyshim.toml's keys, from
// the key table (config_keys() in src/core/include/pyshim/config.hpp), so a new key
// reaches the fuzzer without an edit here. tests/fuzz/run.sh appends the
// TOML and environment syntax entries.
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "pyshim/config.hpp"

int main() {
  std::vector<std::string_view> sections;
  auto quoted = [](std::string_view text) {
    std::string out = "\"";
    for (char c : text) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    std::printf("%s\"\n", out.c_str());
  };
  for (const pyshim::ConfigKey& key : pyshim::config_keys()) {
    if (!key.section.empty()) {
      bool seen = false;
      for (std::string_view s : sections) seen = seen || s == key.section;
      if (!seen) {
        sections.push_back(key.section);
        quoted("[" + std::string(key.section) + "]");
      }
    }
    switch (key.kind) {
      case pyshim::KeyKind::kEnv:
        for (pyshim::EnvMode mode : {pyshim::EnvMode::kPrepend, pyshim::EnvMode::kAppend}) {
          quoted("{ " + std::string(pyshim::env_mode_name(mode)) + " = \"");
        }
        break;
      case pyshim::KeyKind::kPosition:
        quoted(key.name);
        quoted("\"prepend\"");
        quoted("\"append\"");
        break;
      default:
        quoted(key.name);
        break;
    }
  }
  return 0;
}
