#include <cstring>

#include "pyshim/main.hpp"

namespace pyshim {

bool is_tool_invocation(int argc, char** argv) {
  const char* name = argc > 0 && argv[0] != nullptr ? argv[0] : "";
  if (const char* slash = std::strrchr(name, '/')) name = slash + 1;
  return std::strcmp(name, "pyshim") == 0;
}

}  // namespace pyshim
