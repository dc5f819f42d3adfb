// What `pyshim show` and `pyshim doctor` say, computed without I/O: the
// launch plan compared with the caller's environment (show), and the
// verdicts on a live round trip through the launcher (doctor). The CLI files
// gather the facts; these functions decide what they mean, so the unit tests
// can check the wording and the verdicts without a disk or an interpreter.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pyshim/error.hpp"
#include "pyshim/launch.hpp"

namespace pyshim {

// ---------------------------------------------------------------- show

// Origins that are not a line of the config.
inline constexpr std::string_view kOriginRestoreLibrary = "restore library";
inline constexpr std::string_view kOriginCaller = "caller's environment";
inline constexpr std::string_view kOriginBookkeeping =
    "bookkeeping (removed by the restore library before main)";
// A variable the plan sets that none of the above explains (a safety net).
inline constexpr std::string_view kOriginPlan = "launch plan";

inline constexpr int kShowSchemaVersion = 1;

// A variable the plan adds or changes relative to the caller's environment.
struct EnvChange {
  std::string name;
  bool added = false;                 // false: the caller had it with another value
  std::string value;                  // what the interpreter is started with
  std::optional<std::string> before;  // the caller's value; nullopt when unset
  // "file:line:col" of the config lines it comes from, or one of kOrigin*.
  std::vector<std::string> origin;
  // An [env] variable: its form, and for prepend/append the caller's value
  // the plan kept in it (nullopt when the caller had none, or for a set).
  std::optional<EnvMode> mode;
  std::optional<std::string> caller_part;
  // The restore library undoes it before the interpreter's main():
  // LD_PRELOAD / LD_LIBRARY_PATH get the caller's value back, PYSHIM_STARTUP
  // and the bookkeeping variables are removed.
  bool restored_before_main = false;
};

// In a fixed order: LD_PRELOAD, LD_LIBRARY_PATH, [env] in file order,
// PYSHIM_STARTUP, the bookkeeping variables, anything else the plan sets. Variables the plan sets
// to the caller's value are left out.
std::vector<EnvChange> env_changes(const Launch& launch, EnvView caller);

// `pyshim show` for people, and the stable JSON document (schema in README).
std::string show_text(const LaunchRequest& request, const Launch& launch);
std::string show_json(const LaunchRequest& request, const Launch& launch);

// ---------------------------------------------------------------- doctor

struct Check {
  enum class State { kPass, kFail, kSkip };
  State state = State::kPass;
  // Which property, as a stable snake_case name for `doctor --json` (the
  // README lists them). Not unique: each preload gets its own "preload".
  std::string id;
  std::string what;                  // the property checked, stated positively
  std::string reason;                // kFail/kSkip: why
  std::vector<std::string> context;  // "config: file:line:col", "stderr: ...", ...
  std::string fix;                   // kFail: what to do

  static Check pass(std::string id, std::string what) {
    return {State::kPass, std::move(id), std::move(what), {}, {}, {}};
  }
  static Check fail(std::string id, std::string what, std::string reason, std::string fix,
                    std::vector<std::string> context = {}) {
    return {State::kFail,      std::move(id),      std::move(what),
            std::move(reason), std::move(context), std::move(fix)};
  }
  static Check skip(std::string id, std::string what, std::string reason) {
    return {State::kSkip, std::move(id), std::move(what), std::move(reason), {}, {}};
  }
};

// "✓ what", "✗ what: reason" + indented context and "fix:" lines, or
// "- what: skipped (reason)".
std::string format_check(const Check& check);

inline constexpr int kDoctorSchemaVersion = 1;

// `pyshim doctor --json` (schema in README): {"schema", "launcher", "ok",
// "checks": [{"id", "ok", "message", "fix"}]}. A check's message is its
// text line without the mark, then its context lines, newline-separated;
// "ok" is false for a failed or skipped check.
std::string doctor_json(std::string_view launcher, bool ok, const std::vector<Check>& checks);

// `pyshim show --json` / `doctor --json` when there is no plan or report to
// print: {"schema": 1, "error": {"message", "context", "hint", "exit_code"}}.
std::string error_json(const Error& error);

// What the round-trip probe (in src/tool/doctor.cpp, run as
// `LAUNCHER -c PROBE LIB...` with the libraries to look for, as configured
// and realpath'd) prints: `key=value` lines, with '\' and newline in values
// escaped as \\ and \n:
//   executable, implementation           sys.executable, sys.implementation.name
//   parent.map / spawn.map / sh.map      a mapped file matching one of the LIBs
//                                        (by path or basename), one line each
//   spawn.ok | spawn.error, sh.ok | sh.error
//   sh.ld_preload, sh.ld_library_path    absent when unset in the /bin/sh child
//   sh.bookkeeping                       a PYSHIM_ORIG_* name that reached it
//   done                                 last line: the probe ran to the end
class ProbeOutput {
 public:
  static ProbeOutput parse(std::string_view text);
  bool has(std::string_view key) const;
  // The first value of key, nullopt when absent.
  std::optional<std::string> get(std::string_view key) const;
  std::vector<std::string> all(std::string_view key) const;
  bool empty() const { return entries_.empty(); }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

struct Library {
  std::string path;  // as configured
  std::string real;  // realpath, "" if it does not resolve
};

struct RoundTrip {
  std::string launcher;  // P
  std::vector<Library> preloads;
  Library restore_library;
  // The caller's (doctor's own) values, which the /bin/sh child must get.
  std::optional<std::string> caller_preload;
  std::optional<std::string> caller_library_path;
  // What running the probe gave.
  bool timed_out = false;
  int timeout_seconds = 0;
  std::string status;  // "exit status 1", "killed by signal 9"
  std::string out;
  std::string err;
};

// The round-trip lines of `pyshim doctor`, from sys.executable to the
// /bin/sh child.
std::vector<Check> round_trip_checks(const RoundTrip& trip);

// `doctor LAUNCHER --import MOD`: MOD imported through the launcher in the
// interpreter (`LAUNCHER -c <import MOD>`), then in a spawn worker of a
// parent that does not import it (a ProcessPoolExecutor with the spawn
// context, whose worker comes back through sys.executable).
struct ImportRun {
  bool ran = false;      // false: not run (the worker, when the interpreter failed)
  bool ok = false;       // started, exited 0 within the time limit
  std::string status{};  // "exit status 1", "killed by signal 6", or why it did not start
  bool timed_out = false;
  int timeout_seconds = 0;
  std::string err{};  // its stderr
};

struct ImportTrip {
  std::string module;
  ImportRun interpreter;
  ImportRun worker;
  std::string run_as;  // "uid 1000, gid 65534" when root ran it as the venv's user, else ""
};

// One check per process: ids "import" (the interpreter) and "import_spawn"
// (the worker; skipped when the interpreter could not import it). A failure
// names the process and quotes its stderr's last distinct lines.
std::vector<Check> import_checks(const ImportTrip& trip);

}  // namespace pyshim
