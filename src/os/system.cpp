#include "pyshim/os.hpp"

#include "pyshim/elf.hpp"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

// Defined by the linker at the start of the mapped ELF header.
extern "C" const ElfW(Ehdr) __ehdr_start __attribute__((weak));  // NOLINT

namespace pyshim {

int RealFileSystem::stat(const std::string& path, FileInfo& info) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return errno;
  info = file_info_of(st);
  return 0;
}

int RealFileSystem::lstat(const std::string& path, FileInfo& info) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return errno;
  info = file_info_of(st);
  return 0;
}

int RealFileSystem::open_inherited(const std::string& path, int& fd) {
  fd = ::open(path.c_str(), O_RDONLY);
  return fd < 0 ? errno : 0;
}

int RealFileSystem::read_file(const std::string& path, std::string& out, FileInfo* opened) {
  // Non-blocking, so a FIFO planted as the config cannot hang the launch;
  // then only a regular file of bounded size is read (/dev/zero would
  // otherwise be read until memory runs out).
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return errno;
  struct stat st;
  int err = 0;
  if (::fstat(fd, &st) != 0) {
    err = errno;
  } else if (!S_ISREG(st.st_mode)) {
    err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
  } else if (static_cast<std::uint64_t>(st.st_size) > kMaxConfigSize) {
    err = EFBIG;
  }
  out.clear();
  if (err == 0 && opened != nullptr) *opened = file_info_of(st);
  if (err == 0) {
    out.resize(static_cast<std::size_t>(st.st_size));
    std::size_t done = 0;
    while (done < out.size()) {
      ssize_t n = ::read(fd, out.data() + done, out.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        err = errno;
        break;
      }
      if (n == 0) break;  // shrank under us: take what is there
      done += static_cast<std::size_t>(n);
    }
    out.resize(done);
  }
  if (!keep_open_) ::close(fd);
  return err;
}

int RealFileSystem::read_head(const std::string& path, std::size_t max, std::string& out) {
  // Regular files only, opened without waiting: a FIFO named by a #! line
  // or a config must not hang a launch or doctor.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return errno;
  struct stat st;
  int bad = ::fstat(fd, &st) != 0  ? errno
            : !S_ISREG(st.st_mode) ? (S_ISDIR(st.st_mode) ? EISDIR : EINVAL)
                                   : 0;
  if (bad != 0) {
    ::close(fd);
    out.clear();
    return bad;
  }
  out.resize(max);
  ssize_t n;
  do {
    n = ::pread(fd, out.data(), max, 0);
  } while (n < 0 && errno == EINTR);
  int err = n < 0 ? errno : 0;
  out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  ::close(fd);
  return err;
}

int RealFileSystem::readlink(const std::string& path, std::string& target) {
  char buffer[PATH_MAX];
  ssize_t n = ::readlink(path.c_str(), buffer, sizeof buffer);
  if (n < 0) return errno;
  if (static_cast<std::size_t>(n) == sizeof buffer) return ENAMETOOLONG;
  target.assign(buffer, static_cast<std::size_t>(n));
  return 0;
}

namespace {

std::string absolute(const char* path) {
  if (path[0] == '/') return path;
  char cwd[PATH_MAX];
  if (::getcwd(cwd, sizeof cwd) == nullptr) return {};
  std::string out(cwd);
  if (out != "/") out.push_back('/');
  while (path[0] == '.' && path[1] == '/') path += 2;
  out.append(path);
  return out;
}

}  // namespace

std::optional<std::string> search_path(std::string_view name, const char* path_value) {
  std::string_view dirs = path_value != nullptr ? path_value : "/bin:/usr/bin";
  while (true) {
    std::size_t colon = dirs.find(':');
    std::string_view dir = dirs.substr(0, colon);
    std::string candidate = dir.empty() ? std::string(".") : std::string(dir);
    candidate.append("/").append(name);
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return absolute(candidate.c_str());
    }
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return std::nullopt;
}

std::optional<std::string> invoked_path(int argc, const char* const* argv,
                                        const char* const* envp) {
  const char* execfn = reinterpret_cast<const char*>(::getauxval(AT_EXECFN));
  if (invoked_source(execfn, argc, argv) == InvokedSource::kExecFn) return absolute(execfn);
  const char* argv0 = argc > 0 ? argv[0] : nullptr;
  if (argv0 == nullptr || argv0[0] == '\0') return std::nullopt;
  if (std::strchr(argv0, '/') != nullptr) return absolute(argv0);
  const char* path = nullptr;
  for (const char* const* e = envp; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
  }
  return search_path(argv0, path);
}

std::string self_exe() {
  char buffer[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buffer, sizeof buffer);
  if (n > 0 && static_cast<std::size_t>(n) < sizeof buffer && buffer[0] == '/') {
    return std::string(buffer, static_cast<std::size_t>(n));
  }
  // The path the kernel exec'd, if absolute: its realpath is this binary
  // (realpath resolves links itself, without /proc). The paths derived from
  // it pass the trust rule like any other (find_restore_library). A relative
  // one would make them relative to the current folder: none then.
  const char* execfn = reinterpret_cast<const char*>(::getauxval(AT_EXECFN));
  if (execfn == nullptr || execfn[0] != '/') return {};
  return real_path(execfn);
}

std::uint64_t self_image_size() {
  return rules::image_size(&__ehdr_start);
}

bool is_secure() {
  return ::getauxval(AT_SECURE) != 0;
}

std::uint32_t effective_uid() {
  return static_cast<std::uint32_t>(::getauxval(AT_EUID));
}

}  // namespace pyshim

namespace pyshim {

std::string real_path(const std::string& path) {
  char buffer[PATH_MAX];
  if (::realpath(path.c_str(), buffer) == nullptr) return {};
  return buffer;
}

std::string absolute_path(const std::string& path) {
  return absolute(path.c_str());
}

Result<LaunchRequest> request_for_launcher(const std::string& launcher, EnvView env) {
  LaunchRequest request;
  request.invoked_path = absolute_path(launcher);
  request.env = env;
  request.euid = effective_uid();
  request.self_exe = real_path(launcher);
  if (request.self_exe.empty()) {
    Error e;
    e.kind = ErrorKind::kUsage;
    e.message = fmt::format("launcher not found: {}", launcher);
    e.hint = "give the path of a venv's bin/python or a standalone launcher";
    // A shim venv's bin/python3.X that links to its base launcher (CPython
    // 3.11+) dangles when .pyshim/base/ was removed: say what puts it back.
    struct stat link;
    std::string venv = request.invoked_path.substr(0, request.invoked_path.rfind('/'));
    venv = venv.substr(0, venv.rfind('/'));
    if (::lstat(launcher.c_str(), &link) == 0 && S_ISLNK(link.st_mode)) {
      e.message += " (a link to a missing file)";
      if (!venv.empty() && ::lstat((venv + "/.pyshim/manifest.toml").c_str(), &link) == 0) {
        e.hint = fmt::format("its shim venv lost a launcher: run `pyshim install {}`", venv);
      }
    }
    return e;
  }
  struct stat st;
  if (::stat(request.self_exe.c_str(), &st) == 0) {
    request.self_size = static_cast<std::uint64_t>(st.st_size);
  }
  std::string area = read_stamp_area(request.self_exe);
  if (!area.empty()) {
    auto stamp = decode_stamp(area);
    if (stamp) {
      request.stamp = std::move(*stamp);
    } else {
      request.stamp_error = stamp.error();
    }
  }
  return request;
}

std::optional<std::string> read_regular(int dir_fd, const std::string& path, bool follow_links,
                                        std::size_t max) {
  // Non-blocking, and only a regular file: a FIFO or a device planted under
  // a config's name is neither waited on nor read forever.
  int flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | (follow_links ? 0 : O_NOFOLLOW);
  int fd = ::openat(dir_fd, path.c_str(), flags);
  if (fd < 0) return std::nullopt;
  std::optional<std::string> out;
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<std::size_t>(st.st_size) <= max) {
    std::string text(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t done = 0;
    while (done < text.size()) {
      ssize_t n = ::read(fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    text.resize(done);
    out = std::move(text);
  }
  ::close(fd);
  return out;
}

std::string read_stamp_area(const std::string& launcher) {
  // Only a regular file of a launcher's size: a FIFO, a device or a huge
  // file named as the launcher is not waited on or read.
  constexpr std::size_t kMaxLauncherSize = std::size_t{64} << 20;
  std::string image = read_regular(AT_FDCWD, launcher, true, kMaxLauncherSize).value_or("");
  auto range = find_section(image, kStampSection);
  if (!range) return {};
  return image.substr(range->offset, range->size);
}

}  // namespace pyshim
