// The tool's name for the OS layer's read-only file mapping
// (src/os/include/pyshim/mapped_file.hpp), for the includers that predate it.
#pragma once

#include "pyshim/mapped_file.hpp"

namespace pyshim::cli {
using pyshim::MappedFile;
}  // namespace pyshim::cli
