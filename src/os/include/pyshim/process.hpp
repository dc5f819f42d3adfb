// Running helper programs from tool mode (venv creation, ldconfig, gcc, the
// venv's interpreter, doctor's round trip): the one place that spawns and
// waits. Never used by the launcher.
#pragma once

#include <string>
#include <vector>

#include "pyshim/error.hpp"
#include "pyshim/root_trust.hpp"

namespace pyshim {

struct RunOptions {
  bool capture_output = false;  // stdout into ProcessResult::output (else inherited)
  bool capture_errors = false;  // stderr into ProcessResult::errors
  bool quiet = false;           // stderr to /dev/null when not captured
  bool no_input = false;        // stdin from /dev/null (else inherited)
  // In a process group of its own, so that a timeout kills what it started
  // too (doctor's probe and its multiprocessing worker). Off by default: a
  // child that shares the terminal's group gets the user's Ctrl-C.
  bool own_group = false;
  int timeout_seconds = 0;  // <= 0: wait for it however long it takes
  // Run as this user and group (no supplementary groups), in a session of
  // its own without a controlling terminal: root asks a venv's interpreter
  // as an unprivileged user, never as root. -1: as this process.
  int uid = -1;
  int gid = -1;
};

struct ProcessResult {
  int status = -1;         // exit status, or 128 + signal
  int wait_status = 0;     // as waitpid gave it
  std::string output;      // stdout, when captured
  std::string errors;      // stderr, when captured
  bool timed_out = false;  // killed (SIGKILL) at the timeout
  // "exit status 1", "killed by signal 9 (Killed)".
  std::string describe() const;
};

// Runs argv (a name without '/' is searched on PATH) with this process's
// environment. An error only when it cannot be started (127 not found, 126
// otherwise); what it did is in the result.
Result<ProcessResult> run_process(const std::vector<std::string>& argv,
                                  const RunOptions& options = {});

// What decide_root_trust needs about one path a program will load from: the
// walk to it as the kernel makes it (every folder from "/", links followed
// to what they name, lstat at each step, up to the first missing
// component), then per scope the folder's entries or the whole tree below
// it (links in them followed the same way). Relative paths are taken
// against the cwd. Reads only metadata; never opens a file.
LoadedPath examine_path(std::string what, const std::string& path, LoadScope scope);

}  // namespace pyshim
