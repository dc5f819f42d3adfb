// Tool-mode logging (log.hpp), and the OS layer's Dir log lines routed to it.
#include "log.hpp"

#include <memory>

#include "pyshim/dir.hpp"

namespace pyshim::cli {

spdlog::level::level_enum log_level_of(std::string_view word) {
  if (word.empty()) return spdlog::level::warn;
  if (word == "warn" || word == "warning") return spdlog::level::warn;
  if (word == "err") return spdlog::level::err;
  for (auto level :
       {spdlog::level::trace, spdlog::level::debug, spdlog::level::info, spdlog::level::warn,
        spdlog::level::err, spdlog::level::critical, spdlog::level::off}) {
    if (spdlog::level::to_string_view(level) == word) return level;
  }
  return spdlog::level::debug;  // "1", "yes": as the launcher, debug
}

spdlog::logger& tool_log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto made = std::make_shared<spdlog::logger>("pyshim",
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
    made->set_pattern("pyshim: %l: %v");
    made->set_level(spdlog::level::warn);
    return made;
  }();
  return *logger;
}

void init_tool_log(bool verbose, const char* pyshim_log) {
  spdlog::level::level_enum level =
      pyshim_log != nullptr ? log_level_of(pyshim_log) : spdlog::level::warn;
  if (verbose && level > spdlog::level::debug) level = spdlog::level::debug;
  tool_log().set_level(level);
  // Each venv change Dir applies, at debug: "plan: ..." before, "...: ok"
  // after (escaped there). Not formatted at all below debug.
  DirLogSink sink = [](std::string_view line) { tool_log().debug("{}", line); };
  set_dir_log_sink(level <= spdlog::level::debug ? sink : nullptr);
}

}  // namespace pyshim::cli
