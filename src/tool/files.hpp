// File helpers shared by the tool-mode subcommands (never the launcher).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace pyshim::cli {

// A regular file's bytes, opened relative to dir_fd (AT_FDCWD: the cwd)
// without blocking, so a FIFO or device is refused, not waited on; nullopt
// when it cannot be opened, is not a regular file or is larger than max.
// follow_links = false: a link there is refused too.
std::optional<std::string> read_regular(int dir_fd, const std::string& path, bool follow_links,
                                        std::size_t max);

// The whole file, or "" if it cannot be read or is not a regular file (a
// FIFO or device is not waited on). follow_links = false: a link there is
// not followed ("" too).
std::string read_text(const std::filesystem::path& path, bool follow_links = true);

// Everything that changes a venv goes through venv_dir.hpp (directory fds,
// no links followed, atomic and durable writes).

}  // namespace pyshim::cli
