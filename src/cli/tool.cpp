// Tool mode: `pyshim <subcommand>`. One file per subcommand (setup_x/run_x);
// this file only wires them together.
#include <CLI/CLI.hpp>

#include "pyshim/main.hpp"

#ifndef PYSHIM_VERSION
#error "PYSHIM_VERSION must be defined by the build"
#endif

namespace pyshim {

int tool_main(int argc, char** argv) {
  CLI::App app{
      "pyshim: a static launcher that stands in for the Python interpreter.\n"
      "Installed as a venv's bin/python it sets LD_PRELOAD / LD_LIBRARY_PATH from\n"
      "pyshim.toml for every interpreter started through it, workers included, and\n"
      "restores the caller's values for non-Python children.",
      "pyshim"};
  app.set_version_flag("--version", "pyshim " PYSHIM_VERSION);
  app.footer(
      "Invoked under any other name (e.g. as bin/python) it is the launcher.\n"
      "See README.md for the config reference.");
  CLI11_PARSE(app, argc, argv);
  if (argc == 1) {
    std::cout << app.help();
  }
  return 0;
}

}  // namespace pyshim
