// `pyshim doctor --extensions` and install's warnings: the shared objects of
// a venv's site-packages, read (never run) and checked against what the
// launcher gives the interpreter. The decisions are in
// src/core/extensions.cpp; this file finds and reads the files.
#pragma once

#include <string>
#include <vector>

#include "pyshim/error.hpp"
#include "pyshim/explain.hpp"
#include "pyshim/extensions.hpp"

namespace pyshim::cli {

struct ExtensionScan {
  std::vector<std::string> site_dirs;  // the site-packages folders read
  std::size_t objects = 0;             // shared objects read
  std::vector<ExtensionFinding> findings;
};

struct ExtensionRequest {
  std::string venv;                       // the venv whose site-packages are read
  std::string interpreter;                // the real interpreter the launcher starts
  std::vector<std::string> preloads;      // absolute, in LD_PRELOAD order
  std::vector<std::string> library_path;  // absolute, as the launcher sets it
  std::vector<std::string> candidates;    // --layer-candidates venvs
};

// Site-packages are found by path (VENV/lib*/*/site-packages), not by
// asking the interpreter: nothing of the venv runs, whoever runs this.
Result<ExtensionScan> scan_extensions(const ExtensionRequest& request);

// doctor's checks: "extension_runtime" and "extension_libraries", one per
// finding (at most kMaxFindings of each, then a summary), or one passing
// check each.
std::vector<Check> extension_checks(const ExtensionScan& scan);

// install's and init's warnings (never an error): "" when nothing is found.
std::string extension_warnings(const ExtensionScan& scan);

}  // namespace pyshim::cli
