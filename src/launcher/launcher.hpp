#pragma once

#include <array>
#include <string_view>

#include "pyshim/stamp.hpp"

// The stamp area of this image (image.cpp defines it).
extern "C" const std::array<char, pyshim::kStampCapacity> pyshim_stamp_area;

namespace pyshim {

// Never returns on success: it becomes the interpreter.
int launcher_main(int argc, char** argv, char** envp);

// This image's stamp area (see pyshim/stamp.hpp and image.cpp).
std::string_view own_stamp_area();

}  // namespace pyshim
