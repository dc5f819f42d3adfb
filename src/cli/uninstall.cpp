#include <CLI/CLI.hpp>

#include "pyshim/cli.hpp"

namespace pyshim::cli {

void setup_uninstall(CLI::App& app, Context& context) {
  auto* sub = app.add_subcommand("uninstall", "(not yet implemented)");
  sub->callback([&context] { context.exit_code = 1; });
}

}  // namespace pyshim::cli
