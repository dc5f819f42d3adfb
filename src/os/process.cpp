#include "pyshim/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

extern char** environ;

namespace pyshim {
namespace {

double now_seconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace

Result<ProcessResult> run_process(const std::vector<std::string>& argv, bool capture, bool quiet,
                                  int timeout_seconds) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);

  int pipe_fds[2] = {-1, -1};
  if (capture && ::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return Error{kExitShimFailure, fmt::format("pipe: {}", std::strerror(errno)), {}, ""};
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (capture) posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  if (quiet) posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int err = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (capture) ::close(pipe_fds[1]);
  if (err != 0) {
    if (capture) ::close(pipe_fds[0]);
    Error e;
    e.exit_code = err == ENOENT ? kExitNotFound : kExitCannotExecute;
    e.message = fmt::format("cannot run {}: {}", argv[0], std::strerror(err));
    return e;
  }

  ProcessResult result;
  double deadline = timeout_seconds > 0 ? now_seconds() + timeout_seconds : 0;
  if (capture) {
    if (timeout_seconds > 0) ::fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
    char buffer[4096];
    for (;;) {
      ssize_t n = ::read(pipe_fds[0], buffer, sizeof buffer);
      if (n > 0) {
        result.output.append(buffer, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) break;
      if (errno == EINTR) continue;
      if (errno != EAGAIN) break;
      if (now_seconds() > deadline) {
        ::kill(pid, SIGKILL);
        result.timed_out = true;
        break;
      }
      ::usleep(10000);
    }
    ::close(pipe_fds[0]);
  }
  int status = 0;
  for (;;) {
    pid_t done = ::waitpid(pid, &status, timeout_seconds > 0 ? WNOHANG : 0);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) break;
    if (done == 0) {
      if (now_seconds() > deadline) {
        ::kill(pid, SIGKILL);
        result.timed_out = true;
      }
      ::usleep(10000);
    }
  }
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace pyshim
