// pyshim: the management CLI (the README).
#include "pyshim/cli.hpp"

namespace {

// Recognised by `pyshim install` as "not an interpreter" (pyshim::kToolNote);
// a .note section lands in the first page.
struct ToolNote {
  unsigned namesz = 7, descsz = 8, type = 2;
  char name[8] = {'p', 'y', 's', 'h', 'i', 'm', 0, 0};
  char desc[8] = {'t', 'o', 'o', 'l', 'm', 'o', 'd', 'e'};
};
__attribute__((section(".note.pyshim"), used, aligned(4))) const ToolNote kNote{};

}  // namespace

int main(int argc, char** argv) {
  return pyshim::cli::tool_main(argc, argv);
}
