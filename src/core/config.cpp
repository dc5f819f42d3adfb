#include "pyshim/config.hpp"
#include "pyshim/path.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>
#include <tuple>

#include <fmt/format.h>

#include <toml++/toml.h>

namespace pyshim {
namespace {

Origin origin_of(const toml::source_region& source) {
  return {static_cast<std::uint32_t>(source.begin.line),
          static_cast<std::uint32_t>(source.begin.column)};
}

class Parser {
 public:
  Parser(Config& config) : config_(config) {}  // NOLINT(google-explicit-constructor)

  Error error(Origin origin, std::string message, std::string hint) const {
    Error e;
    e.message = std::move(message);
    e.context.push_back("config: " + where(config_, origin));
    e.hint = std::move(hint);
    return e;
  }

  Result<std::string> string_value(std::string_view key, const toml::node& node) const {
    const auto* s = node.as_string();
    if (s == nullptr) {
      return error(origin_of(node.source()), fmt::format("'{}' must be a string", key),
                   fmt::format("write it in quotes, e.g. {} = \"...\"", key));
    }
    if (s->get().find('\0') != std::string::npos) {
      return error(origin_of(node.source()), fmt::format("'{}' contains a NUL character", key),
                   "remove the \\u0000: paths and environment values cannot hold it");
    }
    return std::string(s->get());
  }

  Result<Setting> path_value(std::string_view key, const toml::node& node) const {
    auto s = string_value(key, node);
    if (!s) return s.take_error();
    Origin origin = origin_of(node.source());
    if (s->empty()) {
      return error(origin, fmt::format("'{}' contains an empty path", key),
                   "remove the empty string or write the path");
    }
    return Setting{resolve_path(config_.dir, *s), origin};
  }

  Result<std::vector<Setting>> path_list(std::string_view key, const toml::node& node,
                                         bool libraries) const {
    const auto* array = node.as_array();
    if (array == nullptr) {
      return error(origin_of(node.source()), fmt::format("'{}' must be an array of strings", key),
                   fmt::format("write {} = [\"...\", \"...\"]", key));
    }
    std::vector<Setting> out;
    out.reserve(array->size());
    for (const toml::node& item : *array) {
      auto setting = path_value(key, item);
      if (!setting) return setting.take_error();
      const auto* raw = item.as_string();
      if (libraries && raw->get().find('/') == std::string::npos) {
        return error(setting->origin,
                     fmt::format("preload '{}' is a bare library name", raw->get()),
                     "the launcher does not search for libraries at run time: write an absolute "
                     "path, or let `pyshim install --preload NAME` resolve it");
      }
      out.push_back(std::move(*setting));
    }
    return out;
  }

  Result<std::vector<Setting>> string_list(std::string_view key, const toml::node& node) const {
    const auto* array = node.as_array();
    if (array == nullptr) {
      return error(origin_of(node.source()), fmt::format("'{}' must be an array of strings", key),
                   fmt::format("write {} = [\"...\", \"...\"]", key));
    }
    std::vector<Setting> out;
    for (const toml::node& item : *array) {
      auto s = string_value(key, item);
      if (!s) return s.take_error();
      out.push_back({std::move(*s), origin_of(item.source())});
    }
    return out;
  }

  // A key's value, by its row of the table, into the config.
  Status value(const ConfigKey& key, const toml::node& node) {
    std::string_view name = key.name;
    switch (key.kind) {
      case KeyKind::kPath: {
        auto setting = path_value(name, node);
        if (!setting) return setting.take_error();
        config_.*key.one = std::move(*setting);
        return Ok{};
      }
      case KeyKind::kPaths:
      case KeyKind::kPreloads: {
        auto list = path_list(name, node, key.kind == KeyKind::kPreloads);
        if (!list) return list.take_error();
        config_.*key.many = std::move(*list);
        return Ok{};
      }
      case KeyKind::kPosition:
        return position(name, node);
      case KeyKind::kStrings:
      case KeyKind::kHooks: {
        auto list = string_list(name, node);
        if (!list) return list.take_error();
        if (key.kind == KeyKind::kHooks) {
          if (auto status = check_hooks(*list); !status) return status;
        }
        config_.*key.many = std::move(*list);
        return Ok{};
      }
      case KeyKind::kEnv:
        return env_table(node);
    }
    return Ok{};
  }

  Status position(std::string_view name, const toml::node& node) {
    auto s = string_value(name, node);
    if (!s) return s.take_error();
    config_.library_path_position_origin = origin_of(node.source());
    if (*s == "prepend") {
      config_.library_path_position = Position::kPrepend;
    } else if (*s == "append") {
      config_.library_path_position = Position::kAppend;
    } else {
      return error(origin_of(node.source()),
                   fmt::format("library_path_position must be \"prepend\" or \"append\", not "
                               "\"{}\"",
                               *s),
                   "use \"prepend\" (default) or \"append\"");
    }
    return Ok{};
  }

  Status check_hooks(const std::vector<Setting>& hooks) const {
    for (const Setting& hook : hooks) {
      std::size_t colon = hook.value.find(':');
      if (colon == std::string::npos ||
          !is_dotted_name(std::string_view(hook.value).substr(0, colon)) ||
          !is_dotted_name(std::string_view(hook.value).substr(colon + 1))) {
        return error(
            hook.origin,
            fmt::format("startup hook '{}' is not \"package.module:function\"", hook.value),
            "write e.g. startup = [\"myapp.plugins:load_all\"]");
      }
    }
    return Ok{};
  }

  // A [section] whose keys are rows of the table.
  Status section(std::string_view name, const toml::node& node) {
    const auto* table = node.as_table();
    if (table == nullptr) {
      return error(origin_of(node.source()), fmt::format("'{}' must be a table", name),
                   fmt::format("write it as a section: [{}]", name));
    }
    std::vector<std::string_view> keys;
    for (const ConfigKey& key : config_keys()) {
      if (key.section == name) keys.push_back(key.name);
    }
    for (const auto& [key, value] : *table) {
      std::string_view k = key.str();
      const ConfigKey* row = find_key(name, k);
      if (row == nullptr) {
        std::string_view suggestion = nearest(k, keys);
        return error(origin_of(key.source()), fmt::format("unknown key '{}' in [{}]", k, name),
                     suggestion.empty()
                         ? fmt::format("valid keys in [{}]: {}", name, fmt::join(keys, ", "))
                         : fmt::format("did you mean '{}'?", suggestion));
      }
      if (auto status = this->value(*row, value); !status) return status;
    }
    return Ok{};
  }

  // NAME = "v", or NAME = { prepend = "v" } / { append = "v" }.
  Result<EnvSetting> env_value(std::string_view name, const toml::node& value) const {
    Origin origin = origin_of(value.source());
    EnvMode mode = EnvMode::kSet;
    const toml::node* text = &value;
    if (const auto* table = value.as_table()) {
      std::string_view key;
      if (table->size() == 1) {
        key = table->cbegin()->first.str();
        text = &table->cbegin()->second;
        origin = origin_of(text->source());
      }
      if (key == env_mode_name(EnvMode::kPrepend)) {
        mode = EnvMode::kPrepend;
      } else if (key == env_mode_name(EnvMode::kAppend)) {
        mode = EnvMode::kAppend;
      } else {
        return error(
            origin_of(table->size() == 1 ? table->cbegin()->first.source() : value.source()),
            fmt::format("[env] {} must be a string or one of {{ prepend = \"...\" }}, "
                        "{{ append = \"...\" }}",
                        name),
            fmt::format("write {0} = \"v\" (sets it), {0} = {{ prepend = \"v\" }} "
                        "(v:caller's) or {0} = {{ append = \"v\" }} (caller's:v)",
                        name));
      }
    }
    const auto* s = text->as_string();
    if (s == nullptr) {
      return error(origin, fmt::format("[env] {} must be a string", name),
                   mode == EnvMode::kSet ? fmt::format("quote the value: {} = \"...\"", name)
                                         : fmt::format("quote the value: {} = {{ {} = \"...\" }}",
                                                       name, env_mode_name(mode)));
    }
    if (s->get().find('\0') != std::string::npos || name.find('\0') != std::string::npos) {
      return error(origin, fmt::format("[env] {} contains a NUL character", name),
                   "environment variables cannot hold \\u0000");
    }
    if (mode != EnvMode::kSet && s->get().empty()) {
      return error(origin, fmt::format("[env] {} would {} nothing", name, env_mode_name(mode)),
                   fmt::format("write the value to add, or {} = \"\" to set it empty", name));
    }
    return EnvSetting{std::string(name), std::string(s->get()), origin, mode};
  }

  Status env_table(const toml::node& node) {
    const auto* table = node.as_table();
    if (table == nullptr) {
      return error(origin_of(node.source()), "'env' must be a table",
                   "write it as a section: [env] followed by NAME = \"value\" lines");
    }
    for (const auto& [key, value] : *table) {
      std::string_view name = key.str();
      Origin origin = origin_of(key.source());
      if (name == "LD_PRELOAD" || name == "LD_LIBRARY_PATH" || name.starts_with("PYSHIM_")) {
        return error(origin, fmt::format("[env] may not set {}: pyshim manages it", name),
                     name == "LD_PRELOAD"        ? "use 'preload = [...]' instead"
                     : name == "LD_LIBRARY_PATH" ? "use 'library_path = [...]' instead"
                                                 : "PYSHIM_* variables are pyshim's own");
      }
      if (name.empty() || name.find('=') != std::string_view::npos) {
        return error(origin, fmt::format("[env] has an invalid variable name '{}'", name),
                     "a variable name is non-empty and has no '='");
      }
      auto var = env_value(name, value);
      if (!var) return var.take_error();
      config_.env.push_back(std::move(*var));
    }
    // toml++ iterates a table in key order; the config promises file order.
    std::stable_sort(config_.env.begin(), config_.env.end(),
                     [](const EnvSetting& a, const EnvSetting& b) {
                       return std::tie(a.origin.line, a.origin.column) <
                              std::tie(b.origin.line, b.origin.column);
                     });
    return Ok{};
  }

  Status top_level(const toml::table& root) {
    for (const auto& [key, node] : root) {
      std::string_view name = key.str();
      if (const ConfigKey* row = find_key("", name)) {
        if (auto status = value(*row, node); !status) return status;
      } else if (is_section(name)) {
        if (auto status = section(name, node); !status) return status;
      } else {
        std::string_view suggestion = nearest(name, known_top_level_keys());
        return error(origin_of(key.source()), fmt::format("unknown key '{}'", name),
                     suggestion.empty()
                         ? fmt::format("valid keys: {}", fmt::join(known_top_level_keys(), ", "))
                         : fmt::format("did you mean '{}'?", suggestion));
      }
    }
    for (const ConfigKey& key : config_keys()) {
      if (key.required && key.section.empty() && !root.contains(key.name)) {
        return error({}, fmt::format("no '{}' set", key.name),
                     "add interpreter = \"/path/to/python3\" at the top of the file");
      }
    }
    return Ok{};
  }

  static const ConfigKey* find_key(std::string_view section, std::string_view name) {
    for (const ConfigKey& key : config_keys()) {
      if (key.section == section && key.name == name && key.kind != KeyKind::kEnv) return &key;
      // [env]'s keys are variable names: the section itself is its row.
      if (key.kind == KeyKind::kEnv && section.empty() && key.section == name) return &key;
    }
    return nullptr;
  }

  static bool is_section(std::string_view name) {
    for (const ConfigKey& key : config_keys()) {
      if (!key.section.empty() && key.section == name) return true;
    }
    return false;
  }

 private:
  Config& config_;
};

}  // namespace

bool is_dotted_name(std::string_view dotted) {
  // pkg.sub.mod: non-empty parts of [A-Za-z0-9_], not starting with a digit.
  if (dotted.empty()) return false;
  bool start = true;
  for (char c : dotted) {
    if (c == '.') {
      if (start) return false;
      start = true;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
      if (start && std::isdigit(static_cast<unsigned char>(c))) return false;
      start = false;
    } else {
      return false;
    }
  }
  return !start;
}

std::string_view env_mode_name(EnvMode mode) {
  switch (mode) {
    case EnvMode::kPrepend:
      return "prepend";
    case EnvMode::kAppend:
      return "append";
    case EnvMode::kSet:
      break;
  }
  return "set";
}

const std::vector<ConfigKey>& config_keys() {
  // Top-level keys first: TOML puts everything after a [section] line in it.
  static const std::vector<ConfigKey> keys = {
      {.name = "interpreter",
       .kind = KeyKind::kPath,
       .required = true,
       .one = &Config::interpreter,
       .comment = "\n# The real interpreter.\n"},
      {.name = "preload",
       .kind = KeyKind::kPreloads,
       .many = &Config::preload,
       .comment = "\n# Preloaded into every interpreter started through this launcher, workers\n"
                  "# included; removed again for non-Python children.\n"},
      {.name = "library_path",
       .kind = KeyKind::kPaths,
       .many = &Config::library_path,
       .comment = "\n# Searched for shared libraries, in this order.\n"},
      {.name = "library_path_position",
       .kind = KeyKind::kPosition,
       .comment = "# \"prepend\": before the caller's LD_LIBRARY_PATH; \"append\": after it.\n"},
      {.section = "env",
       .name = "env",
       .kind = KeyKind::kEnv,
       .comment =
           "\n# Set for the interpreter and inherited by all its children. NAME = { prepend = "
           "\"v\" }\n"
           "# gives v:<caller's value>, { append = \"v\" } <caller's value>:v (README,\n"
           "# \"[env] that adds to the caller's value\").\n"},
      {.section = "python",
       .name = "startup",
       .kind = KeyKind::kHooks,
       .many = &Config::startup,
       .comment = "\n# Called in every interpreter started through this launcher, before the main\n"
                  "# module (not with -S). `path` folders go on sys.path before the imports.\n"},
      {.section = "python", .name = "path", .kind = KeyKind::kPaths, .many = &Config::python_path},
      {.section = "dynlib",
       .name = "exclude",
       .kind = KeyKind::kStrings,
       .many = &Config::dynlib_exclude,
       .comment = "\n# Files `pyshim dynlib` leaves out: globs relative to site-packages, ** for\n"
                  "# any folders.\n"},
  };
  return keys;
}

std::string toml_quote(std::string_view text) {
  std::ostringstream out;
  out << toml::value<std::string>(std::string(text));
  return out.str();
}

std::vector<std::string> values(const std::vector<Setting>& settings) {
  std::vector<std::string> out;
  out.reserve(settings.size());
  for (const Setting& s : settings) out.push_back(s.value);
  return out;
}

namespace {

// Whether a row differs from an unwritten key (a section is written when
// one of its keys is).
bool is_set(const Config& config, const ConfigKey& key) {
  switch (key.kind) {
    case KeyKind::kPath:
      return !(config.*key.one).value.empty();
    case KeyKind::kPaths:
    case KeyKind::kPreloads:
    case KeyKind::kStrings:
    case KeyKind::kHooks:
      return !(config.*key.many).empty();
    case KeyKind::kPosition:
      return config.library_path_position != Position::kPrepend;
    case KeyKind::kEnv:
      return !config.env.empty();
  }
  return false;
}

// One row's value, as parse_config reads it back.
void render_value(std::string& out, const Config& config, const ConfigKey& key) {
  switch (key.kind) {
    case KeyKind::kPath:
      out += fmt::format("{} = {}\n", key.name, toml_quote((config.*key.one).value));
      return;
    case KeyKind::kPaths:
    case KeyKind::kPreloads:
    case KeyKind::kStrings:
    case KeyKind::kHooks: {
      // One path a line at the top, where the long lists are; inline in a section.
      const std::vector<Setting>& items = config.*key.many;
      bool lines = key.section.empty();
      out += fmt::format("{} = [", key.name);
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += lines ? "," : ", ";
        if (lines) out += "\n  ";
        out += toml_quote(items[i].value);
      }
      out += lines && !items.empty() ? ",\n]\n" : "]\n";
      return;
    }
    case KeyKind::kPosition:
      out += fmt::format("{} = \"{}\"\n", key.name,
                         config.library_path_position == Position::kAppend ? "append" : "prepend");
      return;
    case KeyKind::kEnv:
      for (const EnvSetting& var : config.env) {
        const std::string& name = var.name;
        bool bare = !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
          return std::isalnum(c) || c == '_' || c == '-';
        });
        std::string k = bare ? name : toml_quote(name);
        if (var.mode == EnvMode::kSet) {
          out += fmt::format("{} = {}\n", k, toml_quote(var.value));
        } else {
          out += fmt::format("{} = {{ {} = {} }}\n", k, env_mode_name(var.mode),
                             toml_quote(var.value));
        }
      }
      return;
  }
}

}  // namespace

std::string render_config(const Config& config, const std::vector<std::string>& notes) {
  std::string out =
      "# pyshim.toml: read by the pyshim launcher (this venv's bin/python) at every\n"
      "# interpreter start. Reference: pyshim's README, section \"Config: pyshim.toml\".\n"
      "# Check it with `pyshim doctor`, see the launch it gives with `pyshim show`.\n";
  for (const std::string& note : notes) out += fmt::format("# {}\n", note);
  const auto& keys = config_keys();
  std::string_view open;  // the [section] written last
  for (const ConfigKey& key : keys) {
    // [env] is always written, as a place to add variables; other sections
    // only when one of their keys is set.
    if (!key.section.empty() && key.kind != KeyKind::kEnv &&
        std::none_of(keys.begin(), keys.end(), [&](const ConfigKey& other) {
          return other.section == key.section && is_set(config, other);
        })) {
      continue;
    }
    out += key.comment;
    if (key.section != open) {
      out += fmt::format("[{}]\n", key.section);
      open = key.section;
    }
    render_value(out, config, key);
  }
  return out;
}

const std::vector<std::string_view>& known_top_level_keys() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> out;
    for (const ConfigKey& key : config_keys()) {
      std::string_view name = key.section.empty() ? key.name : key.section;
      if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
    }
    return out;
  }();
  return names;
}

std::string resolve_path(std::string_view dir, std::string_view path) {
  if (path.starts_with('/') || dir.empty()) return std::string(path);
  while (path.starts_with("./")) path.remove_prefix(2);
  std::string out;
  out.reserve(dir.size() + 1 + path.size());
  out.append(dir);
  if (!out.ends_with('/')) out.push_back('/');
  out.append(path);
  return out;
}

std::string where(const Config& config, Origin origin) {
  if (origin.line == 0) return config.file;
  return fmt::format("{}:{}:{}", config.file, origin.line, origin.column);
}

bool is_valid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    std::size_t n = c < 0x80                ? 1
                    : c >= 0xc2 && c < 0xe0 ? 2
                    : c >= 0xe0 && c < 0xf0 ? 3
                    : c >= 0xf0 && c < 0xf5 ? 4
                                            : 0;
    if (n == 0 || i + n > text.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) return false;
    }
    auto next = static_cast<unsigned char>(n > 1 ? text[i + 1] : 0);
    // Overlong 3/4-byte forms, surrogates, and code points past U+10FFFF.
    if ((c == 0xe0 && next < 0xa0) || (c == 0xed && next >= 0xa0) || (c == 0xf0 && next < 0x90) ||
        (c == 0xf4 && next >= 0x90)) {
      return false;
    }
    i += n;
  }
  return true;
}

std::string_view nearest(std::string_view word, const std::vector<std::string_view>& candidates) {
  std::string_view best;
  std::size_t best_distance = std::max<std::size_t>(2, word.size() / 3) + 1;
  std::vector<std::size_t> row;
  for (std::string_view candidate : candidates) {
    // Levenshtein distance, one row at a time.
    row.resize(candidate.size() + 1);
    for (std::size_t j = 0; j <= candidate.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= word.size(); ++i) {
      std::size_t diagonal = row[0];
      row[0] = i;
      for (std::size_t j = 1; j <= candidate.size(); ++j) {
        std::size_t up = row[j];
        std::size_t cost = word[i - 1] == candidate[j - 1] ? 0 : 1;
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
        diagonal = up;
      }
    }
    if (row[candidate.size()] < best_distance) {
      best_distance = row[candidate.size()];
      best = candidate;
    }
  }
  return best;
}

Result<Config> parse_config(std::string_view text, std::string_view file) {
  Config config;
  config.file = std::string(file);
  config.dir = dirname(file);

  toml::parse_result parsed = toml::parse(text, file);
  if (!parsed) {
    const toml::parse_error& err = parsed.error();
    Error e;
    e.message = fmt::format("invalid TOML: {}", err.description());
    e.context.push_back(
        fmt::format("config: {}:{}:{}", file, err.source().begin.line, err.source().begin.column));
    e.hint = "fix the syntax (https://toml.io); strings need double quotes";
    return e;
  }
  Parser parser(config);
  if (auto status = parser.top_level(parsed.table()); !status) return status.take_error();
  return config;
}

}  // namespace pyshim
