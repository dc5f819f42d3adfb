// Pure helpers for `pyshim install/init`: reading pyvenv.cfg, recognising
// interpreter names in a venv's bin/, the loader cache listing, presets.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pyshim/config.hpp"

namespace pyshim {

// key = value lines; keys lower-cased and trimmed, as CPython's site.py reads it.
std::map<std::string, std::string> parse_pyvenv_cfg(std::string_view text);

// python, python3, python3.11, pypy, pypy3, pypy3.9 (not python3-config, ...).
bool is_interpreter_name(std::string_view name);

// The path `ldconfig -p` lists for soname on this machine's ABI tag (e.g.
// "x86-64"; empty tag accepts the first entry without one).
std::optional<std::string> find_in_ldconfig(std::string_view listing, std::string_view soname,
                                            std::string_view abi_tag);

struct Preset {
  std::string_view name;
  std::string_view library;  // soname (loader cache) or toolchain file name
  bool from_toolchain;       // resolved with `gcc -print-file-name=`
  std::string_view package;  // the Debian package that provides it
};

// jemalloc, tcmalloc, mimalloc, asan, ubsan, tsan; nullptr if unknown.
const Preset* find_preset(std::string_view name);
const std::vector<Preset>& presets();

// Sanitizer runtimes must come first in LD_PRELOAD (ASan checks it).
bool is_sanitizer_runtime(std::string_view path);

// render_config and toml_quote: pyshim/config.hpp (the key table writes a
// pyshim.toml as it reads one).

}  // namespace pyshim
