// Errors are values inside the core; they become a message and an exit code
// in exactly one place (report_error), at the boundary.
#pragma once

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

struct Error {
  int exit_code = kExitShimFailure;
  std::string message;               // one line: what went wrong
  std::vector<std::string> context;  // "config: file:line:col", searched places, ...
  std::string hint;                  // what to do about it
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
