#include "pyshim/stamp.hpp"
#include "pyshim/path.hpp"

#include <cstddef>
#include <cstring>
#include <vector>

#include <fmt/format.h>

namespace pyshim {
namespace {

PYSHIM_HOT std::uint64_t fnv1a(std::string_view bytes) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto c = static_cast<unsigned char>(bytes.data()[i]);
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
// never a read past the area. After a failed read the reader goes on (with
// zeros for what it could not read) and the payload is refused at the end.
// Hot: the launcher reads its stamp before libc is initialised.
class Reader {
 public:
  explicit Reader(std::string_view in) : at_(in.data()), left_(in.size()) {}
  bool failed() const { return failed_; }
  const char* here() const { return at_; }

  PYSHIM_HOT std::uint64_t u64() {
    std::uint64_t value = 0;
    if (left_ < sizeof value) {
      failed_ = true;
      return 0;
    }
    __builtin_memcpy(&value, at_, sizeof value);
    at_ += sizeof value;
    left_ -= sizeof value;
    return value;
  }
  PYSHIM_HOT std::uint32_t u32() {
    if (left_ < 4) {
      failed_ = true;
      return 0;
    }
    std::uint32_t value = load_u32(at_);
    at_ += 4;
    left_ -= 4;
    return value;
  }
  PYSHIM_HOT std::string_view str() {
    std::uint32_t n = u32();
    if (failed_ || left_ < std::size_t{n} + 1 || at_[n] != '\0') {
      failed_ = true;
      return {};
    }
    std::string_view out(at_, n);
    at_ += std::size_t{n} + 1;
    left_ -= std::size_t{n} + 1;
    return out;
  }
  PYSHIM_HOT Origin origin() {
    Origin o;
    o.line = u32();
    o.column = u32();
    return o;
  }
  // A count can never exceed the bytes left (each item takes at least 5).
  PYSHIM_HOT std::uint32_t count() {
    std::uint32_t n = u32();
    if (n > left_ / 5) failed_ = true;
    return failed_ ? 0 : n;
  }
  PYSHIM_HOT ValueList settings() {
    std::uint32_t n = count();
    const char* items = at_;
    for (std::uint32_t i = 0; i < n && !failed_; ++i) {
      str();
      origin();
    }
    return ValueList::packed(items, n);
  }
  PYSHIM_HOT EnvList env() {
    std::uint32_t n = count();
    const char* items = at_;
    for (std::uint32_t i = 0; i < n && !failed_; ++i) {
      str();
      str();
      // The planner reads the mode unchecked: only the three known ones pass.
      if (u32() > static_cast<std::uint32_t>(EnvMode::kAppend)) failed_ = true;
      origin();
    }
    return EnvList::packed(items, n);
  }
  bool at_end() const { return left_ == 0; }

 private:
  const char* at_;
  std::size_t left_;
  bool failed_ = false;
};

constexpr char kUnknownFormat[] = "unknown format";

PYSHIM_HOT StampState refuse(const char** why, const char* what) {
  if (why != nullptr) *why = what;
  return StampState::kDamaged;
}

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
    w.pod(static_cast<std::uint32_t>(var.mode));
    w.origin(var.origin);
  }
  std::string& payload = w.bytes();
  if (payload.size() > kStampCapacity - sizeof(StampHeader)) {
    Error e;
    e.kind = ErrorKind::kUsage;
    e.message = fmt::format("the resolved config is {} bytes; a launcher holds at most {}",
                            payload.size(), kStampCapacity - sizeof(StampHeader));
    e.hint = "shorten pyshim.toml (fewer or shorter paths and variables)";
    return e;
  }
  std::string area = empty_stamp_area(version);
  StampHeader h = header_for(version, static_cast<std::uint32_t>(payload.size()), fnv1a(payload));
  std::memcpy(area.data(), &h, sizeof h);
  std::memcpy(area.data() + sizeof h, payload.data(), payload.size());
  return area;
}

StampState view_stamp(std::string_view area, StampView& view, const char** why) {
  if (area.size() < sizeof(StampHeader)) return refuse(why, "the area is too small");
  const char* head = area.data();
  for (std::size_t i = 0; i < sizeof kStampMagic; ++i) {
    if (head[i] != kStampMagic[i]) return refuse(why, "bad magic");
  }
  if (load_u32(head + offsetof(StampHeader, format)) != kStampFormat)
    return refuse(why, kUnknownFormat);
  std::uint32_t length = load_u32(head + offsetof(StampHeader, length));
  if (length == 0) return StampState::kUnstamped;
  if (length > area.size() - sizeof(StampHeader)) return refuse(why, "length past the area");
  std::string_view payload(head + sizeof(StampHeader), length);
  std::uint64_t checksum;
  __builtin_memcpy(&checksum, head + offsetof(StampHeader, checksum), sizeof checksum);
  if (fnv1a(payload) != checksum) return refuse(why, "checksum mismatch");

  Reader r(payload);
  StampView s;
  s.identity.dev = r.u64();
  s.identity.ino = r.u64();
  s.identity.size = r.u64();
  s.identity.mtime_ns = static_cast<std::int64_t>(r.u64());
  s.identity.ctime_ns = static_cast<std::int64_t>(r.u64());
  s.source = r.str();
  s.restore_library = r.str();
  PlanConfig& c = s.config;
  c.file = s.source;
  c.interpreter = r.str();
  s.interpreter_origin = r.origin();
  std::uint32_t position = r.u32();
  if (position > 1) return refuse(why, "bad library_path_position");
  c.library_path_position = static_cast<Position>(position);
  s.library_path_position_origin = r.origin();
  c.preload = r.settings();
  c.library_path = r.settings();
  c.startup = r.settings();
  c.python_path = r.settings();
  c.env = r.env();
  if (r.failed() || !r.at_end()) return refuse(why, "truncated or malformed payload");
  if (s.source.empty() || s.source[0] != '/' || s.restore_library.empty() ||
      s.restore_library[0] != '/' || c.interpreter.empty()) {
    return refuse(why, "missing paths");
  }
  view = s;
  return StampState::kStamped;
}

namespace {

std::vector<Setting> settings_of(const ValueList& list) {
  std::vector<Setting> out;
  out.reserve(list.size());
  for (auto it = list.begin(); it != list.end(); ++it)
    out.push_back({std::string(*it), it.origin()});
  return out;
}

}  // namespace

Result<std::optional<Stamp>> decode_stamp(std::string_view area) {
  StampView view;
  const char* why = nullptr;
  switch (view_stamp(area, view, &why)) {
    case StampState::kUnstamped:
      return std::optional<Stamp>();
    case StampState::kDamaged:
      if (why == kUnknownFormat) {
        return damaged(fmt::format("unknown format {}",
                                   load_u32(area.data() + offsetof(StampHeader, format))));
      }
      return damaged(why);
    case StampState::kStamped:
      break;
  }
  Stamp s;
  s.identity = view.identity;
  s.source = std::string(view.source);
  s.restore_library = std::string(view.restore_library);
  Config& c = s.config;
  c.file = s.source;
  c.dir = dirname(s.source);
  c.interpreter = {std::string(view.config.interpreter), view.interpreter_origin};
  c.library_path_position = view.config.library_path_position;
  c.library_path_position_origin = view.library_path_position_origin;
  c.preload = settings_of(view.config.preload);
  c.library_path = settings_of(view.config.library_path);
  c.startup = settings_of(view.config.startup);
  c.python_path = settings_of(view.config.python_path);
  for (auto it = view.config.env.begin(); it != view.config.env.end(); ++it) {
    c.env.push_back({std::string((*it).name), std::string((*it).value), it.origin(), (*it).mode});
  }
  return std::optional<Stamp>(std::move(s));
}

}  // namespace pyshim
