#include "pyshim/venv.hpp"
#include "pyshim/path.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

namespace pyshim {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool is_version_suffix(std::string_view s) {
  // "", "3", "3.11"
  if (s.empty()) return true;
  bool dot = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '.') {
      if (dot || i == 0 || i + 1 == s.size()) return false;
      dot = true;
    } else if (!std::isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::map<std::string, std::string> parse_pyvenv_cfg(std::string_view text) {
  std::map<std::string, std::string> out;
  while (!text.empty()) {
    std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string key(trim(line.substr(0, eq)));
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    out[key] = std::string(trim(line.substr(eq + 1)));
  }
  return out;
}

bool is_interpreter_name(std::string_view name) {
  for (std::string_view stem : {"python", "pypy"}) {
    if (name.starts_with(stem) && is_version_suffix(name.substr(stem.size()))) return true;
  }
  return false;
}

std::optional<std::string> find_in_ldconfig(std::string_view listing, std::string_view soname,
                                            std::string_view abi_tag) {
  // "\tlibjemalloc.so.2 (libc6,x86-64) => /lib/x86_64-linux-gnu/libjemalloc.so.2"
  while (!listing.empty()) {
    std::size_t end = listing.find('\n');
    std::string_view line = trim(listing.substr(0, end));
    listing.remove_prefix(end == std::string_view::npos ? listing.size() : end + 1);
    std::size_t space = line.find(' ');
    std::size_t arrow = line.find(" => ");
    if (space == std::string_view::npos || arrow == std::string_view::npos) continue;
    if (line.substr(0, space) != soname) continue;
    std::string_view tags = line.substr(space, arrow - space);
    bool tag_ok = abi_tag.empty()
                      ? tags.find(',') == std::string_view::npos
                      : tags.find(fmt::format(",{})", abi_tag)) != std::string_view::npos;
    if (tag_ok) return std::string(trim(line.substr(arrow + 4)));
  }
  return std::nullopt;
}

const std::vector<Preset>& presets() {
  static const std::vector<Preset> table = {
      {"asan", "libasan.so", true, "libasan8 (with gcc)"},
      {"ubsan", "libubsan.so", true, "libubsan1 (with gcc)"},
      {"tsan", "libtsan.so", true, "libtsan2 (with gcc)"},
      {"jemalloc", "libjemalloc.so.2", false, "libjemalloc2"},
      {"tcmalloc", "libtcmalloc_minimal.so.4", false, "libtcmalloc-minimal4"},
      {"mimalloc", "libmimalloc.so.2", false, "libmimalloc2.0"},
  };
  return table;
}

const Preset* find_preset(std::string_view name) {
  for (const Preset& preset : presets()) {
    if (preset.name == name) return &preset;
  }
  return nullptr;
}

bool is_sanitizer_runtime(std::string_view path) {
  std::string_view base = basename(path);
  for (std::string_view prefix : {"libasan.", "libhwasan.", "libtsan.", "libubsan.",
                                  "libclang_rt.asan", "libclang_rt.tsan", "libclang_rt.ubsan"}) {
    if (base.starts_with(prefix)) return true;
  }
  return false;
}

}  // namespace pyshim
