// File helpers shared by the tool-mode subcommands (never the launcher).
#pragma once

#include <filesystem>
#include <string>

namespace pyshim::cli {

// The whole file, or "" if it cannot be read.
std::string read_text(const std::filesystem::path& path);

// Writes text to path unless it already holds exactly that; atomically
// (a temporary beside it, then rename). Returns whether it wrote. Throws
// std::filesystem::filesystem_error when it cannot (tool_main reports it).
bool write_if_changed(const std::filesystem::path& path, const std::string& text);

}  // namespace pyshim::cli
