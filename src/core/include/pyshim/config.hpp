// pyshim.toml: parsing and validation. Pure: text in, Config or Error out.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pyshim/error.hpp"

namespace pyshim {

// Where a value was written, so errors and `pyshim show` can point at it.
struct Origin {
  std::uint32_t line = 0;
  std::uint32_t column = 0;
};

struct Setting {
  std::string value;  // paths are already resolved against the config's directory
  Origin origin = {};
};

// How an [env] value meets the caller's value of the variable (README,
// "`[env]` that adds to the caller's value"): NAME = "v" sets it;
// NAME = { prepend = "v" } gives "v:caller's", NAME = { append = "v" } gives
// "caller's:v" (just "v" when the caller's is unset or empty), and adds
// nothing when the caller's value already starts (prepend) or ends (append)
// with v as whole ':'-separated pieces, so a nested launch gives the value
// its parent had.
enum class EnvMode : std::uint32_t { kSet = 0, kPrepend = 1, kAppend = 2 };

struct EnvSetting {
  std::string name;
  std::string value;
  Origin origin{};
  EnvMode mode = EnvMode::kSet;
};

// "set", "prepend", "append": the word the config, the CLI and JSON use.
std::string_view env_mode_name(EnvMode mode);

enum class Position { kPrepend, kAppend };

struct Config {
  std::string file;  // the pyshim.toml this came from
  std::string dir;   // its directory: the base of relative paths
  Setting interpreter;
  std::vector<Setting> preload;
  std::vector<Setting> library_path;
  Position library_path_position = Position::kPrepend;
  Origin library_path_position_origin;
  std::vector<EnvSetting> env;  // in file order

  // [python]: run in every interpreter started through the shim, before the
  // main module (see the README's "Startup hooks").
  std::vector<Setting> startup;      // "package.module:function", in order
  std::vector<Setting> python_path;  // folders put on sys.path before the hooks import

  // [dynlib]: `pyshim dynlib` settings.
  std::vector<Setting> dynlib_exclude;  // globs (with **) relative to site-packages
};

// The key table: one row per pyshim.toml key, in the order the README and a
// written pyshim.toml list them (top-level keys before the first section, as
// TOML requires). It drives parsing (which key is valid where, what its
// value must be, where it lands in Config), writing (render_config: each
// row's comment and value, by its kind), the unknown-key suggestions, and
// the fuzz dictionary (tests/fuzz/config_dict.cpp).
enum class KeyKind {
  kPath,      // a path string, resolved against the config's folder
  kPaths,     // an array of paths
  kPreloads,  // an array of library paths (bare names refused)
  kPosition,  // "prepend" | "append"
  kStrings,   // an array of strings
  kHooks,     // an array of "package.module:function"
  kEnv,       // [env]: NAME = "v" | { prepend = "v" } | { append = "v" }
};

struct ConfigKey {
  std::string_view section = {};  // "" at the top level, else the [section]
  std::string_view name = {};     // for kEnv: the section's own name
  KeyKind kind = KeyKind::kPath;
  bool required = false;
  Setting Config::*one = nullptr;                // kPath
  std::vector<Setting> Config::*many = nullptr;  // kPaths, kPreloads, kStrings, kHooks
  // The comment render_config writes above the key ("# ..." lines; a
  // leading "\n" for a blank line before it); a section's first row's
  // comment goes above its [section] line.
  std::string_view comment = {};
};

const std::vector<ConfigKey>& config_keys();

// The names valid at the top level (keys and sections), from the table.
const std::vector<std::string_view>& known_top_level_keys();

Result<Config> parse_config(std::string_view text, std::string_view file);

// A commented, readable pyshim.toml that parse_config() accepts, one
// line per row of the key table: top-level keys and [env] always, other
// sections when one of their keys is set. notes become comment lines under
// the header (e.g. which preset a path came from). Origins, file and dir are
// not used: the values are written as they are (paths already absolute).
std::string render_config(const Config& config, const std::vector<std::string>& notes = {});

// TOML basic string with escapes, e.g. "a\"b".
std::string toml_quote(std::string_view text);

// The values of a list of settings, without their origins.
std::vector<std::string> values(const std::vector<Setting>& settings);

// "file:line:col" for a value of this config (just "file" when unknown).
std::string where(const Config& config, Origin origin);

// Joins a config-relative path onto dir; absolute paths pass through.
std::string resolve_path(std::string_view dir, std::string_view path);

// Whether text is valid UTF-8 (what a TOML string can hold exactly).
bool is_valid_utf8(std::string_view text);

// pkg.sub.mod: non-empty parts of [A-Za-z0-9_], none starting with a digit
// (a module path, or a startup hook's function path).
bool is_dotted_name(std::string_view dotted);

// The closest candidate by edit distance, or "" when nothing is close.
std::string_view nearest(std::string_view word, const std::vector<std::string_view>& candidates);

}  // namespace pyshim
