// Shared by `pyshim dynlib` and `pyshim install --layer` (which brings the
// venv's own dynlib folder up to date, since its library_path names it).
#pragma once

#include <string>
#include <vector>

#include "pyshim/dynlib.hpp"
#include "pyshim/error.hpp"
#include "pyshim/process.hpp"

namespace pyshim {
class Dir;  // pyshim/dir.hpp (the OS layer)
}  // namespace pyshim

namespace pyshim::cli {

class Progress;

struct DynlibSync {
  std::string venv;
  std::string dir;           // VENV/share/venv/dynlib
  bool dir_missing = false;  // before this run
  std::vector<DynlibLink> links;
  std::vector<DynlibChange> changes;
  std::vector<Excluded> excluded;

  bool up_to_date() const { return !dir_missing && changes.empty(); }
};

// Computes the links VENV/share/venv/dynlib should hold (asking the venv's
// interpreter for its extension suffixes and site-packages, honouring
// [dynlib] exclude of VENV/pyshim.toml and the extra globs), compares them
// with the folder, and with apply brings the folder up to date.
// root is the venv, opened and locked by the caller (VenvLock); failures to
// change the folder throw, as everything written through a Dir does.
Result<DynlibSync> sync_dynlib(const Dir& root, const std::vector<std::string>& excludes,
                               bool apply, const Progress& progress);

// What changed (or, with would, what would change), one line each.
std::string format_dynlib(const DynlibSync& sync, bool would);

}  // namespace pyshim::cli
