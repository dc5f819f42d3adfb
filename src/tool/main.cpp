// pyshim: the management CLI (DESIGN.md section 7).
#include "pyshim/cli.hpp"

int main(int argc, char** argv) {
  return pyshim::cli::tool_main(argc, argv);
}
