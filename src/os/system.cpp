#include "pyshim/os.hpp"

#include "pyshim/elf.hpp"
#include "pyshim/mapped_file.hpp"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
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

namespace {

// The reader behind read_regular and RealFileSystem: 0 or an errno value
// (EISDIR for a folder, EINVAL for any other non-regular file, EFBIG for a
// whole file larger than max); a read error leaves what was read in out.
// opened: what fstat said of the file read. keep_open: the launcher execs
// right after (the fd is O_CLOEXEC), so close() would be a wasted syscall.
int read_regular_file(int dir_fd, const char* path, bool follow_links, std::size_t max,
                      ReadSize size, std::string& out, struct stat* opened = nullptr,
                      bool keep_open = false) {
  out.clear();
  int flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | (follow_links ? 0 : O_NOFOLLOW);
  int fd = ::openat(dir_fd, path, flags);
  if (fd < 0) return errno;
  struct stat st;
  int err = 0;
  if (::fstat(fd, &st) != 0) {
    err = errno;
  } else if (!S_ISREG(st.st_mode)) {
    err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
  } else if (size == ReadSize::kWhole && static_cast<std::uint64_t>(st.st_size) > max) {
    err = EFBIG;
  }
  if (err == 0) {
    if (opened != nullptr) *opened = st;
    // A head is read up to the size fstat gave (one read), unless that is
    // 0 (a file that does not know its size): then up to max or the end.
    auto file_size = static_cast<std::size_t>(st.st_size);
    std::size_t want = size == ReadSize::kWhole ? file_size : max;
    out.resize(want);
    std::size_t done = 0;
    while (done < want) {
      ssize_t n = ::read(fd, out.data() + done, want - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        err = errno;
        break;
      }
      if (n == 0) break;  // shrank under us: take what is there
      done += static_cast<std::size_t>(n);
      if (size == ReadSize::kHead && file_size != 0 && done >= file_size) break;
    }
    out.resize(done);
  }
  if (!keep_open) ::close(fd);
  return err;
}

}  // namespace

int RealFileSystem::read_file(const std::string& path, std::string& out, FileInfo* opened) {
  // Non-blocking, so a FIFO planted as the config cannot hang the launch;
  // then only a regular file of bounded size is read (/dev/zero would
  // otherwise be read until memory runs out).
  struct stat st;
  int err = read_regular_file(AT_FDCWD, path.c_str(), true, kMaxConfigSize, ReadSize::kWhole, out,
                              &st, keep_open_);
  if (err == 0 && opened != nullptr) *opened = file_info_of(st);
  return err;
}

int RealFileSystem::read_head(const std::string& path, std::size_t max, std::string& out) {
  // Regular files only, opened without waiting: a FIFO named by a #! line
  // or a config must not hang a launch or doctor.
  return read_regular_file(AT_FDCWD, path.c_str(), true, max, ReadSize::kHead, out);
}

int RealFileSystem::readlink(const std::string& path, std::string& target) {
  char buffer[PATH_MAX];
  ssize_t n = ::readlink(path.c_str(), buffer, sizeof buffer);
  if (n < 0) return errno;
  if (static_cast<std::size_t>(n) == sizeof buffer) return ENAMETOOLONG;
  target.assign(buffer, static_cast<std::size_t>(n));
  return 0;
}

std::string current_folder() {
  char cwd[PATH_MAX];
  if (::getcwd(cwd, sizeof cwd) == nullptr) return {};
  return cwd;
}

std::optional<std::string> read_link(const std::string& path) {
  std::string target;
  if (RealFileSystem().readlink(path, target) != 0) return std::nullopt;
  return target;
}

namespace {

std::string absolute(const char* path) {
  if (path[0] == '/') return path;
  std::string out = current_folder();
  if (out.empty()) return {};
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
    if (is_executable_file(candidate)) return absolute(candidate.c_str());
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

std::optional<FileInfo> stat_path(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return file_info_of(st);
}

std::optional<FileInfo> lstat_path(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
  return file_info_of(st);
}

bool may_execute(const std::string& path) {
  return ::access(path.c_str(), X_OK) == 0;
}

bool is_executable_file(const std::string& path) {
  auto info = stat_path(path);
  return info && S_ISREG(info->mode) && may_execute(path);
}

bool is_terminal(int fd) {
  return ::isatty(fd) == 1;
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
  if (auto info = stat_path(request.self_exe)) request.self_size = info->size;
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
                                        std::size_t max, ReadSize size) {
  std::string text;
  if (read_regular_file(dir_fd, path.c_str(), follow_links, max, size, text) != 0) {
    return std::nullopt;
  }
  return text;
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

MappedFile::MappedFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    void* data =
        ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (data != MAP_FAILED) {
      data_ = static_cast<const char*>(data);
      size_ = static_cast<std::size_t>(st.st_size);
    }
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
}

std::vector<std::string> folder_names(const std::string& path) {
  std::vector<std::string> out;
  std::error_code ec;
  std::filesystem::directory_iterator it(path, ec);
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    out.push_back(it->path().filename().string());
  }
  return out;
}

std::vector<FoundFile> files_below(const std::string& path,
                                   const std::function<bool(std::string_view name)>& wanted,
                                   Below which) {
  namespace fs = std::filesystem;
  std::vector<FoundFile> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!wanted(it->path().filename().string())) continue;
    // A link's target is read itself (kRegularFiles).
    if (which == Below::kRegularFiles && (!it->is_regular_file(ec) || it->is_symlink(ec))) continue;
    out.push_back({it->path().string(), it->path().lexically_relative(path).string()});
  }
  return out;
}

bool make_folders(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  return !ec;
}

}  // namespace pyshim
