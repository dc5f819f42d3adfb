// Writes the stamp fuzzer's raw-* and payload-* seeds from its config-*
// seeds, in the current stamp format (run it after a format change):
//   c++ -std=c++20 -Isrc/core/include -DFMT_HEADER_ONLY=1 -DTOML_HEADER_ONLY=1 \
//     -DTOML_EXCEPTIONS=0 tests/fuzz/make_stamp_corpus.cpp build/libpyshim_core.a \
//     -o /tmp/make_stamp_corpus
//   /tmp/make_stamp_corpus tests/fuzz/corpus/stamp
// The identity and version are the ones stamp_fuzz.cpp's config mode uses.
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "pyshim/stamp.hpp"

namespace fs = std::filesystem;

static std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

static void write(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  fs::path dir = argv[1];
  constexpr std::size_t kHeader = sizeof(pyshim::StampHeader);
  std::string example;  // raw-readme-example: the README's config
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (!name.starts_with("config-")) continue;
    std::string text = read(entry.path()).substr(1);
    auto config = pyshim::parse_config(text, "/fuzz/pyshim.toml");
    if (!config) {
      std::fprintf(stderr, "%s: %s\n", name.c_str(), config.error().message.c_str());
      return 1;
    }
    pyshim::Stamp stamp;
    stamp.source = "/fuzz/pyshim.toml";
    stamp.identity = {0x801, 1234567, text.size(), 1700000000123456789, 1700000000987654321};
    stamp.restore_library = "/fuzz/lib/pyshim/libpyshim-restore.so";
    stamp.config = *config;
    auto area = pyshim::encode_stamp(stamp, "0.1.0");
    if (!area) return 1;
    pyshim::StampHeader h;
    __builtin_memcpy(&h, area->data(), sizeof h);
    std::string raw = std::string(1, '\0') + area->substr(0, kHeader + h.length);
    std::string payload = std::string(1, '\1') + std::string(h.version, sizeof h.version) +
                          area->substr(kHeader, h.length);
    std::string base = name.substr(7);
    write(dir / ("raw-" + base), raw);
    write(dir / ("payload-" + base), payload);
    if (base == "readme-example") example = raw;
  }
  if (example.empty()) return 1;
  // Damaged variants of raw-readme-example, and the edges of the payload reader.
  auto patched = [&](std::size_t offset, char byte) {
    std::string out = example;
    out[1 + offset] = byte;
    return out;
  };
  write(dir / "raw-damaged-format", patched(offsetof(pyshim::StampHeader, format), 1));
  write(dir / "raw-damaged-length", patched(offsetof(pyshim::StampHeader, length) + 1, 0x7f));
  write(dir / "raw-damaged-magic", patched(1, 'X'));
  write(dir / "raw-damaged-checksum", patched(offsetof(pyshim::StampHeader, checksum) + 3, 1));
  write(dir / "raw-truncated-header", example.substr(0, 21));
  std::string empty = pyshim::empty_stamp_area("0.1.0");
  write(dir / "raw-unstamped", std::string(1, '\0') + empty.substr(0, 64));
  std::string payload = read(dir / "payload-readme-example");
  write(dir / "payload-truncated", payload.substr(0, 193));
  write(dir / "payload-trailing-byte", payload + "x");
  return 0;
}
