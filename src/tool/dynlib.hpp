// Shared by `pyshim dynlib` and `pyshim install --layer` (which brings the
// venv's own dynlib folder up to date, since its library_path names it).
#pragma once

#include <string>
#include <vector>

#include "pyshim/dynlib.hpp"
#include "pyshim/error.hpp"

namespace pyshim::cli {

struct DynlibReport {
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
Result<DynlibReport> sync_dynlib(const std::string& venv, const std::vector<std::string>& excludes,
                                 bool apply);

// What changed (or, with would, what would change), one line each.
std::string format_dynlib(const DynlibReport& report, bool would);

}  // namespace pyshim::cli
