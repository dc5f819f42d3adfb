// `pyshim doctor --extensions`: what the shared objects of a venv's
// site-packages need from the loader, checked against what the launcher
// gives the interpreter, before a worker dies of it. Pure: the tool reads
// the files (src/tool/extensions.cpp); the loader's search order is
// modelled here, as glibc's elf/dl-load.c runs it for one DT_NEEDED entry:
// DT_RPATH (only when the object has no DT_RUNPATH), LD_LIBRARY_PATH,
// DT_RUNPATH, the loader cache, the default folders; a name holding '/' is
// a path; a name already loaded (by SONAME) is not searched for at all.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pyshim/elf.hpp"

namespace pyshim {

// One shared object found under site-packages, with what its dynamic
// section says.
struct LinkedObject {
  std::string path;      // absolute, as found
  std::string real_dir;  // realpath of its folder: what $ORIGIN expands to
  std::string label;     // path relative to site-packages, for messages
  DynamicInfo dynamic;
};

// One loader-cache entry (/etc/ld.so.cache).
struct CacheEntry {
  std::string name;  // the soname the cache maps
  std::string path;
  std::int32_t flags = 0;
};

// The entries of a glibc loader cache ("glibc-ld.so.cache1.1", alone or
// after the old "ld.so-1.7.0" table). Nothing when the bytes are not one.
std::vector<CacheEntry> parse_loader_cache(std::string_view bytes);

// Whether a cache entry's flags say it is for objects of this class and
// machine (glibc's FLAG_X8664_LIB64 and the like).
bool cache_entry_fits(const CacheEntry& entry, const ElfInfo& interpreter);

// The folders the loader searches last, for the interpreter's machine.
std::vector<std::string> default_library_dirs(const ElfInfo& interpreter);

// What the loader would see when the launcher starts the interpreter.
struct LoaderFacts {
  ElfInfo interpreter;                    // class and machine objects must match
  std::vector<std::string> library_path;  // LD_LIBRARY_PATH as the launcher sets it
  std::vector<std::string> cache;         // paths from the loader cache that fit
  std::vector<std::string> default_dirs;
  std::vector<std::string> loaded;  // sonames (and file names) loaded before any import
  std::function<bool(const std::string&)> has_file;  // a regular file the loader could open
};

// Where the loader would find `name`, needed by `object`, or nullopt.
std::optional<std::string> resolve_needed(const LinkedObject& object, const std::string& name,
                                          const LoaderFacts& loader);

// A venv the user offered as a lower layer (`--layer-candidates`), with the
// libraries it holds by file name and SONAME.
struct LayerLibrary {
  std::string name;  // file name, and SONAME when it differs (one entry each)
  std::string path;
  bool in_dynlib = false;  // linked in the layer's share/venv/dynlib (what --layer searches)
};
struct LayerCandidate {
  std::string venv;
  bool on_library_path = false;  // its dynlib folder is already configured
  std::vector<LayerLibrary> libraries;
};

struct ExtensionFinding {
  enum class Kind {
    kRuntime,  // a sanitizer runtime not preloaded, or not first
    kLibrary,  // a DT_NEEDED the loader would not find
    kForeign,  // another ELF class or machine than the interpreter
  };
  Kind kind = Kind::kLibrary;
  std::string object;  // label of the object
  std::string problem;
  std::string fix;
};

struct ExtensionInputs {
  std::vector<LinkedObject> objects;
  std::vector<std::string> preloads;  // configured, in LD_PRELOAD order
  LoaderFacts loader;
  std::vector<LayerCandidate> candidates;
  std::string venv;  // for the fix commands
};

// Every finding, objects in the order given.
std::vector<ExtensionFinding> check_extensions(const ExtensionInputs& inputs);

// The preset or library a sanitizer import calls for: "__asan_init" ->
// ("asan", "libasan.so"); nullopt for an unknown name.
struct SanitizerRuntime {
  std::string_view preset;
  std::string_view library_prefix;      // gcc's runtime: libasan.so.8
  std::string_view clang_library_part;  // clang's: libclang_rt.asan-x86_64.so
};
std::optional<SanitizerRuntime> sanitizer_runtime(std::string_view import);

}  // namespace pyshim
