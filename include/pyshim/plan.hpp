// The launch plan: a pure function from (config, caller environment, invoked
// path, restore library) to what execve() gets. No I/O happens here.
#pragma once

#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pyshim/config.hpp"

namespace pyshim {

// Bookkeeping: the caller's LD_PRELOAD / LD_LIBRARY_PATH, recorded so the
// restore library can put them back. The value is the complete original entry
// ("LD_PRELOAD=..." when it was set, possibly empty after '='), or "" when it
// was unset, so the restore library can reuse the string in place, with no heap.
inline constexpr std::string_view kOrigPreloadVar = "PYSHIM_ORIG_LD_PRELOAD";
inline constexpr std::string_view kOrigLibraryPathVar = "PYSHIM_ORIG_LD_LIBRARY_PATH";
inline constexpr std::string_view kPreloadVar = "LD_PRELOAD";
inline constexpr std::string_view kLibraryPathVar = "LD_LIBRARY_PATH";

// Startup hooks for the interpreter: "<config file>\npath=<dir>\n...hook=<mod:fn>\n...".
// Set only when the config has hooks. The restore library removes it from
// environ before main(), so no child inherits it; the hook module in
// site-packages reads it from /proc/self/environ (the environment as exec'd).
inline constexpr std::string_view kStartupVar = "PYSHIM_STARTUP";

// The value of kStartupVar for a config ("" when it has no hooks).
std::string startup_value(const Config& config);

// Separators the dynamic loader splits these variables on.
inline constexpr std::string_view kPreloadSeparators = ": ";
inline constexpr std::string_view kLibraryPathSeparators = ":;";

using EnvView = std::span<const char* const>;  // "NAME=value" entries, no terminator

// The value of NAME in env, or nullptr-data view when unset (set-but-empty
// gives a non-null empty view).
std::string_view env_get(EnvView env, std::string_view name);
inline bool env_has(EnvView env, std::string_view name) {
  return env_get(env, name).data() != nullptr;
}

// Appends the non-empty pieces of list (split on any of separators) to out,
// skipping exact duplicates of what out already holds.
void append_unique(std::vector<std::string_view>& out, std::string_view list,
                   std::string_view separators);

struct PlanInputs {
  const Config* config = nullptr;
  EnvView env;                    // the caller's environment
  std::string_view invoked_path;  // absolute, symlinks not resolved
  std::string_view restore_library;
};

struct Plan {
  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  Plan(Plan&&) = default;
  Plan& operator=(Plan&&) = default;

  std::string interpreter;
  std::string argv0;
  std::vector<const char*> env;     // nullptr-terminated, for execve
  std::deque<std::string> storage;  // the entries the plan wrote (stable addresses)
};

Plan make_plan(const PlanInputs& inputs);

}  // namespace pyshim
