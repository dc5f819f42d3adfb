#pragma once

#include <string_view>

namespace pyshim {

// Never returns on success: it becomes the interpreter.
int launcher_main(int argc, char** argv, char** envp);

// This image's stamp area (see pyshim/stamp.hpp and image.cpp).
std::string_view own_stamp_area();

}  // namespace pyshim
