// libFuzzer target: the launcher's config reader and planner.
//
// Input: a pyshim.toml, optionally followed by a line "#@env" and the
// caller's environment, one "NAME=value" entry per line. Two lines of that
// part are not environment entries: "@argv0=PATH" sets the invoked path and
// "@restore=PATH" the restore library's path. Since "#@env" starts a TOML
// comment, a config part whose marker got mutated is still mostly TOML.
//
// Whatever the input, parse_config must return a Config or an Error without
// crashing, leaking or hanging; a Config must satisfy what the README's
// "Config: `pyshim.toml`" promises; and make_plan must produce exactly the
// environment that "How it works" describes (checked against an independent
// model below), and the same environment again when run on its own output
// ("No growth when nested").
// A violated invariant prints what failed and calls __builtin_trap().
//
// Build and run: tests/fuzz/run.sh.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_check.hpp"
#include "pyshim/config.hpp"
#include "pyshim/error.hpp"
#include "pyshim/plan.hpp"

namespace {

using pyshim::Config;
using pyshim::EnvSetting;
using pyshim::Origin;
using pyshim::Plan;
using pyshim::Setting;

constexpr std::string_view kConfigFile = "/fuzz/pyshim.toml";
constexpr std::string_view kConfigDir = "/fuzz";
constexpr std::string_view kEnvMarker = "\n#@env\n";
constexpr std::string_view kArgv0Line = "@argv0=";
constexpr std::string_view kRestoreLine = "@restore=";

using fuzz::check;
using fuzz::fail;

bool has_nul(std::string_view s) {
  return s.find('\0') != std::string_view::npos;
}

// ---------------------------------------------------------------- config

bool is_identifier_path(std::string_view dotted) {
  if (dotted.empty() || dotted.front() == '.' || dotted.back() == '.') return false;
  bool start = true;
  for (char c : dotted) {
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    bool digit = c >= '0' && c <= '9';
    if (c == '.') {
      if (start) return false;
      start = true;
    } else if (alpha || (digit && !start)) {
      start = false;
    } else {
      return false;
    }
  }
  return true;
}

void check_origin(Origin origin, const char* what) {
  check(origin.line >= 1 && origin.column >= 1, what);
}

void check_path(const Setting& s, const char* what) {
  // The config file's directory is absolute, so every resolved path is.
  check(!s.value.empty() && s.value.front() == '/', what, s.value);
  check(!has_nul(s.value), what, s.value);
  check_origin(s.origin, what);
}

bool is_managed_by_pyshim(std::string_view name) {
  return name == pyshim::kPreloadVar || name == pyshim::kLibraryPathVar ||
         name.starts_with("PYSHIM_");
}

void check_config(const Config& config) {
  check(config.file == kConfigFile, "config.file is the file given");
  check(config.dir == kConfigDir, "config.dir is the file's directory");
  check_path(config.interpreter, "interpreter is an absolute path without NUL");
  for (const Setting& s : config.preload) {
    check_path(s, "preload is an absolute path without NUL");
  }
  for (const Setting& s : config.library_path) {
    check_path(s, "library_path entry is an absolute path without NUL");
  }
  for (const Setting& s : config.python_path) {
    check_path(s, "[python] path entry is an absolute path without NUL");
  }
  for (const Setting& s : config.startup) {
    std::size_t colon = s.value.find(':');
    check(colon != std::string::npos &&
              is_identifier_path(std::string_view(s.value).substr(0, colon)) &&
              is_identifier_path(std::string_view(s.value).substr(colon + 1)),
          "startup hook is package.module:function", s.value);
    check_origin(s.origin, "startup hook has an origin");
  }
  for (const Setting& s : config.dynlib_exclude) {
    check(!has_nul(s.value), "[dynlib] exclude has no NUL", s.value);
    check_origin(s.origin, "[dynlib] exclude has an origin");
  }
  for (std::size_t i = 0; i < config.env.size(); ++i) {
    const EnvSetting& var = config.env[i];
    check(!var.name.empty(), "[env] name is not empty");
    check(var.name.find('=') == std::string::npos, "[env] name has no '='", var.name);
    check(!has_nul(var.name) && !has_nul(var.value), "[env] entry has no NUL", var.name);
    check(!is_managed_by_pyshim(var.name), "[env] does not set pyshim's variables", var.name);
    check_origin(var.origin, "[env] entry has an origin");
    check(var.mode == pyshim::EnvMode::kSet || var.mode == pyshim::EnvMode::kPrepend ||
              var.mode == pyshim::EnvMode::kAppend,
          "[env] entry has a known form", var.name);
    check(var.mode == pyshim::EnvMode::kSet || !var.value.empty(),
          "[env] prepend/append adds something", var.name);
    for (std::size_t j = 0; j < i; ++j) {
      check(config.env[j].name != var.name, "[env] names are unique", var.name);
      const Origin a = config.env[j].origin;
      check(a.line < var.origin.line || (a.line == var.origin.line && a.column < var.origin.column),
            "[env] is in file order", var.name);
    }
  }
  const std::string at = pyshim::where(config, config.interpreter.origin);
  check(at.starts_with(config.file) && at.size() > config.file.size(),
        "where() names the file, line and column", at);
  check(pyshim::where(config, Origin{}) == config.file, "where() of no origin is the file");
}

void check_error(const pyshim::Error& error) {
  check(error.exit_code() == pyshim::kExitShimFailure, "a config error exits 125");
  check(!error.message.empty(), "an error has a message");
  check(!error.hint.empty(), "an error has a hint", error.message);
  check(!error.context.empty() && error.context.front().starts_with("config: /fuzz/pyshim.toml"),
        "an error names the config file", error.message);
}

// ------------------------------------------------------------------ plan

// The name of an environment entry, or nullopt when it has no '='.
std::optional<std::string_view> name_of(std::string_view entry) {
  std::size_t eq = entry.find('=');
  if (eq == std::string_view::npos) return std::nullopt;
  return entry.substr(0, eq);
}

// The value of NAME's last entry (the one the dynamic loader uses), or nullopt.
std::optional<std::string_view> last_value(const std::vector<std::string_view>& env,
                                           std::string_view name) {
  std::optional<std::string_view> value;
  for (std::string_view entry : env) {
    if (name_of(entry) == name) value = entry.substr(name.size() + 1);
  }
  return value;
}

void add_unique(std::vector<std::string>& list, std::string_view piece) {
  if (piece.empty()) return;
  for (const std::string& existing : list) {
    if (existing == piece) return;
  }
  list.emplace_back(piece);
}

void add_split(std::vector<std::string>& list, std::optional<std::string_view> value,
               std::string_view separators) {
  if (!value) return;
  std::string_view rest = *value;
  for (;;) {
    std::size_t cut = rest.find_first_of(separators);
    add_unique(list, rest.substr(0, cut));
    if (cut == std::string_view::npos) break;
    rest.remove_prefix(cut + 1);
  }
}

std::string joined(const std::vector<std::string>& list) {
  std::string out;
  for (const std::string& piece : list) {
    if (!out.empty()) out.push_back(':');
    out += piece;
  }
  return out;
}

struct Expected {
  std::vector<std::pair<std::string, std::string>> managed;  // name, full entry; in set order
  std::vector<std::string> env;                              // the whole environment
};

// What the README ("How it works") says the plan's environment is, computed
// independently of plan.cpp.
Expected model(const Config& config, const std::vector<std::string_view>& caller,
               std::string_view restore, std::string_view argv0) {
  Expected out;
  auto set = [&](std::string_view name, std::string_view value) {
    std::string entry(name);
    entry.push_back('=');
    entry.append(value);
    out.managed.emplace_back(std::string(name), std::move(entry));
  };

  std::vector<std::string> preload;
  for (const Setting& s : config.preload) add_unique(preload, s.value);
  add_unique(preload, restore);
  add_split(preload, last_value(caller, pyshim::kPreloadVar), pyshim::kPreloadSeparators);
  set(pyshim::kPreloadVar, joined(preload));

  if (!config.library_path.empty()) {
    std::vector<std::string> dirs;
    auto caller_dirs = last_value(caller, pyshim::kLibraryPathVar);
    if (config.library_path_position == pyshim::Position::kAppend) {
      add_split(dirs, caller_dirs, pyshim::kLibraryPathSeparators);
    }
    for (const Setting& s : config.library_path) add_unique(dirs, s.value);
    add_split(dirs, caller_dirs, pyshim::kLibraryPathSeparators);
    set(pyshim::kLibraryPathVar, joined(dirs));
  }

  // [env] (README, "`[env]` that adds to the caller's value"): set; or the
  // part before (prepend) or after
  // (append) the caller's value, unless that is unset or empty (the part
  // alone) or already has the part at that end as whole ':' pieces.
  for (const EnvSetting& var : config.env) {
    auto caller_value = last_value(caller, var.name);
    if (var.mode == pyshim::EnvMode::kSet || !caller_value || caller_value->empty()) {
      set(var.name, var.value);
      continue;
    }
    std::string have(*caller_value);
    bool prepend = var.mode == pyshim::EnvMode::kPrepend;
    std::string padded = ":" + have + ":";
    bool in_place = prepend ? padded.starts_with(":" + var.value + ":")
                            : padded.ends_with(":" + var.value + ":");
    set(var.name, in_place ? have : prepend ? var.value + ":" + have : have + ":" + var.value);
  }
  if (!config.startup.empty()) set(pyshim::kStartupVar, pyshim::startup_value(config));

  // The recorded originals: an earlier hop's record wins over the current value.
  auto original = [&](std::string_view record, std::string_view var) -> std::string {
    if (auto recorded = last_value(caller, record)) return std::string(*recorded);
    if (auto current = last_value(caller, var))
      return std::string(var) + "=" + std::string(*current);
    return {};
  };
  std::string orig_preload = original(pyshim::kOrigPreloadVar, pyshim::kPreloadVar);
  std::string orig_library_path = original(pyshim::kOrigLibraryPathVar, pyshim::kLibraryPathVar);
  set(pyshim::kOrigPreloadVar, orig_preload);
  set(pyshim::kOrigLibraryPathVar, orig_library_path);
  set(pyshim::kTargetVar, argv0);  // the restore library's target: the interpreter's argv[0]

  // A managed variable takes the slot of its first caller entry; its other
  // entries are dropped; one the caller does not have goes at the end.
  auto managed_index = [&](std::string_view entry) -> std::optional<std::size_t> {
    auto name = name_of(entry);
    if (!name) return std::nullopt;
    for (std::size_t i = 0; i < out.managed.size(); ++i) {
      if (out.managed[i].first == *name) return i;
    }
    return std::nullopt;
  };
  std::vector<bool> placed(out.managed.size(), false);
  for (std::string_view entry : caller) {
    auto index = managed_index(entry);
    if (!index) {
      out.env.emplace_back(entry);
    } else if (!placed[*index]) {
      placed[*index] = true;
      out.env.push_back(out.managed[*index].second);
    }
  }
  for (std::size_t i = 0; i < out.managed.size(); ++i) {
    if (!placed[i]) out.env.push_back(out.managed[i].second);
  }
  return out;
}

std::vector<std::string_view> strings_of(const Plan& plan) {
  check(!plan.env.empty() && plan.env.back() == nullptr, "plan.env is nullptr-terminated");
  std::vector<std::string_view> out;
  for (std::size_t i = 0; i + 1 < plan.env.size(); ++i) {
    check(plan.env[i] != nullptr, "plan.env has no nullptr before its end");
    out.emplace_back(plan.env[i]);  // ASan: every entry is alive and terminated
  }
  return out;
}

std::size_t count_named(const std::vector<std::string_view>& env, std::string_view name) {
  std::size_t n = 0;
  for (std::string_view entry : env) n += name_of(entry) == name ? 1 : 0;
  return n;
}

bool has_any(std::string_view s, std::string_view chars) {
  return s.find_first_of(chars) != std::string_view::npos;
}

void check_plan(const Config& config, const std::vector<std::string_view>& caller,
                std::string_view argv0, std::string_view restore) {
  std::vector<const char*> view;
  view.reserve(caller.size());
  for (std::string_view entry : caller) view.push_back(entry.data());  // NUL-terminated

  Plan first = pyshim::make_plan({&config, pyshim::EnvView(view), argv0, restore});
  Plan plan = std::move(first);  // the launcher moves plans around: entries must stay valid
  check(plan.argv0 == argv0, "argv0 is the invoked path", plan.argv0);
  check(plan.interpreter == config.interpreter.value, "the interpreter is the configured one",
        plan.interpreter);

  const std::vector<std::string_view> env = strings_of(plan);
  const Expected expected = model(config, caller, restore, argv0);

  // The specific promises first, for a readable report; then the whole thing.
  const pyshim::EnvView plan_view(plan.env.data(), plan.env.size() - 1);
  check(count_named(env, pyshim::kPreloadVar) == 1, "exactly one LD_PRELOAD entry");
  {
    std::vector<std::string> configured;
    for (const Setting& s : config.preload) add_unique(configured, s.value);
    const std::string prefix = joined(configured);
    const std::string_view actual = pyshim::env_get(plan_view, pyshim::kPreloadVar);
    check(actual.starts_with(prefix) &&
              (actual.size() == prefix.size() || prefix.empty() || actual[prefix.size()] == ':'),
          "the configured preloads come first in LD_PRELOAD", actual);
  }
  for (const auto& [name, entry] : expected.managed) {
    check(count_named(env, name) == 1, "each variable the plan sets appears exactly once", name);
    const std::string_view want = std::string_view(entry).substr(name.size() + 1);
    const std::string_view got = pyshim::env_get(plan_view, name);
    if (got != want) {
      fail("a variable the plan sets has the wrong value", std::string(name) + ": expected '" +
                                                               std::string(want) + "', got '" +
                                                               std::string(got) + "'");
    }
  }
  check(env.size() == expected.env.size(), "the plan's environment has the expected size");
  for (std::size_t i = 0; i < env.size(); ++i) {
    if (env[i] != expected.env[i]) {
      fail("the plan's environment is not the expected one",
           "entry " + std::to_string(i) + ": expected '" + expected.env[i] + "', got '" +
               std::string(env[i]) + "'");
    }
  }

  // No growth when nested: a second hop whose restore library did not run
  // gives the same environment, byte for byte. The launcher refuses paths
  // holding the loader's separators before exec, so only for those without.
  bool plain = !has_any(restore, pyshim::kPreloadSeparators);
  for (const Setting& s : config.preload)
    plain = plain && !has_any(s.value, pyshim::kPreloadSeparators);
  for (const Setting& s : config.library_path) {
    plain = plain && !has_any(s.value, pyshim::kLibraryPathSeparators);
  }
  if (!plain) return;
  Plan again = pyshim::make_plan(
      {&config, pyshim::EnvView(plan.env.data(), plan.env.size() - 1), argv0, restore});
  const std::vector<std::string_view> env2 = strings_of(again);
  check(env2.size() == env.size(), "a nested launch does not grow the environment");
  for (std::size_t i = 0; i < env.size(); ++i) {
    check(env2[i] == env[i], "a nested launch gives the same environment", env2[i]);
  }
}

// ------------------------------------------------------------------ input

struct Input {
  std::string_view config;
  std::vector<std::string> env;
  std::string argv0 = "/fuzz/venv/bin/python";
  std::string restore = "/fuzz/lib/pyshim/libpyshim-restore.so";
};

Input split_input(std::string_view data) {
  Input in;
  std::size_t marker = data.find(kEnvMarker);
  in.config = data.substr(0, marker);
  if (marker == std::string_view::npos) return in;
  std::string_view rest = data.substr(marker + kEnvMarker.size());
  while (!rest.empty()) {
    std::size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol == std::string_view::npos ? rest.size() : eol + 1);
    // An environment entry is a C string: it ends at the first NUL.
    line = line.substr(0, line.find('\0'));
    if (line.starts_with(kArgv0Line)) {
      in.argv0 = std::string(line.substr(kArgv0Line.size()));
    } else if (line.starts_with(kRestoreLine)) {
      in.restore = std::string(line.substr(kRestoreLine.size()));
    } else {
      in.env.emplace_back(line);
    }
  }
  return in;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const Input in = split_input(bytes);

  pyshim::Result<Config> config = pyshim::parse_config(in.config, kConfigFile);
  if (!config) {
    check_error(config.error());
    return 0;
  }
  check_config(*config);

  // Each caller entry in a heap block of exactly its size, so that ASan sees
  // any read past its terminating NUL (std::string's inline buffer would hide it).
  std::vector<std::unique_ptr<char[]>> blocks;
  std::vector<std::string_view> caller;
  for (const std::string& entry : in.env) {
    blocks.push_back(std::make_unique<char[]>(entry.size() + 1));
    std::memcpy(blocks.back().get(), entry.c_str(), entry.size() + 1);
    caller.emplace_back(blocks.back().get(), entry.size());
  }
  check_plan(*config, caller, in.argv0, in.restore);
  return 0;
}
