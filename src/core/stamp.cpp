#include "pyshim/stamp.hpp"

#include <cstring>
#include <vector>

#include <fmt/format.h>

namespace pyshim {
namespace {

std::uint64_t fnv1a(std::string_view bytes) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

class Writer {
 public:
  template <class T>
  void pod(T value) {
    out_.append(reinterpret_cast<const char*>(&value), sizeof value);
  }
  void str(std::string_view s) {
    pod(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
    out_.push_back('\0');
  }
  void origin(Origin o) {
    pod(o.line);
    pod(o.column);
  }
  void setting(const Setting& s) {
    str(s.value);
    origin(s.origin);
  }
  void settings(const std::vector<Setting>& list) {
    pod(static_cast<std::uint32_t>(list.size()));
    for (const Setting& s : list) setting(s);
  }
  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

// Every read is bounds-checked: a damaged or hostile image gives an error,
// never a read past the area.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool failed() const { return failed_; }

  template <class T>
  T pod() {
    T value{};
    if (in_.size() < sizeof value) {
      failed_ = true;
      return value;
    }
    std::memcpy(&value, in_.data(), sizeof value);
    in_.remove_prefix(sizeof value);
    return value;
  }
  std::string str() {
    auto n = pod<std::uint32_t>();
    if (failed_ || in_.size() < std::size_t{n} + 1 || in_[n] != '\0') {
      failed_ = true;
      return {};
    }
    std::string out(in_.substr(0, n));
    in_.remove_prefix(std::size_t{n} + 1);
    return out;
  }
  Origin origin() {
    Origin o;
    o.line = pod<std::uint32_t>();
    o.column = pod<std::uint32_t>();
    return o;
  }
  Setting setting() {
    Setting s;
    s.value = str();
    s.origin = origin();
    return s;
  }
  // A count can never exceed the bytes left (each item takes at least 5).
  std::uint32_t count() {
    auto n = pod<std::uint32_t>();
    if (n > in_.size() / 5) failed_ = true;
    return failed_ ? 0 : n;
  }
  void settings(std::vector<Setting>& list) {
    std::uint32_t n = count();
    for (std::uint32_t i = 0; i < n && !failed_; ++i) list.push_back(setting());
  }
  bool at_end() const { return in_.empty(); }

 private:
  std::string_view in_;
  bool failed_ = false;
};

Error damaged(std::string what) {
  Error e;
  e.message = fmt::format("the launcher's stamped config is damaged: {}", what);
  e.hint = "reinstall it: `pyshim install VENV` writes a fresh launcher";
  return e;
}

StampHeader header_for(std::string_view version, std::uint32_t length, std::uint64_t checksum) {
  StampHeader h{};
  std::memcpy(h.magic, kStampMagic, sizeof h.magic);
  h.format = kStampFormat;
  h.length = length;
  std::memcpy(h.version, version.data(), std::min(version.size(), sizeof h.version - 1));
  h.checksum = checksum;
  return h;
}

}  // namespace

std::string empty_stamp_area(std::string_view version) {
  std::string area(kStampCapacity, '\0');
  StampHeader h = header_for(version, 0, 0);
  std::memcpy(area.data(), &h, sizeof h);
  return area;
}

std::string stamp_version(std::string_view area) {
  if (area.size() < sizeof(StampHeader)) return {};
  StampHeader h;
  std::memcpy(&h, area.data(), sizeof h);
  if (std::memcmp(h.magic, kStampMagic, sizeof h.magic) != 0) return {};
  return std::string(h.version, strnlen(h.version, sizeof h.version));
}

Result<std::string> encode_stamp(const Stamp& stamp, std::string_view version) {
  Writer w;
  const FileIdentity& id = stamp.identity;
  w.pod(id.dev);
  w.pod(id.ino);
  w.pod(id.size);
  w.pod(id.mtime_ns);
  w.pod(id.ctime_ns);
  w.str(stamp.source);
  w.str(stamp.restore_library);
  const Config& c = stamp.config;
  w.setting(c.interpreter);
  w.pod(static_cast<std::uint32_t>(c.library_path_position));
  w.origin(c.library_path_position_origin);
  w.settings(c.preload);
  w.settings(c.library_path);
  w.settings(c.startup);
  w.settings(c.python_path);
  w.pod(static_cast<std::uint32_t>(c.env.size()));
  for (const EnvSetting& var : c.env) {
    w.str(var.name);
    w.str(var.value);
    w.origin(var.origin);
  }
  std::string& payload = w.bytes();
  if (payload.size() > kStampCapacity - sizeof(StampHeader)) {
    Error e;
    e.exit_code = kExitUsage;
    e.message = fmt::format("the resolved config is {} bytes; a launcher holds at most {}",
                            payload.size(), kStampCapacity - sizeof(StampHeader));
    e.hint = "shorten pyshim.toml (fewer or shorter paths and variables)";
    return e;
  }
  std::string area = empty_stamp_area(version);
  StampHeader h =
      header_for(version, static_cast<std::uint32_t>(payload.size()), fnv1a(payload));
  std::memcpy(area.data(), &h, sizeof h);
  std::memcpy(area.data() + sizeof h, payload.data(), payload.size());
  return area;
}

Result<std::optional<Stamp>> decode_stamp(std::string_view area) {
  if (area.size() < sizeof(StampHeader)) return damaged("the area is too small");
  StampHeader h;
  std::memcpy(&h, area.data(), sizeof h);
  if (std::memcmp(h.magic, kStampMagic, sizeof h.magic) != 0) return damaged("bad magic");
  if (h.format != kStampFormat) return damaged(fmt::format("unknown format {}", h.format));
  if (h.length == 0) return std::optional<Stamp>();
  if (h.length > area.size() - sizeof h) return damaged("length past the area");
  std::string_view payload = area.substr(sizeof h, h.length);
  if (fnv1a(payload) != h.checksum) return damaged("checksum mismatch");

  Reader r(payload);
  Stamp s;
  s.identity.dev = r.pod<std::uint64_t>();
  s.identity.ino = r.pod<std::uint64_t>();
  s.identity.size = r.pod<std::uint64_t>();
  s.identity.mtime_ns = r.pod<std::int64_t>();
  s.identity.ctime_ns = r.pod<std::int64_t>();
  s.source = r.str();
  s.restore_library = r.str();
  Config& c = s.config;
  c.file = s.source;
  c.dir = s.source.substr(0, s.source.rfind('/') == std::string::npos ? 0 : s.source.rfind('/'));
  c.interpreter = r.setting();
  auto position = r.pod<std::uint32_t>();
  if (position > 1) return damaged("bad library_path_position");
  c.library_path_position = static_cast<Position>(position);
  c.library_path_position_origin = r.origin();
  r.settings(c.preload);
  r.settings(c.library_path);
  r.settings(c.startup);
  r.settings(c.python_path);
  std::uint32_t n = r.count();
  for (std::uint32_t i = 0; i < n && !r.failed(); ++i) {
    EnvSetting var;
    var.name = r.str();
    var.value = r.str();
    var.origin = r.origin();
    c.env.push_back(std::move(var));
  }
  if (r.failed() || !r.at_end()) return damaged("truncated or malformed payload");
  if (!s.source.starts_with('/') || !s.restore_library.starts_with('/') ||
      c.interpreter.value.empty()) {
    return damaged("missing paths");
  }
  return std::optional<Stamp>(std::move(s));
}

}  // namespace pyshim
