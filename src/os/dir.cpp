#include "pyshim/dir.hpp"

#include "pyshim/launch.hpp"
#include "pyshim/os.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>
#include <system_error>

#include <fmt/format.h>

namespace fs = std::filesystem;

namespace pyshim {
namespace {

bool g_dry_run = false;
DirLogSink g_log_sink = nullptr;

// Paths in log lines and in the dry-run plan come from the venv, which
// anyone may name: escaped and capped.
std::string shown(std::string_view path) {
  return printable(path, 4096);
}

[[noreturn]] void fail(const char* what, const std::string& path, int err) {
  throw fs::filesystem_error(what, path, std::error_code(err, std::generic_category()));
}

constexpr std::string_view kTmpSuffix = ".pyshim-tmp";

std::string tmp_name(std::string_view name) {
  return std::string(name) + std::string(kTmpSuffix);
}

// Clears a stale temporary of ours (or anything planted under its name),
// never following it.
void clear(const Dir& dir, const std::string& name) {
  if (::unlinkat(dir.fd(), name.c_str(), 0) == 0 || errno == ENOENT) return;
  if (errno == EISDIR) {
    dir.remove(name);
    return;
  }
  fail("cannot remove", dir.path_of(name), errno);
}

void rename_into_place(const Dir& dir, const std::string& tmp, std::string_view name) {
  std::string target(name);
  if (::renameat(dir.fd(), tmp.c_str(), dir.fd(), target.c_str()) != 0) {
    int err = errno;
    ::unlinkat(dir.fd(), tmp.c_str(), 0);
    fail("cannot rename into place", dir.path_of(name), err);
  }
  dir.sync();
}

}  // namespace

void set_dry_run(bool on) {
  g_dry_run = on;
}

bool dry_run() {
  return g_dry_run;
}

void set_dir_log_sink(DirLogSink sink) {
  g_log_sink = sink;
}

bool Dir::begin(std::string_view verb, std::string_view name, std::string_view detail) const {
  if (g_dry_run) {
    // Once each: a folder the plan creates is met again by later steps.
    static std::set<std::string> printed;
    std::string line = fmt::format("would {} {}{}\n", verb, shown(path_of(name)), detail);
    if (printed.insert(line).second) std::cout << line;
    return false;
  }
  if (g_log_sink != nullptr) {
    g_log_sink(
        fmt::format("plan: {} {}{} (fd {} = {})", verb, shown(name), detail, fd_, shown(path_)));
  }
  return true;
}

void Dir::done(std::string_view verb, std::string_view name, std::string_view detail) const {
  if (g_log_sink != nullptr) {
    g_log_sink(
        fmt::format("{} {}{} (fd {} = {}): ok", verb, shown(name), detail, fd_, shown(path_)));
  }
}

Dir& Dir::operator=(Dir&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    path_ = std::move(other.path_);
    other.fd_ = -1;
  }
  return *this;
}

Dir::~Dir() {
  if (fd_ >= 0) ::close(fd_);
}

std::optional<Dir> Dir::sub(std::string_view relative, bool create) const {
  // A folder a dry run would have created is empty: only create finds in it.
  if (fd_ < 0 && !create) return std::nullopt;
  Dir current(fd_ < 0 ? -1 : ::dup(fd_), path_);
  if (fd_ >= 0 && current.fd() < 0) fail("cannot open", path_, errno);
  while (!relative.empty()) {
    std::size_t slash = relative.find('/');
    std::string part(relative.substr(0, slash));
    relative.remove_prefix(slash == std::string_view::npos ? relative.size() : slash + 1);
    if (part.empty() || part == "." || part == "..") fail("refusing path", path_, EINVAL);
    bool made = false;
    if (create && (current.fd() < 0 || !current.stat(part))) {
      // A folder to create: the one mutation of sub, through the same gate.
      if (!current.begin("create folder", part)) {
        current = Dir(-1, current.path_of(part));
        continue;
      }
      made = ::mkdirat(current.fd(), part.c_str(), 0755) == 0;
      if (!made && errno != EEXIST) fail("cannot create", current.path_of(part), errno);
      if (made) current.done("create folder", part);
    }
    int fd = ::openat(current.fd(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == ENOENT && !create) return std::nullopt;
      // ELOOP or ENOTDIR: a link (or a file) where a folder belongs.
      auto st = current.stat(part);
      fail(st && S_ISLNK(st->st_mode) ? "refusing to follow a symlink" : "cannot open",
           current.path_of(part), err);
    }
    // A folder root makes in someone's venv belongs to that venv's owner,
    // like the files (they can still remove their venv).
    struct stat parent;
    if (made && ::geteuid() == 0 && ::fstat(current.fd(), &parent) == 0 &&
        ::fchown(fd, parent.st_uid, parent.st_gid) != 0) {
      int err = errno;
      ::close(fd);
      fail("cannot chown", current.path_of(part), err);
    }
    current = Dir(fd, current.path_of(part));
  }
  return current;
}

std::optional<struct stat> Dir::stat(std::string_view name) const {
  if (fd_ < 0) return std::nullopt;  // a folder a dry run would have created
  struct stat st;
  if (::fstatat(fd_, std::string(name).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return st;
  if (errno == ENOENT) return std::nullopt;
  fail("cannot stat", path_of(name), errno);
}

std::optional<struct stat> Dir::stat_for_stamp(std::string_view name) const {
  auto st = stat(name);
  if (!st || !S_ISREG(st->st_mode) || dry_run()) return st;
  // Its mtime moved back by the timestamp granularity, so the stamp is not
  // "racily clean" (racily_clean in launch.hpp: the launcher would parse
  // the file at every launch) and an edit within the same tick changes the
  // identity. Failing that, launches parse the file: slower, still right.
  if (racily_clean(identity_of(file_info_of(*st)))) {
    struct timespec times[2] = {{0, UTIME_OMIT}, st->st_mtim};
    times[1].tv_sec -= kTimestampGranularityNs / 1000000000;
    if (::utimensat(fd_, std::string(name).c_str(), times, AT_SYMLINK_NOFOLLOW) == 0) {
      st = stat(name);
    }
  }
  return st;
}

std::optional<std::string> Dir::readlink(std::string_view name) const {
  if (fd_ < 0) return std::nullopt;
  char buffer[4096];
  ssize_t n = ::readlinkat(fd_, std::string(name).c_str(), buffer, sizeof buffer);
  if (n < 0 || static_cast<std::size_t>(n) == sizeof buffer) return std::nullopt;
  return std::string(buffer, static_cast<std::size_t>(n));
}

std::optional<std::string> Dir::read(std::string_view name, std::size_t max) const {
  if (fd_ < 0) return std::nullopt;
  return read_regular(fd_, std::string(name), false, max);
}

std::optional<std::string> Dir::read_head(std::string_view name, std::size_t max) const {
  if (fd_ < 0) return std::nullopt;
  return read_regular(fd_, std::string(name), false, max, ReadSize::kHead);
}

std::optional<struct stat> Dir::self_stat() const {
  struct stat st;
  if (fd_ < 0 || ::fstat(fd_, &st) != 0) return std::nullopt;
  return st;
}

std::vector<std::string> Dir::names() const {
  std::vector<std::string> out;
  if (fd_ < 0) return out;
  int fd = ::dup(fd_);
  if (fd < 0) fail("cannot list", path_, errno);
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(fd);
    fail("cannot list", path_, err);
  }
  ::rewinddir(dir);
  while (const dirent* entry = ::readdir(dir)) {
    std::string_view name = entry->d_name;
    if (name != "." && name != "..") out.emplace_back(name);
  }
  ::closedir(dir);
  return out;
}

bool Dir::write(std::string_view name, std::string_view bytes, mode_t mode) const {
  if (auto st = stat(name); st && S_ISREG(st->st_mode) && (st->st_mode & 07777) == mode &&
                            static_cast<std::size_t>(st->st_size) == bytes.size()) {
    if (auto current = read(name, bytes.size()); current && *current == bytes) return false;
  }
  const char* verb = stat(name) ? "replace" : "write";
  if (!begin(verb, name)) return true;
  std::string tmp = tmp_name(name);
  clear(*this, tmp);
  int fd = ::openat(fd_, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) fail("cannot create", path_of(tmp), errno);
  auto give_up = [&](const char* what) {
    int err = errno;
    ::close(fd);
    ::unlinkat(fd_, tmp.c_str(), 0);
    fail(what, path_of(tmp), err);
  };
  for (std::size_t done = 0; done < bytes.size();) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) give_up("cannot write");
    done += static_cast<std::size_t>(n);
  }
  // Files root writes into someone's venv belong to that venv's owner, like
  // the folder they are in: the user can still edit pyshim.toml.
  struct stat folder;
  if (::geteuid() == 0 && ::fstat(fd_, &folder) == 0 &&
      ::fchown(fd, folder.st_uid, folder.st_gid) != 0) {
    give_up("cannot chown");
  }
  if (::fchmod(fd, mode) != 0) give_up("cannot chmod");
  if (::fsync(fd) != 0) give_up("cannot sync");
  if (::close(fd) != 0) {
    int err = errno;
    ::unlinkat(fd_, tmp.c_str(), 0);
    fail("cannot write", path_of(tmp), err);
  }
  rename_into_place(*this, tmp, name);
  done(verb, name);
  return true;
}

bool Dir::symlink(std::string_view name, std::string_view target) const {
  if (auto st = stat(name); st && S_ISLNK(st->st_mode) && readlink(name) == target) return false;
  const char* verb = stat(name) ? "replace by a symlink" : "make a symlink";
  std::string detail = " -> " + shown(target);
  if (!begin(verb, name, detail)) return true;
  std::string tmp = tmp_name(name);
  clear(*this, tmp);
  if (::symlinkat(std::string(target).c_str(), fd_, tmp.c_str()) != 0) {
    fail("cannot create", path_of(tmp), errno);
  }
  struct stat folder;
  if (::geteuid() == 0 && ::fstat(fd_, &folder) == 0) {
    ::fchownat(fd_, tmp.c_str(), folder.st_uid, folder.st_gid, AT_SYMLINK_NOFOLLOW);
  }
  rename_into_place(*this, tmp, name);
  done(verb, name, detail);
  return true;
}

bool Dir::link_from(const Dir& from, std::string_view from_name, std::string_view name) const {
  auto source = from.stat(from_name);
  if (!source || !S_ISREG(source->st_mode))
    fail("not a regular file", from.path_of(from_name), EINVAL);
  if (auto st = stat(name); st && st->st_dev == source->st_dev && st->st_ino == source->st_ino) {
    return false;
  }
  const char* verb = stat(name) ? "replace by a hard link" : "make a hard link";
  std::string detail = " to " + shown(from.path_of(from_name));
  if (!begin(verb, name, detail)) return true;
  std::string tmp = tmp_name(name);
  clear(*this, tmp);
  // flags 0: a link to the entry itself, never to what a symlink points at.
  if (::linkat(from.fd(), std::string(from_name).c_str(), fd_, tmp.c_str(), 0) != 0) {
    fail("cannot link", path_of(tmp), errno);
  }
  rename_into_place(*this, tmp, name);
  done(verb, name, detail);
  return true;
}

bool Dir::remove(std::string_view name) const {
  std::string entry(name);
  auto st = stat(entry);
  if (!st) return false;
  if (S_ISDIR(st->st_mode)) {
    if (auto sub_dir = sub(entry, false)) {
      for (const std::string& child : sub_dir->names()) sub_dir->remove(child);
    }
    if (!begin("remove folder", entry)) return true;
    if (::unlinkat(fd_, entry.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
      fail("cannot remove", path_of(entry), errno);
    }
  } else {
    if (!begin("remove", entry)) return true;
    if (::unlinkat(fd_, entry.c_str(), 0) != 0 && errno != ENOENT) {
      fail("cannot remove", path_of(entry), errno);
    }
  }
  sync();
  done(S_ISDIR(st->st_mode) ? "remove folder" : "remove", entry);
  return true;
}

void Dir::sync() const {
  if (fd_ < 0) return;
  if (::fsync(fd_) != 0 && errno != EINVAL) fail("cannot sync", path_, errno);
}

Dir Dir::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("cannot open", path, errno);
  return Dir(fd, path);
}

VenvLock VenvLock::open(const std::string& venv) {
  // The path given is the caller's choice (links in it are theirs to
  // follow); below it, nothing is followed.
  Dir root = Dir::open(venv);
  int fd = root.fd();
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) fail("cannot lock", venv, errno);
    std::fprintf(stderr, "pyshim: another pyshim command is changing %s; waiting for it\n",
                 venv.c_str());
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno != EINTR) fail("cannot lock", venv, errno);
    }
  }
  return VenvLock(std::move(root));
}

}  // namespace pyshim
