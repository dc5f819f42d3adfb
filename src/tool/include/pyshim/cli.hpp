// Tool mode subcommands, one file each under src/tool/ (CLI11's
// subcom_in_files pattern): setup_x() declares the subcommand and its
// options; its callback runs run_x() and stores the exit code.
#pragma once

#include <string>
#include <vector>

#include "pyshim/error.hpp"

namespace CLI {
class App;
}

namespace pyshim::cli {

using ::pyshim::Error;

struct Context {
  int exit_code = 0;
};

void setup_init(CLI::App& app, Context& context);
void setup_install(CLI::App& app, Context& context);
void setup_uninstall(CLI::App& app, Context& context);
void setup_show(CLI::App& app, Context& context);
void setup_doctor(CLI::App& app, Context& context);
void setup_dynlib(CLI::App& app, Context& context);
void setup_launcher(CLI::App& app, Context& context);
void setup_entrypoint(CLI::App& app, Context& context);

// The launcher `show` and `doctor` look at when none is given:
// ./.venv/bin/python if it exists, else `python` on PATH ("" if neither).
std::string default_launcher();

// Prints a formatted error to stderr and returns its exit code.
int print_error(const Error& error);
// print_error(), and for --json also the error as a JSON document on stdout
// (error_json in explain.hpp), so a script reading stdout gets a reason too.
int print_error(const Error& error, bool json);

// Declares the whole CLI on app: its name, text and every subcommand. The
// man pages and the bash completion are generated from it at build time
// (packaging/), so they list what --help lists.
void setup_app(CLI::App& app, Context& context);

// The whole CLI: parses argv, runs one subcommand, returns the exit code.
int tool_main(int argc, char** argv);

}  // namespace pyshim::cli
