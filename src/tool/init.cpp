// pyshim init DIR --python PY: create a venv and install the shim into it.
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string_view>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "files.hpp"
#include "install.hpp"
#include "progress.hpp"
#include "pyshim/cli.hpp"
#include "pyshim/dir.hpp"
#include "pyshim/launch.hpp"
#include "pyshim/os.hpp"
#include "pyshim/process.hpp"

namespace fs = std::filesystem;

namespace pyshim::cli {
namespace {

struct InitOptions {
  InstallOptions install;
  bool with_pip = false;
};

// init made the venv and owns it, so it starts it once, as a user would:
// a launch that fails is reported now, with the interpreter's own words,
// not at the first real run. The venv is left for `pyshim doctor`.
int launch_once(const fs::path& dir, Progress& progress) {
  std::string python = (fs::path(absolute_path(dir.string())) / "bin/python").string();
  progress.phase("starting {}", python);
  RunOptions run;
  run.capture_output = true;
  run.capture_errors = true;
  run.no_input = true;
  run.own_group = true;
  run.timeout_seconds = 120;
  // As root, the one rule of what root runs (root_trust.hpp) decides, as
  // for doctor's round trip: a venv layered on someone else's layer starts
  // as the venv's owner (nobody here), never as root.
  RunAs as = launcher_run_as(python);
  if (as.drops()) {
    run.uid = as.uid;
    run.gid = as.gid;
    std::cout << fmt::format("starting it as uid {}, gid {}, not as root: {}\n", as.uid, as.gid,
                             describe(as.trust));
  }
  auto ran = run_process({python, "-c", "import sys; print(sys.executable)"}, run);
  if (!ran) return print_error(ran.error());
  if (ran->status != 0) {
    // The last lines of its stderr (where the loader and Python say why),
    // escaped and capped.
    std::vector<std::string> lines;
    std::string_view rest = ran->errors;
    while (!rest.empty()) {
      std::size_t end = rest.find('\n');
      std::string_view line = rest.substr(0, end);
      if (!line.empty()) lines.push_back(printable(line, 300));
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    }
    constexpr std::size_t kShown = 6;
    std::vector<std::string> context;
    for (std::size_t i = lines.size() > kShown ? lines.size() - kShown : 0; i < lines.size(); ++i) {
      context.push_back("stderr: " + lines[i]);
    }
    return print_error(Error{
        ErrorKind::kCheckFailed,
        fmt::format("the new venv does not start: `{} -c 'import sys; print(sys.executable)'` "
                    "ended with {}",
                    python, ran->describe()),
        context,
        fmt::format("the venv is left in place: `pyshim doctor {}` says what is wrong; remove "
                    "{} before running init again",
                    python, dir.string())});
  }
  std::cout << fmt::format("started {}: it runs (sys.executable {})\n", python,
                           printable(ran->output.substr(0, ran->output.find('\n')), 400));
  return 0;
}

// fs::is_empty's answer: a folder without entries or an empty file; an
// error (unreadable, gone) is "not empty", so nothing is assumed away.
bool is_empty(const std::string& path) {
  auto info = stat_path(path);
  if (!info) return false;
  if (!S_ISDIR(info->mode)) return info->size == 0;
  try {
    return Dir::open(path).names().empty();
  } catch (const fs::filesystem_error&) {
    return false;
  }
}

// Removes what init made when it fails: the venv folder it created, or
// (when it was given an existing empty folder) what it put in it. A retry
// with fixed options must not find a half-made venv in the way.
// Best effort, as the failure it cleans up after is what init reports.
void remove_created(const fs::path& dir, bool existed) {
  // Dir::remove never follows a link: one there is removed, not entered.
  auto remove = [](const Dir& folder, const std::string& name) {
    try {
      folder.remove(name);
    } catch (const fs::filesystem_error&) {
    }
  };
  try {
    if (!existed) {
      std::string path = dir.string();
      while (path.size() > 1 && path.back() == '/') path.pop_back();
      fs::path named(path);
      remove(Dir::open(named.has_parent_path() ? named.parent_path().string() : "."),
             named.filename().string());
    } else {
      Dir folder = Dir::open(dir.string());
      for (const std::string& name : folder.names()) remove(folder, name);
    }
  } catch (const fs::filesystem_error&) {
  }
  std::fprintf(stderr, "  (removed %s%s, which init had created)\n",
               existed ? "what was put in " : "", dir.c_str());
}

int create_and_install(const InitOptions& options, const fs::path& dir) {
  // Options are checked before the seconds `python -m venv` takes.
  // The preloads it resolves (gcc, ldconfig) are handed to the install
  // (plan_init): resolved once.
  auto checked = check_install_options(options.install, options.install.python);
  if (!checked) return print_error(checked.error());
  // As root, `PY -m venv` runs PY as root: only when no one else can change
  // it (the rule every tool command applies). There is no owner to run it
  // as (the venv does not exist yet), so init refuses.
  if (RootTrust trust = interpreter_trust(options.install.python); !trust.root_only) {
    return print_error(
        Error{ErrorKind::kUsage,
              fmt::format("as root, init runs only an interpreter no one else can change: {}",
                          describe(trust)),
              {},
              "run init as that user, or give an interpreter only root can write (e.g. "
              "/usr/bin/python3)"});
  }
  InitPlan plan = plan_init(options.install, options.with_pip, std::move(*checked));
  Progress progress(options.install.quiet);
  progress.phase("creating {} with `{} -m venv{}`", dir.string(), options.install.python,
                 options.with_pip ? "" : " --without-pip");
  auto created = run_process(plan.create);
  if (!created) return print_error(created.error());
  if (created->status != 0) {
    return print_error(
        Error{ErrorKind::kUsage,
              fmt::format("`{} -m venv` failed: {}", options.install.python, created->describe()),
              {},
              options.with_pip ? "without --with-pip no ensurepip is needed "
                                 "(Debian: apt-get install python3-venv)"
                               : "check that the interpreter has the venv module"});
  }
  progress.phase("installing pyshim into {}", dir.string());
  return run_install(plan.install);
}

int run_init(const InitOptions& options) {
  fs::path dir = options.install.venv;
  bool existed = stat_path(dir.string()).has_value();
  if (existed && !is_empty(dir.string())) {
    return print_error(
        Error{ErrorKind::kUsage,
              fmt::format("{} already exists and is not empty", dir.string()),
              {},
              fmt::format("to convert an existing venv: pyshim install {}", dir.string())});
  }
  auto made = [&] {
    return existed ? !is_empty(dir.string()) : lstat_path(dir.string()).has_value();
  };
  int status;
  try {
    status = create_and_install(options, dir);
  } catch (const fs::filesystem_error& e) {
    // A full disk, an I/O error: said first, then what init made goes.
    status =
        print_error(Error{ErrorKind::kUsage, e.what(), {}, "fix the cause and run init again"});
  } catch (...) {
    if (made()) remove_created(dir, existed);
    throw;
  }
  // Nothing of a failed init stays, including a half-made venv left by a
  // failed `python -m venv`.
  if (status != 0 && made()) remove_created(dir, existed);
  if (status != 0) return status;
  // A venv that installed but does not start is kept: it is whole, and
  // `pyshim doctor` can say why.
  Progress progress(options.install.quiet);
  return launch_once(dir, progress);
}

}  // namespace

void setup_init(CLI::App& app, Context& context) {
  auto options = std::make_shared<InitOptions>();
  auto* sub = app.add_subcommand("init", "Create a venv with PY and make it a shim venv.");
  sub->add_option("DIR", options->install.venv, "Where to create the venv")->required();
  sub->add_option("--python", options->install.python, "The interpreter to create it with")
      ->required();
  add_install_options(*sub, options->install);
  sub->add_flag("--with-pip", options->with_pip, "Install pip into the venv (default: no pip)");
  sub->footer(
      "Examples:\n"
      "  pyshim init .venv --python /usr/bin/python3.11 --preload jemalloc\n"
      "  pyshim init .venv --python python3.12 --preload asan --with-pip");
  sub->callback([options, &context] { context.exit_code = run_init(*options); });
}

}  // namespace pyshim::cli
