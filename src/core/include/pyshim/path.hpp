// Path strings, lexically (no file system): one definition for every part.
// What needs the disk (realpath, the cwd, stat) is the OS layer's
// (pyshim/os.hpp: real_path, absolute_path, stat_path).
#pragma once

#include <string>
#include <string_view>

namespace pyshim {

// The folder part as dirname(1) has it: trailing slashes ignored, "." for a
// bare name, "/" for a name in the root.
std::string dirname(std::string_view path);

// The part after the last '/' (a view into path).
std::string_view basename(std::string_view path);

// dir + "/" + name, without doubling a '/' dir already ends with; name
// alone when dir is empty (a path relative to a folder, as plans use them).
std::string join(std::string_view dir, std::string_view name);

// Collapses "//", "/./" and "/../" the way os.path.abspath does, so a
// launcher given as "venv/../venv/bin/python" still matches sys.executable;
// "." for an empty result.
std::string lexically_normal(std::string_view path);

}  // namespace pyshim
