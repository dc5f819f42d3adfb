// Launcher mode: the general path, for every launch the hot path (entry.cpp,
// hot_path.hpp) does not take: no stamp, an edited config, PYSHIM_CONFIG,
// PYSHIM_LOG, any failed check (its error message is made here). It runs
// after glibc's start-up, from .preinit_array (main.cpp), logs only when
// PYSHIM_LOG asks and makes as few syscalls as it can (see tests/bench).
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "launcher.hpp"
#include "pyshim/launch.hpp"
#include "pyshim/os.hpp"
#include "pyshim/stamp.hpp"

namespace pyshim {
namespace {

int fail(const Error& error) {
  std::string text = format_error(error);
  std::fwrite(text.data(), 1, text.size(), stderr);
  return error.exit_code();
}

// PYSHIM_LOG: "pyshim: debug: ..." lines on stderr for "debug", "trace" or
// any value that is not a level name ("1", "yes"); nothing for "off" or a
// quieter level (the restore library follows the same rule). A few lines
// written once need no logging library: spdlog would be a fifth of the
// launcher's size.
bool debug_logging(const char* level) {
  if (level == nullptr || level[0] == '\0') return false;
  for (const char* quiet : {"off", "info", "warn", "warning", "err", "error", "critical"}) {
    if (std::strcmp(level, quiet) == 0) return false;
  }
  return true;
}

class DebugLog {
 public:
  template <class... Args>
  void debug(fmt::format_string<Args...> format, Args&&... args) {
    std::string line = "pyshim: debug: ";
    fmt::format_to(std::back_inserter(line), format, std::forward<Args>(args)...);
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
};

void log_launch(DebugLog& log, const LaunchRequest& request, const Launch& launch) {
  log.debug("invoked as {}", request.invoked_path);
  log.debug("real binary {}", request.self_exe);
  log.debug("config {}{}", launch.config.file,
            launch.source == ConfigSource::kStamp ? " (stamped in the launcher: not parsed)" : "");
  log.debug("interpreter {}", launch.plan.interpreter);
  log.debug("restore library {}", launch.restore_library);
  for (const char* const* entry = launch.plan.env.data(); *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    std::string_view name = env_name(text);
    std::string_view before = env_get(request.env, name);
    if (before.data() == nullptr || before != text.substr(name.size() + 1)) {
      log.debug("env {}", text);
    }
  }
  log.debug("exec {} with argv[0]={}", launch.plan.interpreter, launch.plan.argv0);
}

}  // namespace

int launcher_main(int argc, char** argv, char** envp) {
  std::optional<DebugLog> log;
  if (debug_logging(std::getenv(kLogEnvVar.data()))) log.emplace();

  std::size_t env_count = 0;
  while (envp[env_count] != nullptr) ++env_count;

  LaunchRequest request;
  auto invoked = invoked_path(argc, argv, envp);
  if (!invoked || invoked->empty()) {
    Error e;
    e.message = "cannot determine the path this launcher was started by";
    e.hint = "start it by an absolute or relative path";
    return fail(e);
  }
  request.invoked_path = std::move(*invoked);
  request.env = EnvView(envp, env_count);
  request.secure = is_secure();
  request.euid = effective_uid();
  request.self_exe = self_exe();
  request.self_size = self_image_size();
  auto stamp = decode_stamp(own_stamp_area());
  if (stamp) {
    request.stamp = std::move(*stamp);
  } else {
    request.stamp_error = stamp.take_error();
  }

  RealFileSystem fs(/*keep_open=*/true);
  auto launch = prepare_launch(fs, request);
  if (!launch) {
    if (log) log->debug("no launch: {}", launch.error().message);
    return fail(launch.error());
  }
  if (log) log_launch(*log, request, *launch);

  // argv is passed through untouched except argv[0]; an empty argv (possible
  // with execve) becomes just P.
  char* fallback_argv[] = {nullptr, nullptr};
  char** exec_argv = argc > 0 ? argv : fallback_argv;
  exec_argv[0] = launch->plan.argv0.data();
  ::execve(launch->plan.interpreter.c_str(), exec_argv,
           const_cast<char* const*>(launch->plan.env.data()));

  int err = errno;
  Error e;
  e.kind = err == ENOENT || err == ENOTDIR ? ErrorKind::kNotFound : ErrorKind::kCannotExecute;
  e.message = fmt::format("cannot execute interpreter {}: {}", launch->plan.interpreter,
                          std::strerror(err));
  e.context.push_back("config: " + where(launch->config, launch->config.interpreter.origin));
  e.hint = fmt::format("run `pyshim doctor {}`", request.invoked_path);
  return fail(e);
}

}  // namespace pyshim
