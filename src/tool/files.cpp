#include "files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace fs = std::filesystem;

namespace pyshim::cli {

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

std::string read_text(const fs::path& path, bool follow_links) {
  return read_regular(AT_FDCWD, path.string(), follow_links, std::size_t{256} << 20).value_or("");
}

}  // namespace pyshim::cli
