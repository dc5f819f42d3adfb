// What stat(2) says of a file, as every layer needs it, and the part of it a
// stamp keeps: one type, so the fields are written once.
#pragma once

#include <cstdint>

namespace pyshim {

// What identifies a file's contents unchanged (a pyshim.toml since it was
// stamped). ctime is included because no user can set it: an edit that
// restores size and mtime still changes it.
struct FileIdentity {
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
};

// What stat said (file_info_of in launch_rules.hpp makes one): the identity, and
// the type and owner the trust rules decide on.
struct FileInfo : FileIdentity {
  std::uint32_t mode = 0;
  std::uint32_t uid = 0;
  bool operator==(const FileInfo&) const = default;
};

}  // namespace pyshim
