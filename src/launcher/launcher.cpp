// Launcher mode: the hot path. Everything here runs before execve() in every
// interpreter start, so it logs only when PYSHIM_LOG asks and makes as few
// syscalls as it can (count them with `strace -c`; see tests/bench).
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "launcher.hpp"
#include "pyshim/launch.hpp"
#include "pyshim/os.hpp"
#include "pyshim/stamp.hpp"

namespace pyshim {
namespace {

int fail(const Error& error) {
  std::string text = format_error(error);
  std::fwrite(text.data(), 1, text.size(), stderr);
  return error.exit_code;
}

std::shared_ptr<spdlog::logger> make_logger(const char* level_name) {
  auto logger =
      std::make_shared<spdlog::logger>("pyshim", std::make_shared<spdlog::sinks::stderr_sink_st>());
  logger->set_pattern("pyshim: %l: %v");
  spdlog::level::level_enum level = spdlog::level::from_str(level_name);
  // Any value that is not a level name ("1", "yes") means debug.
  logger->set_level(level == spdlog::level::off && std::strcmp(level_name, "off") != 0
                        ? spdlog::level::debug
                        : level);
  return logger;
}

void log_launch(spdlog::logger& log, const LaunchRequest& request, const Launch& launch) {
  log.debug("invoked as {}", request.invoked_path);
  log.debug("real binary {}", request.self_exe);
  log.debug("config {}{}", launch.config.file,
            launch.source == ConfigSource::kStamp ? " (stamped in the launcher: not parsed)" : "");
  log.debug("interpreter {}", launch.plan.interpreter);
  log.debug("restore library {}", launch.restore_library);
  for (const char* const* entry = launch.plan.env.data(); *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    std::string_view name = text.substr(0, text.find('='));
    std::string_view before = env_get(request.env, name);
    if (before.data() == nullptr || before != text.substr(name.size() + 1)) {
      log.debug("env {}", text);
    }
  }
  log.debug("exec {} with argv[0]={}", launch.plan.interpreter, launch.plan.argv0);
}

}  // namespace

int launcher_main(int argc, char** argv, char** envp) {
  const char* level = std::getenv(kLogEnvVar.data());
  std::shared_ptr<spdlog::logger> log;
  if (level != nullptr && level[0] != '\0') log = make_logger(level);

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
  e.exit_code = err == ENOENT || err == ENOTDIR ? kExitNotFound : kExitCannotExecute;
  e.message = fmt::format("cannot execute interpreter {}: {}", launch->plan.interpreter,
                          std::strerror(err));
  e.context.push_back("config: " + where(launch->config, launch->config.interpreter.origin));
  e.hint = fmt::format("run `pyshim doctor {}`", request.invoked_path);
  return fail(e);
}

}  // namespace pyshim
