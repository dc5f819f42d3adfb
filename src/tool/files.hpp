// File helpers shared by the tool-mode subcommands (never the launcher).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace pyshim::cli {

// The whole file, or "" if it cannot be read or is not a regular file (a
// FIFO or device is not waited on). follow_links = false: a link there is
// not followed ("" too).
std::string read_text(const std::filesystem::path& path, bool follow_links = true);

// Everything that changes a venv goes through venv_dir.hpp (directory fds,
// no links followed, atomic and durable writes).

}  // namespace pyshim::cli
