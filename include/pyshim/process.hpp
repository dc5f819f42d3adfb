// Running helper programs from tool mode (venv creation, ldconfig, gcc,
// doctor's round trip). Never used by the launcher.
#pragma once

#include <string>
#include <vector>

#include "pyshim/error.hpp"

namespace pyshim {

struct ProcessResult {
  int status = -1;     // exit status, or 128 + signal
  std::string output;  // stdout, when captured
  bool timed_out = false;
};

// Runs argv (PATH-searched) with this process's environment. stdout is
// captured when capture is set, else inherited; stderr is inherited unless
// quiet. timeout_seconds <= 0 waits forever.
Result<ProcessResult> run_process(const std::vector<std::string>& argv, bool capture,
                                  bool quiet = false, int timeout_seconds = 0);

}  // namespace pyshim
