// `pyshim dynlib`: which files of a venv's site-packages are shared libraries
// (as opposed to Python extension modules), the folder of links that names
// them for the loader of a layer above, and what must change to bring that
// folder up to date. Pure: src/tool/dynlib.cpp walks the disk, reads the ELF
// files and asks the interpreter; the decisions are made here.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "pyshim/error.hpp"

namespace pyshim {

// Relative to the venv; `pyshim install --layer` puts it on library_path.
inline constexpr std::string_view kDynlibDir = "share/venv/dynlib";

// A glob over '/'-separated paths: `*`, `?` and `[...]` stay within one
// component; a component that is exactly `**` matches any number of
// components, none included.
bool glob_match(std::string_view pattern, std::string_view path);

// A file name the loader could be asked for: libfoo.so, libfoo.so.1.2.
bool is_shared_object_name(std::string_view name);

// The interpreter's EXTENSION_SUFFIXES ending a file name decide whether
// `import` would load it. Only the bare ".so" is ambiguous: packages ship
// plain libraries under that name too.
enum class NameKind {
  kOther,           // not a shared object name
  kExtension,       // ends with a tagged suffix (.cpython-311-x86_64-linux-gnu.so, .abi3.so)
  kMaybeExtension,  // ends with a bare suffix (".so"): an extension iff it exports PyInit_<name>
  kLibrary,         // a shared object name no suffix claims (libfoo.so.1)
};
NameKind classify_name(std::string_view file_name, const std::vector<std::string>& suffixes);

// PyInit_<module>: what `import module` looks up; module is the file name up
// to its first dot.
std::string init_symbol(std::string_view file_name);

// A shared object found under a site-packages folder.
struct SharedObject {
  std::string site_dir;   // absolute
  std::string rel_path;   // relative to site_dir, as found (symlinks not resolved)
  std::string identity;   // equal for two paths that are the same file (e.g. "dev:ino")
  bool loadable = false;  // an ELF shared object (ET_DYN) this machine could read
  std::string soname;     // DT_SONAME, "" when it has none
  std::vector<std::string> init_symbols;  // the PyInit_* symbols it exports

  std::string path() const { return site_dir + "/" + rel_path; }
};

bool is_extension_module(const SharedObject& object, const std::vector<std::string>& suffixes);

struct ExcludeGlob {
  std::string glob;    // relative to site-packages, or absolute
  std::string origin;  // "--exclude" or "pyshim.toml:12:3"
};

// The first glob that matches the object's path or one of its folders.
const ExcludeGlob* find_exclude(const std::vector<ExcludeGlob>& excludes,
                                const SharedObject& object);

struct DynlibLink {
  std::string name;    // file name in the dynlib folder
  std::string target;  // the symlink's contents
  std::string source;  // the library's absolute path
};

struct Excluded {
  std::string path;
  ExcludeGlob by;
};

struct DynlibSelection {
  std::vector<DynlibLink> links;  // sorted by name
  std::vector<Excluded> excluded;
};

struct DynlibInputs {
  std::string venv;         // absolute
  std::string config_file;  // VENV/pyshim.toml, "" when the venv has none (not a shim venv)
  std::vector<std::string> suffixes;
  std::vector<SharedObject> objects;
  std::vector<ExcludeGlob> excludes;
  // Byte-identical files under one name are not a clash (two packages
  // vendoring the same build); deciding that reads both files, so only
  // names that collide ask.
  std::function<bool(const SharedObject&, const SharedObject&)> same_contents;
};

// The links the dynlib folder should hold: each library by file name, and by
// SONAME when that differs. Two different files wanting one name are an
// error listing every path, with the --exclude / [dynlib] exclude to fix it.
Result<DynlibSelection> select_dynlib(const DynlibInputs& inputs);

// The symlink contents for a library: relative to <venv>/share/venv/dynlib
// when the library lies inside the venv (the link then survives the venv
// being moved or mounted elsewhere), else the absolute path.
std::string link_target(std::string_view venv, std::string_view library);

struct DynlibEntry {
  std::string name;
  bool symlink = false;
  std::string target;  // symlink contents
};

struct DynlibChange {
  enum class Kind { kAdd, kChange, kRemove };
  Kind kind = Kind::kAdd;
  std::string name;
  std::string target;      // kAdd, kChange: the new contents
  std::string old_target;  // kChange, kRemove
};

// What turns the folder's current entries into the wanted links: every
// symlink that is not wanted goes (the folder is pyshim's; its target may be
// gone, excluded or renamed); entries that are not symlinks are left alone,
// unless a link needs their name, which is an error.
Result<std::vector<DynlibChange>> diff_dynlib(const std::vector<DynlibLink>& wanted,
                                              const std::vector<DynlibEntry>& existing,
                                              std::string_view dynlib_dir);

}  // namespace pyshim
