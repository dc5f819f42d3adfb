// What a long tool command is doing: one line per phase on stderr, only when
// stderr is a terminal and -q was not given. A script or a log reading the
// output gets nothing extra; the result itself is printed either way.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "pyshim/os.hpp"

namespace pyshim::cli {

class Progress {
 public:
  explicit Progress(bool quiet) : on_(!quiet && is_terminal(STDERR_FILENO)) {}

  template <typename... Args>
  void phase(fmt::format_string<Args...> format, Args&&... args) const {
    if (!on_) return;
    std::string line = "pyshim: " + fmt::format(format, std::forward<Args>(args)...) + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
  }

 private:
  bool on_ = false;
};

}  // namespace pyshim::cli
