// File helpers shared by the tool-mode subcommands (never the launcher).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace pyshim::cli {

// The whole file, or "" if it cannot be read.
std::string read_text(const std::filesystem::path& path);

// Writes bytes to path unless it already is a regular file holding exactly
// that with this mode; atomically: a temporary beside it created with
// O_EXCL|O_NOFOLLOW (a stale one is removed first, never followed), every
// write checked, fsync, then rename over path. Returns whether it wrote.
// Throws std::filesystem::filesystem_error naming the file and the real
// errno when it cannot (tool_main reports it).
bool write_if_changed(const std::filesystem::path& path, std::string_view bytes,
                      mode_t mode = 0644);

// Makes path a symlink to target, atomically (a temporary link renamed over
// it); false if it already was exactly that.
bool ensure_symlink(const std::filesystem::path& path, const std::filesystem::path& target);

}  // namespace pyshim::cli
