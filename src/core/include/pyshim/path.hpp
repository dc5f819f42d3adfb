// Path strings, lexically (no file system): one definition for every part.
#pragma once

#include <string>
#include <string_view>

namespace pyshim {

// The folder part as dirname(1) has it: trailing slashes ignored, "." for a
// bare name, "/" for a name in the root.
std::string dirname(std::string_view path);

// The part after the last '/' (a view into path).
std::string_view basename(std::string_view path);

}  // namespace pyshim
