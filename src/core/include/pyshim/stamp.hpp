// The stamp: the resolved config a launcher copy carries in its own image
// (README.md, "The stamp" under "Two executables, and what a venv holds"). `pyshim install` writes
// it into the reserved section of each launcher copy; the launcher reads it through a symbol, so
// using it costs no syscall and no TOML parsing. Pure: bytes in, bytes out.
//
// Format (host byte order: a stamp is only ever read by the build that
// wrote the image it sits in):
//   header  magic "PYSHIMST", u32 format, u32 payload length (0: unstamped),
//           char version[16] (the launcher build's version, NUL-padded),
//           u64 FNV-1a of the payload
//   payload u64 dev, ino, size; i64 mtime_ns, ctime_ns  (the source file)
//           str source, str restore_library, str interpreter (+ origin)
//           u32 position (+ origin)
//           u32 n, n x (str + origin)  preload, library_path, startup, python_path
//           u32 n, n x (str name, str value, u32 mode + origin)  env
//           (mode: EnvMode, 0 set, 1 prepend, 2 append; since format 2)
//   str = u32 length, bytes, NUL (so a decoded value is usable as a C string
//   in place); origin = u32 line, u32 column in the source file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "pyshim/config.hpp"
#include "pyshim/error.hpp"
#include "pyshim/file_info.hpp"
#include "pyshim/plan.hpp"

namespace pyshim {

// The reserved area in the launcher image: 4 pages. A resolved config that
// does not fit is refused by install (the file is still read at launch).
inline constexpr std::size_t kStampCapacity = 16384;
inline constexpr std::string_view kStampSection = ".pyshim.stamp";
inline constexpr char kStampMagic[8] = {'P', 'Y', 'S', 'H', 'I', 'M', 'S', 'T'};
// 2: [env] entries carry their mode. A launcher reads only its own format;
// an image of another is "damaged" (reinstall), never misread.
inline constexpr std::uint32_t kStampFormat = 2;

struct StampHeader {
  char magic[8];
  std::uint32_t format;
  std::uint32_t length;  // payload bytes after the header; 0 = not stamped
  char version[16];      // launcher version, NUL-padded
  std::uint64_t checksum;
};
static_assert(sizeof(StampHeader) == 40);

// FileIdentity (what identifies a pyshim.toml unchanged since it was
// stamped) is in file_info.hpp: the part of a FileInfo that a stamp keeps.

struct Stamp {
  std::string source;  // absolute path of the pyshim.toml it was made from
  FileIdentity identity;
  std::string restore_library;  // absolute: the last place the launcher looks
  Config config;                // resolved: every path absolute; config.file == source
};

// A stamp read in place, without the heap: what the launcher's hot path uses
// (decode_stamp builds a Stamp from the same view). Every string is a view
// into the area and NUL-terminated there.
struct StampView {
  std::string_view source;
  FileIdentity identity;
  std::string_view restore_library;
  PlanConfig config;  // config.file == source; lists packed in the area
  Origin interpreter_origin;
  Origin library_path_position_origin;
};

enum class StampState { kStamped, kUnstamped, kDamaged };

// Checks the area as decode_stamp does (magic, format, length, checksum,
// every list's bounds, absolute paths) and fills view when it is stamped.
// why: a static description when it is damaged.
PYSHIM_HOT StampState view_stamp(std::string_view area, StampView& view, const char** why);

// The whole reserved area (kStampCapacity bytes), keeping the image's
// version field. Error when the config does not fit.
Result<std::string> encode_stamp(const Stamp& stamp, std::string_view version);

// nullopt: an unstamped launcher. Error: a damaged stamp (bad magic, format,
// length or checksum) — never trusted, never a crash.
Result<std::optional<Stamp>> decode_stamp(std::string_view area);

// The version field of an area ("" when the area is not a stamp area).
std::string stamp_version(std::string_view area);

// An unstamped area for a launcher of this version (what the build puts in
// the image).
std::string empty_stamp_area(std::string_view version);

}  // namespace pyshim
