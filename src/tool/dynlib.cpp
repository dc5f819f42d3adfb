// pyshim dynlib VENV: keep VENV/share/venv/dynlib a folder of links to the
// shared libraries in VENV's site-packages that are not extension modules,
// so that a venv layered on this one (`pyshim install UPPER --layer VENV`)
// finds them through LD_LIBRARY_PATH. The decisions are in
// src/core/dynlib.cpp; this file gathers the facts and writes the links.
#include "dynlib_sync.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "log.hpp"
#include "progress.hpp"
#include "pyshim/cli.hpp"
#include "pyshim/config.hpp"
#include "pyshim/dir.hpp"
#include "pyshim/elf.hpp"
#include "pyshim/launch.hpp"
#include "pyshim/os.hpp"
#include "pyshim/process.hpp"
#include "pyshim/venv.hpp"
#include "venv_files.hpp"

#include "files.hpp"
#include "pyshim/mapped_file.hpp"

namespace fs = std::filesystem;

namespace pyshim::cli {
namespace {

// Printed by the venv's interpreter: what `import` accepts and where this
// venv installs packages. -I keeps PYTHONPATH and user site-packages out.
constexpr const char* kQueryScript =
    "import importlib.machinery as m, sysconfig\n"
    "for s in m.EXTENSION_SUFFIXES: print('suffix=' + s)\n"
    "p = sysconfig.get_paths()\n"
    "print('site=' + p['purelib'])\n"
    "print('site=' + p['platlib'])\n";

Error usage_error(std::string message, std::vector<std::string> context, std::string hint) {
  return Error{ErrorKind::kUsage, std::move(message), std::move(context), std::move(hint)};
}

struct InterpreterFacts {
  std::vector<std::string> suffixes;
  std::vector<std::string> site_dirs;
};

Result<InterpreterFacts> ask_interpreter(const Dir& root, const fs::path& venv) {
  std::vector<std::string> names = interpreter_names(root);
  if (names.empty()) {
    return usage_error(fmt::format("{}/bin has no python executable", venv.string()), {},
                       "recreate the venv with `python -m venv`");
  }
  std::string python = (venv / "bin" / names.front()).string();
  RunOptions how{.capture_output = true, .no_input = true, .timeout_seconds = 120};
  // Whoever can write the venv decides what bin/python runs (and which .pth
  // files site.py executes); whoever can write what its launch loads
  // (interpreter, preloads, library folders, home) decides what runs in it.
  RunAs as = venv_program_run_as(root, python);
  if (as.drops()) {
    how.uid = as.uid;
    how.gid = as.gid;
    how.capture_errors = true;  // its stderr is shown escaped, not on root's terminal
  }
  auto ran = run_process({python, "-I", "-c", kQueryScript}, how);
  if (!ran) {
    Error error = ran.take_error();
    if (as.drops()) error.context.push_back("not run as root: " + describe(as.trust));
    return error;
  }
  if (ran->status != 0 || ran->timed_out) {
    std::vector<std::string> context = {
        ran->timed_out ? std::string("it did not answer within 120 s") : ran->describe()};
    if (as.drops()) {
      context.push_back(fmt::format("run as uid {}, gid {}, not as root: {}", as.uid, as.gid,
                                    describe(as.trust)));
    }
    if (!ran->errors.empty()) context.push_back("stderr: " + printable(ran->errors, 2000));
    return usage_error(
        fmt::format("cannot ask {} for its extension suffixes and site-packages", python),
        std::move(context),
        fmt::format("check the venv's interpreter with `pyshim doctor {}`", python));
  }
  InterpreterFacts facts;
  std::istringstream lines(ran->output);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("suffix=")) facts.suffixes.push_back(line.substr(7));
    if (line.starts_with("site=")) {
      std::string dir = line.substr(5);
      if (std::find(facts.site_dirs.begin(), facts.site_dirs.end(), dir) == facts.site_dirs.end()) {
        facts.site_dirs.push_back(dir);
      }
    }
  }
  if (facts.site_dirs.empty()) {
    return usage_error(fmt::format("{} did not name its site-packages", python), {},
                       "is it a Python interpreter?");
  }
  return facts;
}

// Inside the folder real_venv (both real paths).
bool inside(const std::string& real, const std::string& real_venv) {
  return real.size() > real_venv.size() && real.starts_with(real_venv) &&
         real[real_venv.size()] == '/';
}

// Every file under dir whose name could be a shared library, with what its
// ELF headers say. Extension modules known by name are left out unread, and
// so is a file whose real path leaves the venv: root reads nothing outside
// it on the word of a link someone else may have planted.
std::vector<SharedObject> scan_site_dir(const std::string& dir,
                                        const std::vector<std::string>& suffixes,
                                        const std::string& real_venv) {
  std::vector<SharedObject> out;
  // Folder symlinks are not entered: they may loop, and what they point to
  // is not this venv's. A link to a file is taken when its real path stays
  // in the venv (checked below).
  auto wanted = [&](std::string_view name) {
    NameKind kind = classify_name(name, suffixes);
    return kind != NameKind::kOther && kind != NameKind::kExtension;
  };
  for (const FoundFile& entry : files_below(dir, wanted, Below::kAll)) {
    if (!inside(real_path(entry.path), real_venv)) continue;
    auto st = stat_path(entry.path);
    if (!st || !S_ISREG(st->mode)) continue;
    SharedObject object;
    object.site_dir = dir;
    object.rel_path = entry.relative;
    object.identity = fmt::format("{}:{}", st->dev, st->ino);
    MappedFile file(entry.path);
    if (auto info = parse_dynamic(file.view()); info && info->type == ET_DYN) {
      object.loadable = true;
      object.soname = std::move(info->soname);
      object.init_symbols = std::move(info->init_symbols);
    }
    out.push_back(std::move(object));
  }
  return out;
}

bool same_contents(const SharedObject& a, const SharedObject& b) {
  MappedFile x(a.path());
  MappedFile y(b.path());
  return x.view() == y.view();
}

// [dynlib] exclude of the venv's pyshim.toml (read through the venv's fd:
// a planted link or FIFO is not followed or waited on), then --exclude.
Result<std::vector<ExcludeGlob>> collect_excludes(const Dir& root,
                                                  const std::vector<std::string>& extra) {
  std::vector<ExcludeGlob> excludes;
  if (auto text = root.read(kConfigName)) {
    auto config = parse_config(*text, root.path_of(kConfigName));
    if (!config) return config.take_error();
    for (const Setting& glob : config->dynlib_exclude) {
      excludes.push_back({glob.value, where(*config, glob.origin)});
    }
  }
  for (const std::string& glob : extra) excludes.push_back({glob, "--exclude"});
  return excludes;
}

// The links (and anything else) in VENV/share/venv/dynlib, read through the
// folder's fd: nothing in the venv is followed.
std::vector<DynlibEntry> read_dynlib_dir(const Dir& dir) {
  std::vector<DynlibEntry> entries;
  for (std::string& name : dir.names()) {
    DynlibEntry item;
    auto st = dir.stat(name);
    item.symlink = st && S_ISLNK(st->st_mode);
    if (item.symlink) item.target = dir.readlink(name).value_or("");
    item.name = std::move(name);
    entries.push_back(std::move(item));
  }
  return entries;
}

// Each link is replaced in one rename (Dir::symlink), so a process starting
// meanwhile sees the old link or the new one, never none.
void apply_changes(const Dir& root, const std::vector<DynlibChange>& changes) {
  Dir dir = *root.sub(kDynlibDir, true);
  for (const DynlibChange& change : changes) {
    if (change.kind == DynlibChange::Kind::kRemove) {
      dir.remove(change.name);
    } else {
      dir.symlink(change.name, change.target);
    }
  }
}

struct DynlibOptions {
  std::string venv;
  std::vector<std::string> exclude;
  bool check = false;
  bool dry_run = false;
  bool quiet = false;
};

int run_dynlib(const DynlibOptions& options) {
  std::string venv = absolute_path(options.venv);
  if (auto cfg = stat_path(venv + "/pyvenv.cfg"); !cfg || !S_ISREG(cfg->mode)) {
    return print_error(
        usage_error(fmt::format("not a virtual environment: {} (no pyvenv.cfg)", venv), {},
                    "give the venv's folder, the one holding pyvenv.cfg"));
  }
  VenvLock lock = VenvLock::open(venv);
  // --dry-run is not --check: it goes through the apply step with every
  // change stopped at its mutation point (pyshim/dir.hpp), which prints it, and
  // exits 0; --check compares only, and exits 1 when out of date.
  set_dry_run(options.dry_run);
  auto result = sync_dynlib(lock.root(), options.exclude, !options.check, Progress(options.quiet));
  if (!result) return print_error(result.error());
  std::cout << format_dynlib(*result, options.check || options.dry_run);
  if (options.dry_run) {
    std::cout << "dry run: nothing was changed\n";
    return kExitOk;
  }
  return options.check && !result->up_to_date() ? kExitCheckFailed : kExitOk;
}

}  // namespace

Result<DynlibSync> sync_dynlib(const Dir& root, const std::vector<std::string>& extra_excludes,
                               bool apply, const Progress& progress) {
  fs::path venv = fs::path(root.path()).lexically_normal();
  if (venv.has_parent_path() && venv.filename().empty()) venv = venv.parent_path();
  if (auto cfg = root.stat("pyvenv.cfg"); !cfg || !S_ISREG(cfg->st_mode)) {
    return usage_error(fmt::format("not a virtual environment: {} (no pyvenv.cfg)", venv.string()),
                       {}, "give the venv's folder, the one holding pyvenv.cfg");
  }
  auto excludes = collect_excludes(root, extra_excludes);
  if (!excludes) return excludes.take_error();
  progress.phase("asking {}'s interpreter for its extension suffixes and site-packages",
                 venv.string());
  auto facts = ask_interpreter(root, venv);
  if (!facts) return facts.take_error();

  DynlibInputs inputs;
  inputs.venv = venv.string();
  if (root.stat(kConfigName)) inputs.config_file = root.path_of(kConfigName);
  inputs.suffixes = facts->suffixes;
  inputs.excludes = std::move(*excludes);
  inputs.same_contents = same_contents;
  std::vector<std::string> seen;  // purelib and platlib are often one folder under two names
  std::string real_venv = real_path(venv.string());
  for (const std::string& site : facts->site_dirs) {
    std::string real = real_path(site);
    if (real.empty() || std::find(seen.begin(), seen.end(), real) != seen.end()) continue;
    if (!inside(real, real_venv)) {
      return usage_error(fmt::format("{}'s interpreter names a site-packages outside the venv: {}",
                                     venv.string(), printable(site, 1024)),
                         {}, "dynlib links the venv's own libraries; check the venv's interpreter");
    }
    seen.push_back(real);
    progress.phase("reading the shared libraries in {}", site);
    for (SharedObject& object : scan_site_dir(site, facts->suffixes, real_venv)) {
      inputs.objects.push_back(std::move(object));
    }
  }
  auto selection = select_dynlib(inputs);
  if (!selection) return selection.take_error();

  DynlibSync sync;
  sync.venv = venv.string();
  sync.dir = (venv / kDynlibDir).string();
  sync.links = std::move(selection->links);
  sync.excluded = std::move(selection->excluded);
  std::vector<DynlibEntry> existing;
  // A link or a file where a folder belongs is refused (Dir::sub throws).
  if (auto dir = root.sub(kDynlibDir, false)) {
    existing = read_dynlib_dir(*dir);
  } else {
    sync.dir_missing = true;
  }
  auto changes = diff_dynlib(sync.links, existing, sync.dir);
  if (!changes) return changes.take_error();
  sync.changes = std::move(*changes);
  if (apply && !sync.up_to_date()) {
    progress.phase("updating {} ({} change{})", sync.dir, sync.changes.size(),
                   sync.changes.size() == 1 ? "" : "s");
    for (const DynlibChange& change : sync.changes) {
      tool_log().debug(
          "plan: {} {} -> {}", change.kind == DynlibChange::Kind::kRemove ? "remove link" : "link",
          printable(change.name, 4096),
          printable(change.kind == DynlibChange::Kind::kRemove ? change.old_target : change.target,
                    4096));
    }
    apply_changes(root, sync.changes);
  }
  return sync;
}

std::string format_dynlib(const DynlibSync& sync, bool would) {
  std::string out;
  std::size_t added = 0;
  std::size_t changed = 0;
  std::size_t removed = 0;
  for (const DynlibChange& change : sync.changes) {
    switch (change.kind) {
      case DynlibChange::Kind::kAdd:
        ++added;
        out += fmt::format("  + {} -> {}\n", change.name, change.target);
        break;
      case DynlibChange::Kind::kChange:
        ++changed;
        out +=
            fmt::format("  ~ {} -> {} (was {})\n", change.name, change.target, change.old_target);
        break;
      case DynlibChange::Kind::kRemove: {
        ++removed;
        // A relative target is relative to the folder holding the link.
        fs::path target = fs::path(sync.dir) / change.old_target;
        bool gone = !stat_path(target.string());
        out += fmt::format("  - {} (was {}{})\n", change.name, change.old_target,
                           gone ? ", target gone" : "");
        break;
      }
    }
  }
  for (const Excluded& excluded : sync.excluded) {
    out += fmt::format("  excluded: {} (by '{}', {})\n", excluded.path, excluded.by.glob,
                       excluded.by.origin);
  }
  std::string header;
  if (sync.up_to_date()) {
    header = fmt::format("{} is up to date: {} link{}\n", sync.dir, sync.links.size(),
                         sync.links.size() == 1 ? "" : "s");
  } else if (would) {
    header = fmt::format("{} is out of date{}: {} to add, {} to change, {} to remove\n", sync.dir,
                         sync.dir_missing ? " (the folder does not exist)" : "", added, changed,
                         removed);
    out += fmt::format("run `pyshim dynlib {}` to update it\n", sync.venv);
  } else {
    header = fmt::format("{}{}: {} link{}; {} added, {} changed, {} removed\n", sync.dir,
                         sync.dir_missing ? " (created)" : "", sync.links.size(),
                         sync.links.size() == 1 ? "" : "s", added, changed, removed);
  }
  return header + out;
}

void setup_dynlib(CLI::App& app, Context& context) {
  auto options = std::make_shared<DynlibOptions>();
  auto* sub = app.add_subcommand(
      "dynlib",
      "Link the venv's shared libraries (not extension modules) into share/venv/dynlib, for "
      "venvs layered on it.");
  sub->add_option("VENV", options->venv, "The virtual environment")->required();
  sub->add_option("--exclude", options->exclude,
                  "Leave out files matching this glob, relative to site-packages (** matches "
                  "any folders; a folder excludes what is in it). Repeatable; applies on top of "
                  "[dynlib] exclude in VENV/pyshim.toml, which is not changed.");
  sub->add_flag("--check", options->check,
                "Change nothing; list what is out of date and exit 1 if anything is.");
  sub->add_flag("--dry-run", options->dry_run,
                "Change nothing; print each link it would make, replace or remove (and the "
                "same list as --check), and exit 0.")
      ->excludes("--check");
  sub->add_flag("-q,--quiet", options->quiet,
                "No progress lines on the terminal (there are none when stderr is not a "
                "terminal); the result is printed either way.");
  sub->footer(
      "Each library is linked by its file name, and by its SONAME when that differs.\n"
      "Links whose libraries are gone are removed; running it again changes nothing.\n"
      "\n"
      "Examples:\n"
      "  pyshim dynlib /opt/layers/framework\n"
      "  pyshim dynlib .venv --exclude 'vendored_pkg/**'\n"
      "  pyshim dynlib .venv --check\n"
      "  pyshim install app --layer /opt/layers/framework   # app's library_path gets it");
  sub->callback([options, &context] { context.exit_code = run_dynlib(*options); });
}

}  // namespace pyshim::cli
