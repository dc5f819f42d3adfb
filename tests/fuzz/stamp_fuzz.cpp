// libFuzzer target: the stamp (src/core/include/pyshim/stamp.hpp), the resolved config
// a launcher copy carries in its image.
//
// The first input byte picks a mode (its value modulo 3):
//   0  raw: the rest is the stamp area, decoded as is (the checksum makes
//      almost every mutation a "damaged" error: this covers the header);
//   1  payload: the next 16 bytes are the version field, the rest the
//      payload; the harness writes a valid header for it, so mutations reach
//      the payload reader;
//   2  config: the rest is a pyshim.toml; parsed, stamped, decoded: the stamp
//      must carry everything the launcher uses.
//
// Whatever the bytes, decode_stamp returns a Stamp, nullopt or an Error and
// never crashes; a decoded stamp re-encodes to the same payload bytes and
// decodes to the same Stamp; make_plan on a decoded config does not crash.
// A violated invariant prints what failed and calls __builtin_trap().
//
// Build and run: tests/fuzz/run.sh.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "pyshim/config.hpp"
#include "pyshim/error.hpp"
#include "pyshim/plan.hpp"
#include "pyshim/stamp.hpp"

namespace {

using pyshim::Config;
using pyshim::EnvSetting;
using pyshim::Origin;
using pyshim::Setting;
using pyshim::Stamp;
using pyshim::StampHeader;

constexpr std::string_view kConfigFile = "/fuzz/pyshim.toml";
constexpr std::string_view kRestore = "/fuzz/lib/pyshim/libpyshim-restore.so";
constexpr std::size_t kHeaderSize = sizeof(StampHeader);
constexpr std::size_t kPayloadCapacity = pyshim::kStampCapacity - kHeaderSize;

using fuzz::check;
using fuzz::fail;

std::uint64_t fnv1a(std::string_view bytes) {  // as stamp.cpp's, from its format comment
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

StampHeader header_of(std::string_view area) {
  StampHeader h{};
  std::memcpy(&h, area.data(), sizeof h);
  return h;
}

bool same(const Origin& a, const Origin& b) {
  return a.line == b.line && a.column == b.column;
}

bool same(const std::vector<Setting>& a, const std::vector<Setting>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].value != b[i].value || !same(a[i].origin, b[i].origin)) return false;
  }
  return true;
}

// Everything the launcher uses. dynlib_exclude is a `pyshim dynlib` setting,
// which the stamp does not carry (nor does the launcher need it).
const char* difference(const Config& a, const Config& b) {
  if (a.file != b.file) return "file";
  if (a.dir != b.dir) return "dir";
  if (a.interpreter.value != b.interpreter.value ||
      !same(a.interpreter.origin, b.interpreter.origin)) {
    return "interpreter";
  }
  if (!same(a.preload, b.preload)) return "preload";
  if (!same(a.library_path, b.library_path)) return "library_path";
  if (a.library_path_position != b.library_path_position ||
      !same(a.library_path_position_origin, b.library_path_position_origin)) {
    return "library_path_position";
  }
  if (!same(a.startup, b.startup)) return "startup";
  if (!same(a.python_path, b.python_path)) return "python_path";
  if (a.env.size() != b.env.size()) return "env";
  for (std::size_t i = 0; i < a.env.size(); ++i) {
    if (a.env[i].name != b.env[i].name || a.env[i].value != b.env[i].value ||
        a.env[i].mode != b.env[i].mode || !same(a.env[i].origin, b.env[i].origin)) {
      return "env";
    }
  }
  return nullptr;
}

const char* difference(const Stamp& a, const Stamp& b) {
  if (a.source != b.source) return "source";
  if (!(a.identity == b.identity)) return "identity";
  if (a.restore_library != b.restore_library) return "restore_library";
  return difference(a.config, b.config);
}

// An environment entry in a heap block of exactly its size, so that ASan
// sees any read past its terminating NUL.
class Entries {
 public:
  void add(std::string_view entry) {
    auto block = std::make_unique<char[]>(entry.size() + 1);
    std::memcpy(block.get(), entry.data(), entry.size());
    block[entry.size()] = '\0';
    view_.push_back(block.get());
    blocks_.push_back(std::move(block));
  }
  pyshim::EnvView view() const { return pyshim::EnvView(view_); }

 private:
  std::vector<std::unique_ptr<char[]>> blocks_;
  std::vector<const char*> view_;
};

// A decoded config is only as well-formed as the bytes it came from: the
// planner must still not crash on it. The caller's environment holds, for
// each [env] name, the entries a plan compares it against.
void plan_decoded(const Stamp& stamp) {
  Entries env;
  env.add("HOME=/root");
  env.add("LD_PRELOAD=/caller.so");
  env.add("LD_LIBRARY_PATH=/caller/lib");
  for (const EnvSetting& var : stamp.config.env) {
    std::string_view name(var.name.c_str());  // as a C string: up to a NUL
    env.add(name);
    env.add(std::string(name) + "=caller");
  }
  pyshim::Plan plan = pyshim::make_plan(
      {&stamp.config, env.view(), "/fuzz/venv/bin/python", stamp.restore_library});
  check(!plan.env.empty() && plan.env.back() == nullptr, "plan.env is nullptr-terminated");
  for (std::size_t i = 0; i + 1 < plan.env.size(); ++i) {
    check(plan.env[i] != nullptr, "plan.env has no nullptr before its end");
    (void)std::strlen(plan.env[i]);
  }
}

void check_error(const pyshim::Error& error) {
  check(error.exit_code() == pyshim::kExitShimFailure, "a damaged stamp exits 125");
  check(error.message.starts_with("the launcher's stamped config is damaged"),
        "a damaged stamp says so", error.message);
  check(!error.hint.empty(), "a damaged stamp has a hint");
}

// Decodes an area and checks everything that must hold of the result.
std::optional<Stamp> decode_and_check(std::string_view area) {
  const std::string version = pyshim::stamp_version(area);
  check(version.size() <= sizeof(StampHeader::version), "stamp_version fits its field", version);

  auto decoded = pyshim::decode_stamp(area);
  if (!decoded) {
    check_error(decoded.error());
    return std::nullopt;
  }
  check(area.size() >= kHeaderSize, "a decoded area holds a header");
  const StampHeader header = header_of(area);
  if (!decoded->has_value()) {
    check(header.length == 0, "only a zero length means unstamped");
    return std::nullopt;
  }
  const Stamp& stamp = **decoded;
  check(header.length > 0 && header.length <= area.size() - kHeaderSize,
        "a decoded payload lies inside the area");
  check(stamp.source.starts_with('/') && stamp.restore_library.starts_with('/') &&
            !stamp.config.interpreter.value.empty(),
        "a decoded stamp has its paths");
  check(stamp.config.file == stamp.source, "config.file is the stamp's source", stamp.config.file);
  check(stamp.config.dynlib_exclude.empty(), "the stamp carries no dynlib settings");

  // Round trip: the same payload bytes, and the same Stamp again.
  auto encoded = pyshim::encode_stamp(stamp, version);
  if (header.length > kPayloadCapacity) {
    check(!encoded && encoded.error().exit_code() == pyshim::kExitUsage,
          "a payload past the capacity is refused by encode");
    return decoded->value();
  }
  check(encoded.ok(), "a decoded stamp encodes", encoded ? "" : encoded.error().message);
  const std::string& again = *encoded;
  check(again.size() == pyshim::kStampCapacity, "an encoded area has the capacity's size");
  const StampHeader h2 = header_of(again);
  check(h2.length == header.length && h2.checksum == header.checksum &&
            h2.format == pyshim::kStampFormat,
        "a re-encoded header matches");
  check(again.compare(kHeaderSize, h2.length, area, kHeaderSize, header.length) == 0,
        "a decoded stamp re-encodes to the same payload bytes");
  check(pyshim::stamp_version(again) == version.substr(0, sizeof(StampHeader::version) - 1),
        "encode keeps the version", pyshim::stamp_version(again));
  auto redecoded = pyshim::decode_stamp(again);
  check(redecoded.ok() && redecoded->has_value(), "a re-encoded stamp decodes",
        redecoded ? "" : redecoded.error().message);
  if (const char* field = difference(stamp, **redecoded)) {
    fail("a re-encoded stamp decodes to the same Stamp", field);
  }
  return decoded->value();
}

void raw_mode(std::string_view area) {
  if (auto stamp = decode_and_check(area)) plan_decoded(*stamp);
  // The area the build puts in every launcher, for this version.
  auto empty = pyshim::decode_stamp(pyshim::empty_stamp_area(pyshim::stamp_version(area)));
  check(empty.ok() && !empty->has_value(), "an empty stamp area decodes as unstamped");
}

void payload_mode(std::string_view data) {
  char version[sizeof(StampHeader::version)] = {};
  std::memcpy(version, data.data(), std::min(data.size(), sizeof version));
  data.remove_prefix(std::min(data.size(), sizeof version));
  StampHeader h{};
  std::memcpy(h.magic, pyshim::kStampMagic, sizeof h.magic);
  h.format = pyshim::kStampFormat;
  h.length = static_cast<std::uint32_t>(data.size());
  std::memcpy(h.version, version, sizeof h.version);
  h.checksum = fnv1a(data);
  std::string area(reinterpret_cast<const char*>(&h), sizeof h);
  area.append(data);
  if (auto stamp = decode_and_check(area)) plan_decoded(*stamp);
}

void config_mode(std::string_view text) {
  auto config = pyshim::parse_config(text, kConfigFile);
  if (!config) return;  // tests/fuzz/config_fuzz.cpp covers the parser
  Stamp stamp;
  stamp.source = std::string(kConfigFile);
  stamp.identity = {0x801, 1234567, text.size(), 1700000000123456789, 1700000000987654321};
  stamp.restore_library = std::string(kRestore);
  stamp.config = *config;
  auto encoded = pyshim::encode_stamp(stamp, "0.1.0");
  if (!encoded) {
    check(encoded.error().exit_code() == pyshim::kExitUsage && !encoded.error().hint.empty(),
          "a config too big for a stamp is refused with a hint", encoded.error().message);
    return;
  }
  auto decoded = decode_and_check(*encoded);
  check(decoded.has_value(), "every parsed config that fits can be stamped");
  if (const char* field = difference(stamp, *decoded)) {
    fail("a stamped config decodes to the config parsed", field);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      raw_mode(rest);
      break;
    case 1:
      payload_mode(rest);
      break;
    default:
      config_mode(rest);
      break;
  }
  return 0;
}
