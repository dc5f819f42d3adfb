// `pyshim entrypoint` scripts, and how show and doctor find the launcher
// behind one.
#pragma once

#include <optional>
#include <string>

namespace pyshim::cli {

// The launcher a `#!` script runs: the path on its #! line, or for the
// /bin/sh form `pyshim entrypoint` writes when that line cannot hold it,
// the path its exec line names. nullopt when path is not a #! script.
std::optional<std::string> script_launcher(const std::string& path);

// What show and doctor look at for `path`: path itself when it is a pyshim
// launcher (or not a script), else the launcher its #! line runs when that
// is one; `via` is then set to path.
std::string launcher_behind(const std::string& path, std::string* via);

}  // namespace pyshim::cli
