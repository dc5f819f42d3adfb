// Tool mode: `pyshim <subcommand>`. Each subcommand lives in its own file
// (setup_x/run_x); this file only wires them together.

#include <cstdio>
#include <filesystem>
#include <optional>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "log.hpp"
#include "pyshim/cli.hpp"
#include "pyshim/config.hpp"
#include "pyshim/dir.hpp"
#include "pyshim/explain.hpp"
#include "pyshim/launch.hpp"
#include "pyshim/os.hpp"

#ifndef PYSHIM_VERSION
#error "PYSHIM_VERSION must be defined by the build"
#endif

namespace pyshim {
namespace cli {

int print_error(const Error& error) {
  std::string text = format_error(error);
  std::fwrite(text.data(), 1, text.size(), stderr);
  return error.exit_code();
}

int print_error(const Error& error, bool json) {
  if (json) {
    std::string text = error_json(error);
    std::fwrite(text.data(), 1, text.size(), stdout);
  }
  return print_error(error);
}

std::string default_launcher() {
  if (stat_path(".venv/bin/python")) return ".venv/bin/python";
  return search_path("python", std::getenv("PATH")).value_or("");
}

namespace {

// "pyshim install" for a subcommand, "pyshim" for the app itself.
std::string command_path(const CLI::App& app) {
  const CLI::App* parent = app.get_parent();
  return parent == nullptr ? app.get_name() : command_path(*parent) + " " + app.get_name();
}

std::vector<std::string> option_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* option : app.get_options()) {
    for (const std::string& name : option->get_lnames()) names.push_back("--" + name);
    for (const std::string& name : option->get_snames()) names.push_back("-" + name);
  }
  return names;
}

Error unknown_option(const CLI::App& app, std::string_view option) {
  std::vector<std::string> valid = option_names(app);
  std::vector<std::string_view> candidates(valid.begin(), valid.end());
  std::string_view suggestion = nearest(option, candidates);
  std::string command = command_path(app);
  std::string help = fmt::format("`{} --help` lists its options", command);
  return Error{
      ErrorKind::kUsage,
      fmt::format("unknown option '{}' for `{}`", option, command),
      {},
      suggestion.empty() ? help : fmt::format("did you mean '{}'? ({})", suggestion, help)};
}

Error unknown_command(const CLI::App& app, std::string_view command) {
  std::vector<std::string_view> names;
  for (const CLI::App* sub : app.get_subcommands({})) names.push_back(sub->get_name());
  std::string_view suggestion = nearest(command, names);
  return Error{ErrorKind::kUsage,
               fmt::format("unknown command '{}'", command),
               {},
               suggestion.empty() ? fmt::format("the commands are {}", fmt::join(names, ", "))
                                  : fmt::format("did you mean '{}'?", suggestion)};
}

// After a failed parse: the first word CLI11 could not place that looks like
// a mistyped command or option. It is the cause even when CLI11 complains
// about something else: `init V --pyhton X` fails as "--python is required".
std::optional<Error> typo(const CLI::App& app) {
  std::vector<const CLI::App*> chain = {&app};
  for (const CLI::App* sub = &app; !sub->get_subcommands().empty();) {
    sub = sub->get_subcommands().front();
    chain.push_back(sub);
  }
  for (const CLI::App* level : chain) {
    for (const std::string& word : level->remaining()) {
      if (word.size() > 1 && word.front() == '-' && word != "--") {
        return unknown_option(*level, std::string_view(word).substr(0, word.find('=')));
      }
      if (level == &app && chain.size() == 1) return unknown_command(app, word);
    }
  }
  return std::nullopt;
}

}  // namespace

void setup_app(CLI::App& app, Context& context) {
  app.name("pyshim");
  app.description(
      "pyshim: a static launcher that stands in for the Python interpreter.\n"
      "Installed as a venv's bin/python it sets LD_PRELOAD / LD_LIBRARY_PATH from\n"
      "pyshim.toml for every interpreter started through it, workers included, and\n"
      "gives non-Python children the caller's environment back.");
  app.set_version_flag("--version", "pyshim " PYSHIM_VERSION);
  app.require_subcommand(0, 1);
  app.footer(
      "Examples:\n"
      "  pyshim init .venv --python /usr/bin/python3.11 --preload jemalloc\n"
      "  pyshim install .venv --preload asan\n"
      "  pyshim show .venv/bin/python --json\n"
      "  pyshim doctor .venv/bin/python\n"
      "  pyshim uninstall .venv\n"
      "  pyshim launcher build/asan-python --python /usr/bin/python3.11 --preload asan\n"
      "  pyshim entrypoint build/bin/myapp --launcher build/asan-python --module myapp\n"
      "\n"
      "The launcher itself is a separate binary (lib/pyshim/pyshim-launcher) that\n"
      "install copies into each venv. See README.md for the pyshim.toml reference.");

  setup_init(app, context);
  setup_install(app, context);
  setup_uninstall(app, context);
  setup_show(app, context);
  setup_doctor(app, context);
  setup_dynlib(app, context);
  setup_launcher(app, context);
  setup_entrypoint(app, context);

  // -v on the app and on every command (`pyshim -v install V` and `pyshim
  // install -v V`). Not by fallthrough: that would send a mistyped option of
  // a command to the app, and typo() could no longer name the command.
  auto verbose = [](std::int64_t) {
    init_tool_log(true, std::getenv(std::string(kLogEnvVar).c_str()));
  };
  const char* help =
      "Log each planned change before it is made and each change made (folder fd, name, "
      "result) on stderr; PYSHIM_LOG=debug does the same";
  app.add_flag("-v,--verbose", verbose, help);
  for (CLI::App* sub : app.get_subcommands({})) sub->add_flag("-v,--verbose", verbose, help);
}

int tool_main(int argc, char** argv) {
  CLI::App app;
  Context context;
  setup_app(app, context);

  // PYSHIM_LOG now; -v (its option callback) raises it before any
  // subcommand's callback runs.
  init_tool_log(false, std::getenv(std::string(kLogEnvVar).c_str()));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with status 0; the rest are usage
    // errors, which pyshim reports as 2 whatever CLI11's own code.
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    if (auto error = typo(app)) return print_error(*error);
    app.exit(e);
    return kExitUsage;
  } catch (const std::filesystem::filesystem_error& e) {
    // The subcommands check what they expect to fail; this is the net for
    // the rest (a full disk, a file appearing under us).
    return print_error(Error{ErrorKind::kUsage,
                             e.what(),
                             {},
                             "fix the cause and run the command again; install and uninstall "
                             "can be re-run safely"});
  }
  if (app.get_subcommands().empty()) {
    // Nothing asked: a usage error, as for any other incomplete command line.
    std::fputs(app.help().c_str(), stderr);
    return kExitUsage;
  }
  return context.exit_code;
}

}  // namespace cli
}  // namespace pyshim
