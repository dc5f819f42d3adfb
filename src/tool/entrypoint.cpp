// pyshim entrypoint OUT --launcher L (--module M | --script PATH) [--arg A]...:
// an executable that runs M (or PATH) through the launcher L, with the given
// arguments before the caller's.
//
// The file is a small Python program whose #! line names L, so the kernel
// starts L on it with no shell in between, and every worker comes back
// through L (sys.executable is L). A #! line holds one path and one
// argument, so `#!L -m M ARGS` cannot be written; the program does what
// `-m` would (runpy, with __main__.__spec__ set, so spawn workers re-import
// M). When L cannot go on a #! line (longer than the kernel reads, or with
// a space or tab, where the kernel splits), the first line is #!/bin/sh and
// the same file is also a shell script that execs L on itself: one more
// exec, and the only case with a shell.
#include "entrypoint.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <iostream>
#include <memory>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "files.hpp"
#include "pyshim/cli.hpp"
#include "pyshim/config.hpp"
#include "pyshim/dir.hpp"
#include "pyshim/launch.hpp"
#include "pyshim/os.hpp"

namespace pyshim::cli {

namespace {

// Linux reads the first 256 bytes of a script (BINPRM_BUF_SIZE, since 5.1)
// and refuses a #! line whose interpreter does not end inside them.
constexpr std::size_t kMaxShebangLine = 255;
constexpr std::string_view kShellForm = "#!/bin/sh\n\"true\" r'''\\'\nexec '";

struct EntrypointOptions {
  std::string out;
  std::string launcher;
  std::string module;
  std::string script;
  std::vector<std::string> args;
};

Error usage_error(std::string message, std::string hint) {
  return Error{ErrorKind::kUsage, std::move(message), {}, std::move(hint)};
}

// A regular file carrying a stamp area: a pyshim launcher. Checked with
// stat first, so a FIFO or device named here is not opened (and waited on).
bool is_launcher_file(const std::string& real) {
  if (real.empty()) return false;
  auto info = stat_path(real);
  return info && S_ISREG(info->mode) && !read_stamp_area(real).empty();
}

// A Python bytes literal that holds any bytes (arguments need not be UTF-8).
std::string py_bytes(std::string_view bytes) {
  std::string out = "b'";
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  return out + "'";
}

bool is_module_name(std::string_view name) {
  if (name.empty()) return false;
  bool start = true;
  for (char c : name) {
    if (c == '.') {
      if (start) return false;
      start = true;
    } else if (std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_' ||
               (!start && std::isdigit(static_cast<unsigned char>(c)) != 0)) {
      start = false;
    } else {
      return false;
    }
  }
  return !start;
}

// The program after the first line(s). sys.argv[0] stays the entrypoint's
// path (as for pip's console scripts: `myapp --help` says myapp); sys.path
// loses the entrypoint's folder, which neither `-m` nor an installed script
// would put there.
std::string program(const EntrypointOptions& o, std::string_view launcher) {
  std::string args;
  for (const std::string& arg : o.args) {
    args += fmt::format("{}_os.fsdecode({})", args.empty() ? "" : ", ", py_bytes(arg));
  }
  std::string what = o.module.empty() ? fmt::format("the script {}", o.script)
                                      : fmt::format("the module {}", o.module);
  std::string out = fmt::format(
      "# Written by `pyshim entrypoint`: runs {} through the launcher\n"
      "# {}\n"
      "# with the arguments below before the caller's. Write it again with the\n"
      "# command rather than editing it.\n"
      "import os as _os, runpy as _runpy, sys as _sys\n"
      "_sys.argv[1:1] = [{}]\n"
      "if _sys.path and _sys.path[0] and _os.path.realpath(_sys.path[0]) == "
      "_os.path.dirname(_os.path.realpath(__file__)):\n"
      "    del _sys.path[0]\n",
      printable(what, 4096), printable(launcher, 4096), args);
  if (!o.module.empty()) {
    // What `python -m` calls: __main__ keeps M's spec, so multiprocessing's
    // spawn and forkserver workers import M as __mp_main__.
    out += fmt::format("_runpy._run_module_as_main({}, alter_argv=False)\n",
                       py_bytes(o.module).substr(1));
  } else {
    out += fmt::format(
        "_script = _os.fsdecode({})\n"
        "_sys.path.insert(0, _os.path.dirname(_os.path.realpath(_script)))\n"
        "_runpy.run_path(_script, run_name='__main__')\n",
        py_bytes(o.script));
  }
  return out;
}

int run_entrypoint(const EntrypointOptions& o) {
  std::string out = absolute_path(o.out);
  std::string name(basename(out));
  std::string dir = dirname(out);
  if (name.empty() || o.out.ends_with('/')) {
    return print_error(
        usage_error(fmt::format("{}: not a file name", o.out),
                    "give the path of the executable to write, e.g. build/bin/myapp"));
  }
  if (o.module.empty() == o.script.empty()) {
    return print_error(
        usage_error("give one of --module and --script", "e.g. --module myapp.main"));
  }
  if (!o.module.empty() && !is_module_name(o.module)) {
    return print_error(
        usage_error(fmt::format("--module {}: not a module name", printable(o.module, 200)),
                    "give a dotted name such as myapp.main"));
  }
  EntrypointOptions options = o;
  if (!o.script.empty()) options.script = absolute_path(o.script);
  auto script = o.script.empty() ? std::nullopt : stat_path(options.script);
  if (!o.script.empty() && (!script || !S_ISREG(script->mode))) {
    return print_error(
        usage_error(fmt::format("--script {}: no such file", printable(o.script, 200)),
                    "give the path of the Python script to run"));
  }
  std::string launcher = absolute_path(o.launcher);
  std::string real = real_path(launcher);
  if (real.empty() || !may_execute(real)) {
    return print_error(usage_error(
        fmt::format("--launcher {}: not an executable file", printable(o.launcher, 200)),
        "write it first: pyshim launcher L --python PY"));
  }
  if (!is_launcher_file(real)) {
    return print_error(
        usage_error(fmt::format("--launcher {}: not a pyshim launcher", printable(o.launcher, 200)),
                    "give a launcher written by `pyshim launcher` or a shim venv's bin/python"));
  }
  if (launcher.find('\n') != std::string::npos || launcher.find('\'') != std::string::npos) {
    return print_error(usage_error("--launcher: the path has a newline or a quote",
                                   "give a path without them (a symlink to the launcher works)"));
  }
  bool shebang = 2 + launcher.size() + 1 <= kMaxShebangLine &&
                 launcher.find_first_of(" \t") == std::string::npos;
  std::string text = shebang ? fmt::format("#!{}\n", launcher)
                             : fmt::format("{}{}' \"$0\" \"$@\"\n'''\n", kShellForm, launcher);
  text += program(options, launcher);

  make_folders(dir);  // the caller's own path: links in it are theirs (errors: open says)
  VenvLock lock = VenvLock::open(dir);
  const Dir& root = lock.root();
  if (auto st = root.stat(name)) {
    std::optional<std::string> current;
    if (S_ISREG(st->st_mode)) current = root.read(name, 1 << 20);
    if (!current || current->find("# Written by `pyshim entrypoint`") == std::string::npos) {
      return print_error(usage_error(fmt::format("{} exists and is not a pyshim entrypoint", out),
                                     "remove it or choose another path"));
    }
  }
  bool changed = root.write(name, text, 0755);
  std::cout << (changed
                    ? fmt::format("wrote entrypoint {} (runs {} through {}{})\n", out,
                                  o.module.empty() ? options.script : o.module, launcher,
                                  shebang ? "" : "; via /bin/sh: the path does not fit a #! line")
                    : fmt::format("{} is already this entrypoint; nothing changed\n", out));
  return kExitOk;
}

// The path in `exec '...'` of the /bin/sh form.
std::optional<std::string> shell_form_launcher(const std::string& head) {
  if (!head.starts_with(kShellForm)) return std::nullopt;
  std::size_t start = kShellForm.size();
  std::size_t end = head.find('\'', start);
  if (end == std::string::npos) return std::nullopt;
  return head.substr(start, end - start);
}

}  // namespace

std::optional<std::string> script_launcher(const std::string& path) {
  auto head = read_regular(AT_FDCWD, path, true, 1 << 20);
  if (!head) {
    // Larger than a script: only the head matters, read through a bound.
    return std::nullopt;
  }
  if (!head->starts_with("#!")) return std::nullopt;
  if (auto shell = shell_form_launcher(*head)) return shell;
  std::string line = head->substr(2, head->find('\n') - 2);
  std::size_t start = line.find_first_not_of(" \t");
  if (start == std::string::npos) return std::nullopt;
  std::size_t end = line.find_first_of(" \t", start);
  return line.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

std::string launcher_behind(const std::string& path, std::string* via) {
  std::string real = real_path(path);
  auto info = real.empty() ? std::nullopt : stat_path(real);
  if (!info || !S_ISREG(info->mode) || is_launcher_file(real)) {
    return path;
  }
  auto launcher = script_launcher(real);
  if (!launcher || !launcher->starts_with('/')) return path;
  std::string target = real_path(*launcher);
  if (!is_launcher_file(target)) return path;
  if (via != nullptr) *via = path;
  return *launcher;
}

void setup_entrypoint(CLI::App& app, Context& context) {
  auto options = std::make_shared<EntrypointOptions>();
  auto* sub = app.add_subcommand(
      "entrypoint", "Write an executable that runs a module or script through a launcher.");
  sub->add_option("OUT", options->out, "The executable to write")->required();
  sub->add_option("--launcher", options->launcher,
                  "The launcher it runs (from `pyshim launcher`, or a shim venv's bin/python)")
      ->required();
  auto* module = sub->add_option("--module", options->module, "The module to run, as `-m` would");
  sub->add_option("--script", options->script, "The Python script to run")->excludes(module);
  sub->add_option("--arg", options->args,
                  "An argument given before the caller's. Repeatable, in order.")
      ->allow_extra_args(false);
  sub->footer(
      "Examples:\n"
      "  pyshim entrypoint build/bin/myapp --launcher build/python --module myapp\n"
      "  pyshim entrypoint build/bin/serve --launcher build/python --module myapp.cli --arg serve\n"
      "\n"
      "The file starts with #!LAUNCHER (no shell in between); a launcher path that\n"
      "does not fit a #! line (more than 252 bytes, or a space in it) gets a\n"
      "#!/bin/sh line that execs the launcher on the same file instead.");
  sub->callback([options, &context] { context.exit_code = run_entrypoint(*options); });
}

}  // namespace pyshim::cli
