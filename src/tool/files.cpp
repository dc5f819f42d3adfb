#include "files.hpp"

#include <fstream>
#include <sstream>
#include <system_error>

namespace fs = std::filesystem;

namespace pyshim::cli {

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool write_if_changed(const fs::path& path, const std::string& text) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec) && read_text(path) == text) return false;
  fs::path tmp = path;
  tmp += ".pyshim-tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      fs::remove(tmp, ec);
      throw fs::filesystem_error("cannot write", tmp, std::make_error_code(std::errc::io_error));
    }
  }
  fs::rename(tmp, path);
  return true;
}

}  // namespace pyshim::cli
