#include "pyshim/venv.hpp"
#include "pyshim/path.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

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

std::string toml_quote(std::string_view text) {
  std::ostringstream out;
  out << toml::value<std::string>(std::string(text));
  return out.str();
}

std::string render_config(const ConfigSpec& spec) {
  std::string out =
      "# pyshim.toml: read by the pyshim launcher (this venv's bin/python) at every\n"
      "# interpreter start. Reference: pyshim's README, section \"Config: pyshim.toml\".\n"
      "# Check it with `pyshim doctor`, see the launch it gives with `pyshim show`.\n";
  for (const std::string& note : spec.notes) out += fmt::format("# {}\n", note);
  out += "\n# The real interpreter.\n";
  out += fmt::format("interpreter = {}\n", toml_quote(spec.interpreter));
  out +=
      "\n# Preloaded into every interpreter started through this launcher, workers\n"
      "# included; removed again for non-Python children.\n";
  out += "preload = [";
  for (std::size_t i = 0; i < spec.preload.size(); ++i) {
    out += fmt::format("{}\n  {}", i == 0 ? "" : ",", toml_quote(spec.preload[i]));
  }
  out += spec.preload.empty() ? "]\n" : ",\n]\n";
  out += "\n# Searched for shared libraries, in this order.\n";
  out += "library_path = [";
  for (std::size_t i = 0; i < spec.library_path.size(); ++i) {
    out += fmt::format("{}\n  {}", i == 0 ? "" : ",", toml_quote(spec.library_path[i]));
  }
  out += spec.library_path.empty() ? "]\n" : ",\n]\n";
  out += fmt::format(
      "# \"prepend\": before the caller's LD_LIBRARY_PATH; \"append\": after it.\n"
      "library_path_position = \"{}\"\n",
      spec.library_path_position == Position::kAppend ? "append" : "prepend");
  out +=
      "\n# Set for the interpreter and inherited by all its children. NAME = { prepend = \"v\" }\n"
      "# gives v:<caller's value>, { append = \"v\" } <caller's value>:v (README,\n"
      "# \"[env] that adds to the caller's value\").\n"
      "[env]\n";
  for (const EnvSetting& var : spec.env) {
    const std::string& name = var.name;
    bool bare = !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
      return std::isalnum(c) || c == '_' || c == '-';
    });
    std::string key = bare ? name : toml_quote(name);
    if (var.mode == EnvMode::kSet) {
      out += fmt::format("{} = {}\n", key, toml_quote(var.value));
    } else {
      out +=
          fmt::format("{} = {{ {} = {} }}\n", key, env_mode_name(var.mode), toml_quote(var.value));
    }
  }
  if (!spec.startup.empty() || !spec.python_path.empty()) {
    out +=
        "\n# Called in every interpreter started through this launcher, before the main\n"
        "# module (not with -S). `path` folders go on sys.path before the imports.\n"
        "[python]\n";
    auto list = [&out](std::string_view key, const std::vector<std::string>& items) {
      out += fmt::format("{} = [", key);
      for (std::size_t i = 0; i < items.size(); ++i) {
        out += fmt::format("{}{}", i == 0 ? "" : ", ", toml_quote(items[i]));
      }
      out += "]\n";
    };
    list("startup", spec.startup);
    list("path", spec.python_path);
  }
  if (!spec.dynlib_exclude.empty()) {
    out +=
        "\n# Files `pyshim dynlib` leaves out: globs relative to site-packages, ** for\n"
        "# any folders.\n[dynlib]\nexclude = [";
    for (std::size_t i = 0; i < spec.dynlib_exclude.size(); ++i) {
      out += fmt::format("{}{}", i == 0 ? "" : ", ", toml_quote(spec.dynlib_exclude[i]));
    }
    out += "]\n";
  }
  return out;
}

}  // namespace pyshim
