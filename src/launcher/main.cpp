// pyshim-launcher: whatever name it is started by, it is a launcher. The
// management CLI is a separate binary (src/tool/), so nothing here can turn
// `realpath(sys.executable)` into the CLI.
#include "launcher.hpp"

int main(int argc, char** argv, char** envp) {
  return pyshim::launcher_main(argc, argv, envp);
}
