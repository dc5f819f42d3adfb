// pyshim show [LAUNCHER] [--json]: what the launcher would do if started
// now from this environment, and where each part of it comes from. It runs
// the launcher's own prepare_launch(), so a launch that would fail is
// reported with the launcher's error and exit code (with --json, also as a
// JSON error document on stdout, so a script reading stdout sees why).
#include <cstdio>
#include <memory>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "entrypoint.hpp"
#include "pyshim/cli.hpp"
#include "pyshim/explain.hpp"
#include "pyshim/launch.hpp"
#include "pyshim/os.hpp"

extern char** environ;

namespace pyshim::cli {
namespace {

struct Options {
  std::string launcher;
  bool json = false;
};

int run_show(const Options& options) {
  std::string launcher = options.launcher.empty() ? default_launcher() : options.launcher;
  if (launcher.empty()) {
    return print_error(Error{ErrorKind::kUsage,
                             "no launcher given, and neither ./.venv/bin/python nor python on PATH "
                             "exists",
                             {},
                             "give one: pyshim show VENV/bin/python"},
                       options.json);
  }
  // An entrypoint script (`pyshim entrypoint`, or any #! script naming a
  // launcher) is shown as the launcher it runs, as doctor does.
  std::string script;
  launcher = launcher_behind(launcher, &script);
  std::size_t env_count = 0;
  while (environ[env_count] != nullptr) ++env_count;
  auto request = request_for_launcher(launcher, EnvView(environ, env_count));
  if (!request) return print_error(request.error(), options.json);
  if (read_stamp_area(request->self_exe).empty()) {
    return print_error(Error{ErrorKind::kUsage,
                             fmt::format("{} is not a pyshim launcher", request->self_exe),
                             {},
                             "give a launcher (a shim venv's bin/python, one written by `pyshim "
                             "launcher`, or an entrypoint script whose #! line names one)"},
                       options.json);
  }
  // A launcher of another build as the interpreter is refused here at once;
  // the launcher itself notices only at the second hop.
  request->thorough = true;

  RealFileSystem fs;
  auto launch = prepare_launch(fs, *request);
  if (!launch) return print_error(launch.error(), options.json);

  std::string text = options.json ? show_json(*request, *launch) : show_text(*request, *launch);
  if (!script.empty() && !options.json) {
    text = fmt::format("entrypoint:      {}  (a #! script: shown is the launcher it runs)\n",
                       printable(script, SIZE_MAX)) +
           text;
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  return kExitOk;
}

}  // namespace

void setup_show(CLI::App& app, Context& context) {
  auto options = std::make_shared<Options>();
  auto* sub = app.add_subcommand(
      "show", "Show the launch plan: config used, interpreter, argv[0], environment changes");
  sub->add_option("launcher", options->launcher,
                  "the launcher, e.g. VENV/bin/python (default: ./.venv/bin/python if it "
                  "exists, else python on PATH)");
  sub->add_flag("--json", options->json, "print a JSON document (schema 1, see README)");
  sub->footer(
      "Examples:\n"
      "  pyshim show .venv/bin/python\n"
      "  pyshim show .venv/bin/python --json | python3 -m json.tool\n"
      "  LD_PRELOAD= pyshim show ./app-python   # as seen from a caller with LD_PRELOAD empty\n"
      "\n"
      "The plan is computed for this shell's environment, exactly as the launcher\n"
      "would compute it if started now. Exit status: 0, or the launcher's own\n"
      "(125 config or setup error, 126/127 interpreter not executable/not found),\n"
      "or 2 for a launcher path that does not exist. With --json a failure is also\n"
      "printed on stdout as {\"schema\": 1, \"error\": {...}}, with that exit code.");
  sub->callback([options, &context] { context.exit_code = run_show(*options); });
}

}  // namespace pyshim::cli
