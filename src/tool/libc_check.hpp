// Whether the interpreter's C library can load what pyshim puts into it (the
// restore library and the preloads), decided from the files alone: the
// interpreter's ELF names its loader (PT_INTERP); glibc keeps libc.so.6 beside
// it; each library's version needs (.gnu.version_r) must be among the
// version definitions (.gnu.version_d) of the glibc library it names. No code
// of the interpreter runs. install refuses and doctor fails on a problem, so a
// user never meets the loader's "version `GLIBC_2.34' not found" at launch.
#pragma once

#include <string>
#include <vector>

#include "pyshim/error.hpp"
#include "pyshim/launch.hpp"

namespace pyshim::cli {

// The oldest glibc pyshim serves (the manylinux2014 baseline).
inline constexpr const char* kGlibcFloor = "GLIBC_2.17";

struct LibcReport {
  std::string summary;          // "glibc 2.36 (/lib/x86_64-linux-gnu/libc.so.6)"
  std::vector<Error> problems;  // each names what is missing; empty: all loads
};

// interpreter: the real Python binary; libraries: the restore library and the
// preloads (absolute paths). A script or a static interpreter gives an empty
// report (doctor says why elsewhere).
LibcReport check_libc(FileSystem& fs, const std::string& interpreter,
                      const std::vector<std::string>& libraries);

}  // namespace pyshim::cli
