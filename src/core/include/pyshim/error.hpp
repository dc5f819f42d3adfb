// Errors are values inside the core: a kind (which carries the exit code), a
// message, context lines and a hint. They become text in exactly one place
// per binary, at its boundary: format_error(), called by the launcher's
// fail() (src/launcher/launcher.cpp) and the CLI's print_error()
// (src/tool/tool.cpp), which also exit with exit_code(kind).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace pyshim {

// Exit codes follow GNU env: 125 the shim failed, 126 cannot execute,
// 127 not found. Tool mode uses 1 (check failed) and 2 (usage/refusal).
enum ExitCode : int {
  kExitOk = 0,
  kExitCheckFailed = 1,
  kExitUsage = 2,
  kExitShimFailure = 125,
  kExitCannotExecute = 126,
  kExitNotFound = 127,
};

// What went wrong, as a value code can branch on (doctor reads it, never the
// text). The launch rules (launch_rules.hpp) return these in their verdicts
// without any text; the exit code follows from the kind alone.
enum class ErrorKind : std::uint8_t {
  kNone,  // no error: a verdict that passed
  // Generic kinds, by exit code.
  kCheckFailed,
  kUsage,
  kShimFailure,
  kCannotExecute,
  kNotFound,
  // The launch rules' kinds.
  kPrivileged,                // AT_SECURE
  kConfigNotFound,            // no pyshim.toml anywhere and no stamp
  kConfigUnreadable,          // found but not readable (or not a regular file)
  kConfigReplaced,            // swapped between its check and its read
  kRestoreLibraryNotFound,    // no trusted candidate
  kRestoreLibraryUnusable,    // not an ELF shared object the interpreter's loader takes
  kRestoreLibraryUnopenable,  // its descriptor preload could not be opened
  kProcUnusable,              // a descriptor preload without /proc
  kInterpreterNotFound,       // 127
  kInterpreterUnreadable,     // stat failed otherwise: 126
  kInterpreterNotExecutable,  // not a regular file with an x bit: 126
  kInterpreterIsLauncher,     // a pyshim launcher (this one, a copy, another build)
  kPreloadRefused,            // the loader cannot take its path (loader_refusal)
  kPreloadNotFound,
  kPreloadUnreadable,
  kPreloadIsFolder,
  kLibraryFolderRefused,  // the loader cannot take its path
  kTooLongForExecve,      // an environment string execve refuses with E2BIG
};

constexpr int exit_code(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNone:
      return kExitOk;
    case ErrorKind::kCheckFailed:
      return kExitCheckFailed;
    case ErrorKind::kUsage:
      return kExitUsage;
    case ErrorKind::kNotFound:
    case ErrorKind::kInterpreterNotFound:
      return kExitNotFound;
    case ErrorKind::kCannotExecute:
    case ErrorKind::kInterpreterUnreadable:
    case ErrorKind::kInterpreterNotExecutable:
      return kExitCannotExecute;
    default:
      return kExitShimFailure;
  }
}

struct Error {
  ErrorKind kind = ErrorKind::kShimFailure;
  std::string message;               // one line: what went wrong
  std::vector<std::string> context;  // "config: file:line:col", searched places, ...
  std::string hint;                  // what to do about it
  int exit_code() const { return pyshim::exit_code(kind); }
};

// Renders "pyshim: error: ..." plus indented context and hint lines.
std::string format_error(const Error& error);

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(state_); }
  const T& value() const { return std::get<0>(state_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(state_); }
  Error&& take_error() { return std::get<1>(std::move(state_)); }

 private:
  std::variant<T, Error> state_;
};

struct Ok {};
using Status = Result<Ok>;

}  // namespace pyshim
