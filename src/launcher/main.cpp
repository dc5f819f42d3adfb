// pyshim-launcher: whatever name it is started by, it is a launcher. The
// management CLI is a separate binary (src/tool/), so nothing here can turn
// `realpath(sys.executable)` into the CLI.
#include <unistd.h>

#include <cstdio>

#include "launcher.hpp"

// A launch starts at pyshim_entry (entry.cpp), which takes the common case
// (the hot path) before libc is even initialised. Any other launch comes
// here, through glibc's _start: the general path runs from .preinit_array,
// after libc is initialised, before any C++ static constructor. libstdc++'s
// own (locale facets, the exception emergency pool, which mallocs 70 KiB)
// would otherwise run in every launch and fault in their pages; the launcher
// uses nothing they set up (no iostreams, only function-local statics). It
// never returns: it becomes the interpreter, or leaves with _exit().
static void launch_before_static_init(int argc, char** argv, char** envp) {
  int status = pyshim::launcher_main(argc, argv, envp);
  // Not exit(): exit handlers would tear down what static initialisation
  // never built.
  std::fflush(nullptr);
  _exit(status);
}

__attribute__((section(".preinit_array"),
               used)) static void (*const preinit)(int, char**, char**) = launch_before_static_init;

int main() {
  return 125;  // not reached: the launcher ran from .preinit_array
}
