#include "pyshim/process.hpp"

#include "pyshim/os.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <optional>

#include <fmt/format.h>

namespace pyshim {
namespace {

struct Pipe {
  int read = -1;
  int write = -1;
};

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

std::string ProcessResult::describe() const {
  if (WIFEXITED(wait_status)) return fmt::format("exit status {}", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    return fmt::format("killed by signal {} ({})", WTERMSIG(wait_status),
                       strsignal(WTERMSIG(wait_status)));
  }
  return fmt::format("wait status {}", wait_status);
}

Result<ProcessResult> run_process(const std::vector<std::string>& argv, const RunOptions& options) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);

  // stdout, stderr, and the pipe on which the child reports a failed exec
  // (close-on-exec: a successful exec closes it with nothing written). fork
  // + exec rather than posix_spawn: the child may have to give up root first
  // (options.uid); the CLI has no threads, so fork is safe.
  Pipe pipes[3];
  bool wanted[3] = {options.capture_output, options.capture_errors, true};
  for (int i = 0; i < 3; ++i) {
    int fds[2];
    if (!wanted[i]) continue;
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      int err = errno;
      for (Pipe& p : pipes) {
        close_fd(p.read);
        close_fd(p.write);
      }
      return Error{ErrorKind::kShimFailure,
                   fmt::format("cannot create a pipe: {}", std::strerror(err)),
                   {},
                   ""};
    }
    pipes[i] = {fds[0], fds[1]};
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    auto give_up = [&] {
      int err = errno;
      (void)!::write(pipes[2].write, &err, sizeof err);
      ::_exit(127);
    };
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    // Run as someone else: in a session of its own, so it has no
    // controlling terminal (no /dev/tty, no TIOCSTI into root's shell).
    if (options.uid >= 0 ? ::setsid() < 0 : options.own_group && ::setpgid(0, 0) != 0) give_up();
    // Nothing of this process's but 0-2 reaches the program (the pipes and
    // our own files are close-on-exec already; this is for anything else).
    if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = 3; fd < 4096; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    if (options.no_input) {
      int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0 || ::dup2(fd, 0) < 0) give_up();
    }
    if (wanted[0] && ::dup2(pipes[0].write, 1) < 0) give_up();
    if (wanted[1] && ::dup2(pipes[1].write, 2) < 0) give_up();
    if (!wanted[1] && options.quiet) {
      int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::dup2(fd, 2) < 0) give_up();
    }
    if (options.uid >= 0) {
      auto gid = static_cast<gid_t>(options.gid);
      auto uid = static_cast<uid_t>(options.uid);
      if (::setgroups(0, nullptr) != 0 || ::setresgid(gid, gid, gid) != 0 ||
          ::setresuid(uid, uid, uid) != 0) {
        give_up();
      }
    }
    ::execvp(args[0], args.data());
    give_up();
  }
  int err = pid < 0 ? errno : 0;
  close_fd(pipes[2].write);
  if (pid > 0) {
    ssize_t n;
    do {
      n = ::read(pipes[2].read, &err, sizeof err);
    } while (n < 0 && errno == EINTR);
    if (n == sizeof err) {
      int status = 0;
      ::waitpid(pid, &status, 0);
    } else {
      err = 0;  // the exec happened
    }
  }
  close_fd(pipes[2].read);
  for (Pipe& p : pipes) close_fd(p.write);
  if (err != 0) {
    for (Pipe& p : pipes) close_fd(p.read);
    Error e;
    e.kind = err == ENOENT ? ErrorKind::kNotFound : ErrorKind::kCannotExecute;
    e.message = fmt::format("cannot run {}: {}", argv[0], std::strerror(err));
    if (options.uid >= 0) {
      e.message =
          fmt::format("cannot run {} as uid {}: {}", argv[0], options.uid, std::strerror(err));
    }
    return e;
  }

  using Clock = std::chrono::steady_clock;
  auto deadline = options.timeout_seconds > 0
                      ? Clock::now() + std::chrono::seconds(options.timeout_seconds)
                      : Clock::time_point::max();
  // After the child exits, something it left behind may still hold the
  // pipes: read what is there, briefly, then stop.
  auto drain_until = Clock::time_point::max();
  ProcessResult result;
  pollfd fds[2] = {{pipes[0].read, POLLIN, 0}, {pipes[1].read, POLLIN, 0}};
  std::string* sinks[2] = {&result.output, &result.errors};
  bool exited = false;
  int wait_error = 0;
  for (;;) {
    bool open = fds[0].fd >= 0 || fds[1].fd >= 0;
    if (!exited) {
      // Nothing to read and no deadline: block in waitpid; else poll it.
      bool block = !open && options.timeout_seconds <= 0;
      pid_t done = ::waitpid(pid, &result.wait_status, block ? 0 : WNOHANG);
      if (done == pid) {
        exited = true;
        drain_until = Clock::now() + std::chrono::seconds(2);
      } else if (done < 0 && errno != EINTR) {
        wait_error = errno;
        break;
      }
    }
    auto now = Clock::now();
    if (exited && (!open || now >= drain_until)) break;
    if (!exited && now >= deadline) {
      // The child is not reaped yet, so its pid (and group id) is still ours.
      ::kill(options.own_group || options.uid >= 0 ? -pid : pid, SIGKILL);
      ::waitpid(pid, &result.wait_status, 0);
      result.timed_out = true;
      break;
    }
    if (!open) {
      ::poll(nullptr, 0, 20);
      continue;
    }
    // A bounded wait, so that the child's exit is noticed even while
    // something it started keeps the pipes open.
    if (::poll(fds, 2, 50) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[8192];
      ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close_fd(fds[i].fd);
      }
    }
  }
  if (wait_error != 0) {
    for (pollfd& fd : fds) close_fd(fd.fd);
    return Error{ErrorKind::kShimFailure,
                 fmt::format("cannot wait for {}: {}", argv[0], std::strerror(wait_error)),
                 {},
                 ""};
  }
  for (pollfd& fd : fds) close_fd(fd.fd);
  int status = result.wait_status;
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

namespace {

// As the kernel's limit on links in one lookup (MAXSYMLINKS).
constexpr int kMaxLinks = 40;
// A venv with a big site-packages has tens of thousands of files; past this
// the walk gives up and the path counts as not root's.
constexpr std::size_t kMaxSteps = 500000;
constexpr int kMaxDepth = 64;

class Walker {
 public:
  explicit Walker(LoadedPath& out) : out_(out) {}

  // Walks to path (absolute) component by component, recording each real
  // step; a link's target is spliced in where the link stood. Returns the
  // real path reached, or nullopt when the walk ended early (a missing
  // component, recorded as such; or a failure, which marks it incomplete).
  std::optional<std::string> walk(const std::string& path, bool member, struct stat& last) {
    std::deque<std::string> todo = components(path);
    int links = 0;
    std::string current = "/";
    if (!lstat_step("/", member && todo.empty(), last)) return std::nullopt;
    while (!todo.empty()) {
      std::string name = std::move(todo.front());
      todo.pop_front();
      if (name == ".") continue;
      if (name == "..") {  // current is real (no links in it): ".." is lexical
        std::size_t slash = current.rfind('/');
        current.resize(slash == 0 ? 1 : slash);
        continue;
      }
      std::string next = join(current, name);
      struct stat st;
      if (::lstat(next.c_str(), &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
          add({next, false, member && todo.empty(), 0, 0});
        } else {
          out_.complete = false;
        }
        return std::nullopt;
      }
      if (S_ISLNK(st.st_mode)) {
        char buffer[PATH_MAX];
        ssize_t n = ::readlink(next.c_str(), buffer, sizeof buffer);
        if (++links > kMaxLinks || n <= 0 || static_cast<std::size_t>(n) == sizeof buffer) {
          out_.complete = false;
          return std::nullopt;
        }
        std::string target(buffer, static_cast<std::size_t>(n));
        if (target.front() == '/') current.resize(1);  // back to "/"
        std::deque<std::string> spliced = components(target);
        todo.insert(todo.begin(), spliced.begin(), spliced.end());
        continue;
      }
      if (!add({next, true, member && todo.empty(), st.st_uid, st.st_mode})) return std::nullopt;
      current = std::move(next);
      last = st;
    }
    return current;
  }

  // Every entry below the folder real (a real path), as members; links
  // among them followed to what they name; folders entered when tree.
  void entries(const std::string& real, bool tree, int depth) {
    if (depth > kMaxDepth) {
      out_.complete = false;
      return;
    }
    DIR* dir = ::opendir(real.c_str());
    if (dir == nullptr) {
      out_.complete = false;
      return;
    }
    std::vector<std::string> names;
    while (dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    ::closedir(dir);
    for (const std::string& name : names) {
      if (!out_.complete) return;
      std::string path = join(real, name);
      struct stat st;
      if (::lstat(path.c_str(), &st) != 0) continue;  // gone meanwhile: nothing to load
      if (S_ISLNK(st.st_mode)) {
        struct stat target;
        walk(path, true, target);
        continue;
      }
      if (!add({path, true, true, st.st_uid, st.st_mode})) return;
      if (tree && S_ISDIR(st.st_mode)) entries(path, true, depth + 1);
    }
  }

 private:
  static std::deque<std::string> components(const std::string& path) {
    std::deque<std::string> out;
    std::size_t start = 0;
    while (start <= path.size()) {
      std::size_t slash = path.find('/', start);
      if (slash == std::string::npos) slash = path.size();
      if (slash > start) out.push_back(path.substr(start, slash - start));
      start = slash + 1;
    }
    return out;
  }

  bool lstat_step(const std::string& path, bool member, struct stat& st) {
    if (::lstat(path.c_str(), &st) != 0) {
      out_.complete = false;
      return false;
    }
    return add({path, true, member, st.st_uid, st.st_mode});
  }

  bool add(PathStep step) {
    if (out_.steps.size() >= kMaxSteps) {
      out_.complete = false;
      return false;
    }
    out_.steps.push_back(std::move(step));
    return true;
  }

  LoadedPath& out_;
};

}  // namespace

LoadedPath examine_path(std::string what, const std::string& path, LoadScope scope) {
  LoadedPath out;
  out.what = std::move(what);
  out.path = path;
  out.scope = scope;
  Walker walker(out);
  struct stat last;
  std::optional<std::string> real = walker.walk(absolute_path(path), true, last);
  if (real && scope != LoadScope::kFile && S_ISDIR(last.st_mode)) {
    walker.entries(*real, scope == LoadScope::kTree, 0);
  }
  return out;
}

}  // namespace pyshim
