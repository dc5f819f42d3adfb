#include "files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <system_error>

namespace fs = std::filesystem;

namespace pyshim::cli {
namespace {

[[noreturn]] void fail(const char* what, const fs::path& path, int err) {
  throw fs::filesystem_error(what, path, std::error_code(err, std::generic_category()));
}

fs::path temporary_for(const fs::path& path) {
  fs::path tmp = path;
  tmp += ".pyshim-tmp";
  return tmp;
}

}  // namespace

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool write_if_changed(const fs::path& path, std::string_view bytes, mode_t mode) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == mode &&
      static_cast<std::size_t>(st.st_size) == bytes.size() && read_text(path) == bytes) {
    return false;
  }
  fs::path tmp = temporary_for(path);
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) fail("cannot remove", tmp, errno);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) fail("cannot create", tmp, errno);
  auto give_up = [&](const char* what) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(what, tmp, err);
  };
  for (std::size_t done = 0; done < bytes.size();) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) give_up("cannot write");
    done += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd, mode) != 0) give_up("cannot chmod");
  if (::fsync(fd) != 0) give_up("cannot sync");
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail("cannot write", tmp, err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail("cannot rename into place", path, err);
  }
  return true;
}

bool ensure_symlink(const fs::path& path, const fs::path& target) {
  std::error_code ec;
  if (fs::is_symlink(fs::symlink_status(path, ec)) && fs::read_symlink(path, ec) == target) {
    return false;
  }
  fs::path tmp = temporary_for(path);
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) fail("cannot remove", tmp, errno);
  if (::symlink(target.c_str(), tmp.c_str()) != 0) fail("cannot create", tmp, errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail("cannot rename into place", path, err);
  }
  return true;
}

}  // namespace pyshim::cli
