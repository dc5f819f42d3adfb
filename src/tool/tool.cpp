// Tool mode: `pyshim <subcommand>`. Each subcommand lives in its own file
// (setup_x/run_x); this file only wires them together.
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include <CLI/CLI.hpp>

#include "pyshim/cli.hpp"
#include "pyshim/os.hpp"

#ifndef PYSHIM_VERSION
#error "PYSHIM_VERSION must be defined by the build"
#endif

namespace pyshim {
namespace cli {

int report(const Error& error) {
  std::string text = format_error(error);
  std::fwrite(text.data(), 1, text.size(), stderr);
  return error.exit_code;
}

std::string default_launcher() {
  if (::access(".venv/bin/python", F_OK) == 0) return ".venv/bin/python";
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "";
  while (!dirs.empty()) {
    std::size_t colon = dirs.find(':');
    std::string candidate(dirs.substr(0, colon));
    candidate += "/python";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return {};
}

int tool_main(int argc, char** argv) {
  CLI::App app{
      "pyshim: a static launcher that stands in for the Python interpreter.\n"
      "Installed as a venv's bin/python it sets LD_PRELOAD / LD_LIBRARY_PATH from\n"
      "pyshim.toml for every interpreter started through it, workers included, and\n"
      "gives non-Python children the caller's environment back.",
      "pyshim"};
  app.set_version_flag("--version", "pyshim " PYSHIM_VERSION);
  app.require_subcommand(0, 1);
  app.footer(
      "Examples:\n"
      "  pyshim init .venv --python /usr/bin/python3.11 --preload jemalloc\n"
      "  pyshim install .venv --preload asan\n"
      "  pyshim show .venv/bin/python --json\n"
      "  pyshim doctor .venv/bin/python\n"
      "  pyshim uninstall .venv\n"
      "\n"
      "The launcher itself is a separate binary (lib/pyshim/pyshim-launcher) that\n"
      "install copies into each venv. See README.md for the pyshim.toml reference.");

  Context context;
  setup_init(app, context);
  setup_install(app, context);
  setup_uninstall(app, context);
  setup_show(app, context);
  setup_doctor(app, context);
  setup_dynlib(app, context);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with status 0; the rest are usage
    // errors, which pyshim reports as 2 whatever CLI11's own code.
    return app.exit(e) == 0 ? 0 : kExitUsage;
  } catch (const std::filesystem::filesystem_error& e) {
    // The subcommands check what they expect to fail; this is the net for
    // the rest (a full disk, a file appearing under us).
    return report(Error{kExitUsage,
                             e.what(),
                             {},
                             "fix the cause and run the command again; install and uninstall "
                             "can be re-run safely"});
  }
  if (app.get_subcommands().empty()) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  }
  return context.exit_code;
}

}  // namespace cli
}  // namespace pyshim
