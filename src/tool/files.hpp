// File helpers shared by the tool-mode subcommands (never the launcher).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pyshim/os.hpp"
#include "pyshim/root_trust.hpp"

namespace pyshim::cli {

// read_regular (one reader of regular files) is in pyshim/os.hpp.

// The whole file, or "" if it cannot be read or is not a regular file (a
// FIFO or device is not waited on). follow_links = false: a link there is
// not followed ("" too).
std::string read_text(const std::filesystem::path& path, bool follow_links = true);

}  // namespace pyshim::cli

namespace pyshim {
class Dir;  // pyshim/dir.hpp (the OS layer)
}  // namespace pyshim

namespace pyshim::cli {

// Who root runs a program as (decide_run_as in src/core/include/pyshim/root_trust.hpp,
// the one rule), with the facts gathered here. Not root: as this process,
// and nothing is examined.
//
// For a program of the venv at root (bin/python: a pyshim launcher or the
// venv's interpreter), what the process loads from: everything in the venv
// (site.py runs its .pth files), the program with its links followed (a
// plain venv's bin/python names the base interpreter), the folder
// pyvenv.cfg's `home` names, and, when the program is a pyshim launcher,
// what that launch loads: its config, interpreter, preloads, library
// folders (layers' share/venv/dynlib among them), restore library and
// [python] path folders (where hook modules are imported from). Run as the
// venv folder's owner (nobody when root owns it) when any of it is not
// root's alone.
RunAs venv_program_run_as(const Dir& root, const std::string& program);

// The same for a launcher named by path (doctor's round trip): the venv is
// the folder two levels up when it holds a pyvenv.cfg; a launcher outside
// any venv runs as its folder's owner when it drops root.
RunAs launcher_run_as(const std::string& launcher);

// For root running an interpreter directly that it was given on the
// command line (init's `PY -m venv`): the interpreter and its installation.
// root_only when this process is not root.
RootTrust interpreter_trust(const std::string& interpreter);

// For the interpreter run directly with -I on a file of the venv at root
// (byte-compiling the hook module): the interpreter and its installation,
// the folders the file and its __pycache__ are in, and the file.
RunAs interpreter_run_as(const Dir& root, const std::string& interpreter, const std::string& file);

// Everything that changes a venv goes through pyshim/dir.hpp (directory fds,
// no links followed, atomic and durable writes).

}  // namespace pyshim::cli
