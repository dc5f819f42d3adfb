#include "files.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <cstdlib>

#include "pyshim/dir.hpp"
#include "pyshim/launch.hpp"
#include "pyshim/os.hpp"
#include "pyshim/path.hpp"
#include "pyshim/process.hpp"
#include "pyshim/venv.hpp"
#include "venv_files.hpp"

extern char** environ;

namespace fs = std::filesystem;

namespace pyshim::cli {

std::string read_text(const fs::path& path, bool follow_links) {
  return read_regular(AT_FDCWD, path.string(), follow_links, std::size_t{256} << 20).value_or("");
}

namespace {

std::uint32_t owner_of(const Dir& root) {
  // An unknown owner counts as root's: then the program runs as nobody.
  auto st = root.self_stat();
  return st ? st->st_uid : 0;
}

// What the pyshim launcher at program would load, as its own launch would
// compute it (the same prepare_launch). Nothing when it would refuse to
// start: then it execs nothing.
void add_launch_loads(const std::string& program, std::vector<LoadedPath>& loads) {
  std::size_t count = 0;
  while (environ[count] != nullptr) ++count;
  auto request = request_for_launcher(program, EnvView(environ, count));
  if (!request) return;
  RealFileSystem files;
  auto launch = prepare_launch(files, *request);
  if (!launch) return;
  const Config& config = launch->config;
  if (!config.file.empty()) loads.push_back(examine_path("config", config.file, LoadScope::kFile));
  loads.push_back(examine_path("interpreter", config.interpreter.value, LoadScope::kFile));
  for (const Setting& lib : config.preload) {
    loads.push_back(examine_path("preload", lib.value, LoadScope::kFile));
  }
  for (const Setting& dir : config.library_path) {
    loads.push_back(examine_path("library folder", dir.value, LoadScope::kFolder));
  }
  loads.push_back(examine_path("restore library", launch->restore_library, LoadScope::kFile));
  for (const Setting& dir : config.python_path) {
    loads.push_back(examine_path("[python] path folder", dir.value, LoadScope::kTree));
  }
}

// venv: the venv's folder ("" for a launcher outside any venv) and its
// pyvenv.cfg's text.
std::vector<LoadedPath> program_loads(const std::string& venv, const std::string& pyvenv_cfg,
                                      const std::string& program) {
  std::vector<LoadedPath> loads;
  if (!venv.empty()) {
    loads.push_back(examine_path("venv", venv, LoadScope::kTree));
    auto cfg = parse_pyvenv_cfg(pyvenv_cfg);
    auto home = cfg.find("home");
    if (home == cfg.end() || home->second.empty()) {
      LoadedPath unknown;
      unknown.what = "home";
      unknown.path = venv + "/pyvenv.cfg";
      unknown.complete = false;  // the interpreter's base is unknown
      loads.push_back(std::move(unknown));
    } else {
      loads.push_back(examine_path("home (pyvenv.cfg)", home->second, LoadScope::kFile));
    }
  }
  loads.push_back(examine_path("program", program, LoadScope::kFile));
  // Only a regular file is read (a FIFO planted there is not waited on).
  if (auto info = stat_path(program); info && S_ISREG(info->mode) && is_pyshim_binary(program)) {
    add_launch_loads(program, loads);
  }
  return loads;
}

}  // namespace

RunAs venv_program_run_as(const Dir& root, const std::string& program) {
  if (effective_uid() != 0) return {};
  return decide_run_as(0, program_loads(root.path(), root.read("pyvenv.cfg").value_or(""), program),
                       owner_of(root));
}

RunAs launcher_run_as(const std::string& launcher) {
  if (effective_uid() != 0) return {};
  std::string program = absolute_path(launcher);
  // VENV/bin/python: the venv is two levels up when it has a pyvenv.cfg.
  std::string venv = dirname(dirname(program));
  auto cfg = read_regular(AT_FDCWD, venv + "/pyvenv.cfg", false, 1 << 20);
  if (!cfg) venv.clear();
  auto folder = stat_path(venv.empty() ? dirname(program) : venv);
  std::uint32_t owner = folder ? folder->uid : 0;
  return decide_run_as(0, program_loads(venv, cfg.value_or(""), program), owner);
}

namespace {

// The interpreter, run directly, and its installation: bin/.. (the prefix
// its standard library is found in).
std::vector<LoadedPath> interpreter_loads(const std::string& interpreter) {
  std::vector<LoadedPath> loads;
  loads.push_back(examine_path("interpreter", interpreter, LoadScope::kFile));
  std::string real = real_path(interpreter);
  if (!real.empty()) {
    loads.push_back(examine_path("interpreter's prefix", dirname(dirname(real)), LoadScope::kFile));
  }
  return loads;
}

}  // namespace

RootTrust interpreter_trust(const std::string& interpreter) {
  if (effective_uid() != 0) return {};
  // A bare name is what execvp would find on PATH (nothing runs when none).
  std::string path = interpreter;
  if (interpreter.find('/') == std::string::npos) {
    auto found = search_path(interpreter, std::getenv("PATH"));
    if (!found) return {};
    path = *found;
  }
  return decide_root_trust(interpreter_loads(path));
}

RunAs interpreter_run_as(const Dir& root, const std::string& interpreter, const std::string& file) {
  if (effective_uid() != 0) return {};
  std::vector<LoadedPath> loads = interpreter_loads(interpreter);
  // It reads the file and writes __pycache__/ beside it by path.
  loads.push_back(examine_path("folder", dirname(file), LoadScope::kFolder));
  loads.push_back(
      examine_path("bytecode folder", dirname(file) + "/__pycache__", LoadScope::kFolder));
  loads.push_back(examine_path("file", file, LoadScope::kFile));
  return decide_run_as(0, loads, owner_of(root));
}

}  // namespace pyshim::cli
