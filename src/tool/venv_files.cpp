#include "venv_files.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "pyshim/install_plan.hpp"
#include "pyshim/launch.hpp"
#include "pyshim/os.hpp"
#include "pyshim/venv.hpp"

#include "files.hpp"

namespace fs = std::filesystem;

namespace pyshim::cli {
namespace {

bool executable_file(const fs::path& path) {
  return is_executable_file(path.string());
}

// The interpreter behind a pyshim launcher: the one its config names.
std::string interpreter_of_launcher(const std::string& launcher) {
  RealFileSystem files;
  std::vector<const char*> no_env;
  auto request = request_for_launcher(launcher, EnvView(no_env));
  if (!request) return {};
  auto found = find_config(files, *request);
  if (!found) return {};
  auto config = load_config(*request, *found);
  return config ? config->interpreter.value : std::string();
}

}  // namespace

Result<VenvState> read_venv_state(const Dir& root) {
  VenvState state;
  auto state_dir = root.sub(kStateDir, false);
  auto manifest = state_dir ? state_dir->stat(kManifestName) : std::nullopt;
  if (manifest && !S_ISREG(manifest->st_mode)) {
    // A planted link or folder: install would skip the backup, uninstall
    // would read someone else's file. Neither is done.
    return Error{ErrorKind::kUsage,
                 fmt::format("{} is not a regular file", state_dir->path_of(kManifestName)),
                 {},
                 "someone replaced pyshim's install manifest: remove it and check bin/ by hand, "
                 "or recreate the venv"};
  }
  state.installed = manifest.has_value();
  if (auto text = state.installed ? root.read(kConfigName) : std::nullopt) {
    auto config = parse_config(*text, root.path_of(kConfigName));
    if (!config) return config.take_error();
    state.configured_interpreter = config->interpreter.value;
  }
  return state;
}

bool is_pyshim_binary(const std::string& path) {
  // Every pyshim binary carries the launcher note, whatever its build, name
  // or location: the same test the launcher applies.
  RealFileSystem files;
  std::string head;
  return files.read_head(path, 4096, head) == 0 &&
         (has_launcher_note(head) ||
          head.find(std::string_view(kToolNote, sizeof kToolNote)) != std::string::npos);
}

Result<std::string> detect_interpreter(const fs::path& venv) {
  auto accept = [](const std::string& candidate) -> std::string {
    if (!executable_file(candidate)) return {};
    if (is_pyshim_binary(candidate)) return interpreter_of_launcher(candidate);
    return candidate;
  };
  auto cfg = parse_pyvenv_cfg(read_text(venv / "pyvenv.cfg"));
  if (auto it = cfg.find("executable"); it != cfg.end()) {
    if (std::string found = accept(it->second); !found.empty()) return found;
  }
  fs::path bin = venv / "bin";
  for (const char* name : {"python", "python3", "pypy3", "pypy"}) {
    fs::path path = bin / name;
    auto is_link = [](const fs::path& p) {
      auto info = lstat_path(p.string());
      return info && S_ISLNK(info->mode);
    };
    for (int hop = 0; hop < 40 && is_link(path); ++hop) {
      fs::path target = read_link(path.string()).value_or("");
      path = target.is_absolute() ? target : path.parent_path() / target;
      if (path.parent_path().lexically_normal() != bin.lexically_normal()) {
        if (std::string found = accept(path.string()); !found.empty()) return found;
        break;
      }
    }
  }
  if (auto home = cfg.find("home"); home != cfg.end()) {
    std::string version = cfg.count("version") ? cfg["version"] : cfg["version_info"];
    std::string major_minor = version.substr(0, version.find('.', version.find('.') + 1));
    for (std::string name : {"python" + major_minor, std::string("python3"), std::string("python"),
                             std::string("pypy3")}) {
      if (std::string found = accept((fs::path(home->second) / name).string()); !found.empty()) {
        return found;
      }
    }
  }
  return Error{ErrorKind::kUsage,
               fmt::format("cannot determine the interpreter of {}", venv.string()),
               {"looked at: pyvenv.cfg (executable, home, version) and the links in bin/"},
               "give it with --python /path/to/python3.X"};
}

std::vector<std::string> interpreter_names(const Dir& root) {
  auto bin = root.sub("bin", false);
  return bin ? pyshim::interpreter_names(gather_entries(*bin)) : std::vector<std::string>{};
}

std::vector<BinEntry> gather_entries(const Dir& dir) {
  std::vector<BinEntry> out;
  for (const std::string& name : dir.names()) {
    auto st = dir.stat(name);
    if (!st) continue;
    BinEntry entry;
    entry.name = name;
    entry.dev = st->st_dev;
    entry.ino = st->st_ino;
    if (S_ISLNK(st->st_mode)) {
      entry.kind = BinEntry::Kind::kSymlink;
      entry.target = dir.readlink(name).value_or("");
    } else if (S_ISREG(st->st_mode)) {
      entry.kind = BinEntry::Kind::kFile;
      if (is_interpreter_name(name)) {
        // The first page, read without following anything: a launcher of
        // any build carries the note there.
        auto head = dir.read_head(name, 4096);
        entry.is_launcher = head && has_launcher_note(*head);
      }
    }
    out.push_back(std::move(entry));
  }
  std::sort(out.begin(), out.end(),
            [](const BinEntry& a, const BinEntry& b) { return a.name < b.name; });
  return out;
}

}  // namespace pyshim::cli
