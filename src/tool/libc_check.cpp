#include "libc_check.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <tuple>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "pyshim/elf.hpp"
#include "pyshim/os.hpp"
#include "pyshim/path.hpp"

namespace pyshim::cli {
namespace {

// A C library is a few MiB; a preload (the ASan runtime) some more.
constexpr std::uint64_t kMaxLibrarySize = 256ULL << 20;

// The release glibc's banner names ("... stable release version 2.31."),
// read as data: the newest symbol version can be older (2.31 added none).
std::string release_of(std::string_view image) {
  constexpr std::string_view kMarker = "release version ";
  std::size_t at = image.find(kMarker);
  if (at == std::string_view::npos) return "";
  std::string_view rest = image.substr(at + kMarker.size(), 16);
  std::string version(rest.substr(0, rest.find_first_not_of("0123456789.")));
  while (!version.empty() && version.back() == '.') version.pop_back();
  return version;
}

Result<DynamicInfo> read_dynamic(FileSystem& fs, const std::string& path,
                                 std::string* release = nullptr) {
  FileInfo info;
  if (int err = fs.stat(path, info); err != 0) {
    return Error{ErrorKind::kCheckFailed,
                 fmt::format("cannot read {}: {}", path, std::strerror(err)),
                 {},
                 ""};
  }
  if (!S_ISREG(info.mode) || info.size > kMaxLibrarySize) {
    return Error{ErrorKind::kCheckFailed,
                 fmt::format("{} is not a regular file of at most 256 MiB", path),
                 {},
                 ""};
  }
  std::string image;
  if (int err = fs.read_head(path, info.size, image); err != 0) {
    return Error{ErrorKind::kCheckFailed,
                 fmt::format("cannot read {}: {}", path, std::strerror(err)),
                 {},
                 ""};
  }
  if (release) *release = release_of(image);
  auto parsed = parse_dynamic(image);
  if (!parsed) {
    return Error{
        ErrorKind::kCheckFailed, fmt::format("{}: {}", path, parsed.error().message), {}, ""};
  }
  return parsed;
}

// (2, 36) from "GLIBC_2.36"; (0, 0) for anything else (GLIBC_PRIVATE).
std::tuple<int, int> glibc_version(const std::string& name) {
  int major = 0;
  int minor = 0;
  if (std::sscanf(name.c_str(), "GLIBC_%d.%d", &major, &minor) != 2) return {0, 0};
  return {major, minor};
}

// glibc's own libraries, found beside its loader; a library's needs of any
// other file (libstdc++, libgcc_s) are not the C library's business.
bool is_glibc_library(const std::string& name, const std::string& loader) {
  static constexpr std::array kNames = {"libc.so.6",   "libm.so.6",  "libpthread.so.0",
                                        "libdl.so.2",  "librt.so.1", "libresolv.so.2",
                                        "libutil.so.1"};
  return name == loader || std::find(kNames.begin(), kNames.end(), name) != kNames.end();
}

}  // namespace

LibcReport check_libc(FileSystem& fs, const std::string& interpreter,
                      const std::vector<std::string>& libraries) {
  LibcReport report;
  std::string head;
  if (fs.read_head(interpreter, 4096, head) != 0) return report;
  auto elf = parse_elf(head);
  if (!elf || elf->interp.empty()) return report;
  const std::string& loader = elf->interp;
  if (basename(loader).find("musl") != std::string::npos) {
    report.summary = fmt::format("musl ({})", loader);
    report.problems.push_back(
        Error{ErrorKind::kCheckFailed,
              fmt::format("{} runs on musl libc (its loader is {}); pyshim serves glibc {} or "
                          "newer only",
                          interpreter, loader, std::string(kGlibcFloor).substr(6)),
              {},
              "use a glibc-based Python (a Debian, Ubuntu, Fedora or RHEL build, or a "
              "python-build-standalone 'gnu' build)"});
    return report;
  }
  std::string loader_dir = dirname(real_path(loader));
  if (loader_dir.empty() || loader_dir == ".") loader_dir = dirname(loader);
  std::string libc_path = loader_dir + "/libc.so.6";
  std::string release;
  auto libc = read_dynamic(fs, libc_path, &release);
  if (!libc) {
    report.problems.push_back(
        Error{ErrorKind::kCheckFailed,
              fmt::format("cannot read the interpreter's C library beside its loader {}: {}",
                          loader, libc.error().message),
              {},
              "pyshim serves glibc-based interpreters, whose loader and libc.so.6 share a folder"});
    return report;
  }
  std::tuple<int, int> newest{0, 0};
  for (const std::string& def : libc->version_definitions)
    newest = std::max(newest, glibc_version(def));
  auto [major, minor] = newest;
  if (release.empty()) release = fmt::format("{}.{}", major, minor);
  report.summary = fmt::format("glibc {} ({})", release, libc_path);
  if (newest < glibc_version(kGlibcFloor)) {
    report.problems.push_back(
        Error{ErrorKind::kCheckFailed,
              major == 0
                  ? fmt::format("{} is not glibc (it defines no GLIBC_ symbol versions)", libc_path)
                  : fmt::format("{} is glibc {}, older than pyshim's floor, glibc {}", libc_path,
                                release, std::string(kGlibcFloor).substr(6)),
              {},
              "use an interpreter built for glibc 2.17 or newer"});
    return report;
  }

  std::string loader_name(basename(loader));
  for (const std::string& path : libraries) {
    // One that is no ELF library is doctor's preload check's to report.
    auto lib = read_dynamic(fs, path);
    if (!lib) continue;
    for (const auto& need : lib->version_needs) {
      if (!is_glibc_library(need.file, loader_name)) continue;
      const DynamicInfo* provider = &*libc;
      Result<DynamicInfo> other = DynamicInfo{};
      if (need.file != "libc.so.6") {
        other = read_dynamic(
            fs, need.file == loader_name ? real_path(loader) : loader_dir + "/" + need.file);
        if (!other) continue;  // the loader reports a missing library itself, by name
        provider = &*other;
      }
      auto missing = missing_versions(*lib, need.file, provider->version_definitions);
      if (missing.empty()) continue;
      report.problems.push_back(Error{
          ErrorKind::kCheckFailed,
          fmt::format("{} needs {} of {}, which the interpreter's C library, {}, does not "
                      "define: the loader would refuse every launch",
                      path, fmt::join(missing, ", "), need.file, report.summary),
          {},
          fmt::format("use a build of {} made for glibc {} or older", basename(path), release)});
    }
  }
  return report;
}

}  // namespace pyshim::cli
