// pyshim doctor: (being written)
#include <CLI/CLI.hpp>

#include "pyshim/cli.hpp"

namespace pyshim::cli {

void setup_doctor(CLI::App& app, Context& context) {
  auto* sub = app.add_subcommand("doctor", "(not yet implemented)");
  sub->callback([&context] { context.exit_code = 1; });
}

}  // namespace pyshim::cli
