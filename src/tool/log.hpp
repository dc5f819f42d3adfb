// Tool-mode logging (spdlog, header-only: the pyshim CLI is a static binary;
// the launcher never includes this, see src/launcher/launcher.cpp). Lines go
// to stderr as "pyshim: <level>: <text>"; every path or name in them has been
// through printable() first. The level: -v/--verbose gives debug; otherwise
// PYSHIM_LOG, read with the launcher's words (debug, trace, info, warn,
// error, off; any other non-empty value means debug, as for the launcher);
// otherwise warn, which prints nothing on a run that succeeds.
#pragma once

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <string_view>

namespace pyshim::cli {

// The tool's logger, made on first use at level warn.
spdlog::logger& tool_log();

// Sets the level from -v and PYSHIM_LOG (the value, or nullptr when unset).
void init_tool_log(bool verbose, const char* pyshim_log);

// The level PYSHIM_LOG names, as the launcher reads it.
spdlog::level::level_enum log_level_of(std::string_view word);

}  // namespace pyshim::cli
