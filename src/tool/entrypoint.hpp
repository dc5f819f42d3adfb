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

}  // namespace pyshim::cli
