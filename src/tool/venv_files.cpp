#include "venv_files.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "hooks.hpp"
#include "log.hpp"
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
    return Error{kExitUsage,
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
    std::error_code ec;
    for (int hop = 0; hop < 40 && fs::is_symlink(fs::symlink_status(path, ec)); ++hop) {
      fs::path target = fs::read_symlink(path, ec);
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
  return Error{kExitUsage,
               fmt::format("cannot determine the interpreter of {}", venv.string()),
               {"looked at: pyvenv.cfg (executable, home, version) and the links in bin/"},
               "give it with --python /path/to/python3.X"};
}

std::vector<std::string> interpreter_names(const Dir& root) {
  std::vector<std::string> names;
  auto bin = root.sub("bin", false);
  if (!bin) return names;
  for (std::string& name : bin->names()) {
    if (!is_interpreter_name(name)) continue;
    auto st = bin->stat(name);
    if (st && (S_ISLNK(st->st_mode) || S_ISREG(st->st_mode))) names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    return std::make_pair(a != "python", a) < std::make_pair(b != "python", b);
  });
  return names;
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

namespace {

Dir open_bin(const Dir& root) {
  auto bin = root.sub("bin", false);
  if (!bin) {
    throw fs::filesystem_error("no bin/ folder", root.path_of("bin"),
                               std::make_error_code(std::errc::no_such_file_or_directory));
  }
  return std::move(*bin);
}

// -v: the manifest plan (manifest.hpp) as a whole, before any of it is
// applied; each step then logs itself at its mutation point.
void log_plan(const std::vector<Step>& steps) {
  for (const Step& step : steps) {
    switch (step.kind) {
      case StepKind::kBackup:
        tool_log().debug("plan: back up bin/{}", printable(step.name, 4096));
        break;
      case StepKind::kWriteManifest:
        tool_log().debug("plan: write the manifest ({} bytes)", step.text.size());
        break;
      case StepKind::kRestoreLink:
        tool_log().debug("plan: restore bin/{} as a symlink -> {}", printable(step.name, 4096),
                         printable(step.text, 4096));
        break;
      case StepKind::kRestoreFile:
        tool_log().debug("plan: restore bin/{} from the backup", printable(step.name, 4096));
        break;
    }
  }
}

}  // namespace

Status record_manifest(const Dir& root, bool copy) {
  Dir bin = open_bin(root);
  auto steps = plan_record(gather_entries(bin), copy);
  if (!steps) return steps.take_error();
  log_plan(*steps);
  Dir state = *root.sub(kStateDir, true);
  Dir backup = *state.sub(std::string(kBackupDirName), true);
  for (const Step& step : *steps) {
    if (step.kind == StepKind::kBackup) {
      // A hard link: the original stays in bin/ (and keeps its inode, so
      // mode, owner and times) until install renames a launcher over it.
      backup.link_from(bin, step.name, step.name);
    } else if (step.kind == StepKind::kWriteManifest) {
      backup.sync();
      state.write(kManifestName, step.text, 0644);
    }
  }
  return Ok{};
}

Status restore_manifest(const Dir& root) {
  Dir bin = open_bin(root);
  Dir state = *root.sub(kStateDir, false);
  std::string where = state.path_of(kManifestName);
  auto text = state.read(kManifestName, 1 << 20);
  if (!text) {
    return Error{kExitUsage,
                 "cannot read the install manifest",
                 {"manifest: " + where},
                 "it must be a regular file; recreate the venv if it was damaged"};
  }
  auto manifest = parse_manifest(*text, where);
  if (!manifest) return manifest.take_error();
  auto backup = state.sub(std::string(kBackupDirName), false);
  std::vector<BinEntry> saved = backup ? gather_entries(*backup) : std::vector<BinEntry>{};
  // Check everything before touching anything: a damaged manifest or backup
  // leaves the venv as it is.
  auto steps = plan_restore(*manifest, gather_entries(bin), saved);
  if (!steps) return steps.take_error();
  log_plan(*steps);
  for (const Step& step : *steps) {
    if (step.kind == StepKind::kRestoreLink) {
      bin.symlink(step.name, step.text);
    } else if (step.kind == StepKind::kRestoreFile) {
      bin.link_from(*backup, step.name, step.name);
    }
  }
  root.remove(kConfigName);
  if (auto lib = root.sub("lib", false)) lib->remove("pyshim");
  remove_site_files(root);
  // The manifest goes last: until then a re-run of uninstall finishes.
  state.remove("base");
  state.remove(std::string(kBackupDirName));
  state.remove(kManifestName);
  root.remove(kStateDir);
  return Ok{};
}

}  // namespace pyshim::cli
