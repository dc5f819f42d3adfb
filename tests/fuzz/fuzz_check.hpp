// What both fuzz targets do when an invariant fails: say which, with the
// offending bytes, and trap so libFuzzer keeps the input as a crash.
#pragma once

#include <cstdio>
#include <string_view>

namespace fuzz {

[[noreturn]] inline void fail(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "\n*** pyshim fuzz invariant violated: %s", what);
  if (!detail.empty()) {
    std::fprintf(stderr, ": '%.*s'", static_cast<int>(detail.size()), detail.data());
  }
  std::fprintf(stderr, "\n");
  std::fflush(stderr);
  __builtin_trap();
}

inline void check(bool ok, const char* what, std::string_view detail = {}) {
  if (!ok) fail(what, detail);
}

}  // namespace fuzz
