#include "venv_files.hpp"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "hooks.hpp"
#include "pyshim/launch.hpp"
#include "pyshim/os.hpp"
#include "pyshim/venv.hpp"

#include "files.hpp"

namespace fs = std::filesystem;

namespace pyshim::cli {
namespace {

bool executable_file(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec) && ::access(path.c_str(), X_OK) == 0;
}

Error manifest_error(const fs::path& venv, std::string message) {
  return Error{kExitUsage,
               std::move(message),
               {fmt::format("manifest: {}", (venv / kStateDir / kManifestName).string())},
               "recreate the venv if its manifest was damaged"};
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

// A regular file that is not a pyshim launcher: what uninstall puts back.
bool already_restored(const fs::path& path) {
  std::error_code ec;
  return !fs::is_symlink(fs::symlink_status(path, ec)) && fs::is_regular_file(path, ec) &&
         !is_pyshim_binary(path.string());
}

}  // namespace

Result<VenvState> read_venv_state(const fs::path& venv) {
  VenvState state;
  std::error_code ec;
  state.installed = fs::exists(venv / kStateDir / kManifestName, ec);
  if (state.installed && fs::exists(venv / kConfigName, ec)) {
    std::string path = (venv / kConfigName).string();
    auto config = parse_config(read_text(path), path);
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
  return files.read_head(path, 4096, head) == 0 && has_launcher_note(head);
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

std::vector<std::string> interpreter_names(const fs::path& venv) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(venv / "bin", ec)) {
    std::string name = entry.path().filename().string();
    if (!is_interpreter_name(name)) continue;
    auto status = entry.symlink_status(ec);
    if (fs::is_symlink(status) || fs::is_regular_file(status)) names.push_back(name);
  }
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    return std::make_pair(a != "python", a) < std::make_pair(b != "python", b);
  });
  return names;
}

Status record_manifest(const fs::path& venv, const std::vector<std::string>& names, bool copy) {
  fs::path state = venv / kStateDir;
  fs::path backup = state / "backup";
  std::error_code ec;
  fs::create_directories(backup, ec);
  if (ec) {
    return Error{kExitUsage,
                 fmt::format("cannot create {}: {}", backup.string(), ec.message()),
                 {},
                 "check the venv's permissions"};
  }
  toml::array replaced;
  for (const std::string& name : names) {
    fs::path path = venv / "bin" / name;
    toml::table entry{{"name", name}};
    if (fs::is_symlink(fs::symlink_status(path, ec))) {
      entry.insert("symlink", fs::read_symlink(path, ec).string());
    } else {
      auto perms = static_cast<std::int64_t>(fs::status(path, ec).permissions());
      fs::rename(path, backup / name, ec);
      if (ec) {
        return Error{kExitUsage,
                     fmt::format("cannot back up {}: {}", path.string(), ec.message()),
                     {},
                     "check the venv's permissions"};
      }
      entry.insert("file", (fs::path("backup") / name).string());
      entry.insert("mode", perms);
    }
    replaced.push_back(std::move(entry));
  }
  toml::table manifest{{"schema", 1}, {"copy", copy}, {"replaced", std::move(replaced)}};
  std::ofstream out(state / kManifestName, std::ios::trunc);
  out << "# Written by `pyshim install`: what it replaced in bin/, for `pyshim uninstall`.\n"
      << manifest << "\n";
  if (!out) {
    return Error{kExitUsage,
                 fmt::format("cannot write {}", (state / kManifestName).string()),
                 {},
                 "check the venv's permissions"};
  }
  return Ok{};
}

Status restore_manifest(const fs::path& venv) {
  fs::path state = venv / kStateDir;
  auto parsed = toml::parse_file((state / kManifestName).string());
  if (!parsed) return manifest_error(venv, "cannot parse the install manifest");
  const toml::array* replaced = parsed.table()["replaced"].as_array();
  if (replaced == nullptr) return manifest_error(venv, "the install manifest lists nothing");

  struct Step {
    fs::path path;
    std::optional<std::string> link;  // else: a backed-up file
    fs::path backup;
    std::optional<std::int64_t> mode;
  };
  std::vector<Step> steps;
  std::error_code ec;
  // Check everything before touching anything, so that a damaged manifest
  // or backup leaves the venv as it is (and uninstall can be re-run).
  for (const toml::node& node : *replaced) {
    const toml::table* entry = node.as_table();
    auto name = entry != nullptr ? (*entry)["name"].value<std::string>() : std::nullopt;
    if (!name || name->empty() || name->find('/') != std::string::npos) {
      return manifest_error(venv, "a manifest entry has no valid name");
    }
    Step step{venv / "bin" / *name,
              (*entry)["symlink"].value<std::string>(),
              {},
              (*entry)["mode"].value<std::int64_t>()};
    if (!step.link) {
      auto file = (*entry)["file"].value<std::string>();
      if (!file) {
        return manifest_error(venv, fmt::format("manifest entry {} has no symlink or file", *name));
      }
      step.backup = state / *file;
      if (!fs::is_regular_file(step.backup, ec) && already_restored(step.path)) {
        continue;  // an earlier uninstall got this far
      }
      if (!fs::is_regular_file(step.backup, ec)) {
        return Error{
            kExitUsage,
            fmt::format("the backup of bin/{} is missing: {}", *name, step.backup.string()),
            {fmt::format("manifest: {}", (state / kManifestName).string())},
            "nothing was changed; restore that file by hand (e.g. a copy of the "
            "venv's interpreter) and run uninstall again, or recreate the venv"};
      }
    }
    steps.push_back(std::move(step));
  }
  // Replace each entry atomically (rename over it): at no moment is a name
  // missing from bin/.
  for (const Step& step : steps) {
    fs::path tmp = step.path;
    tmp += ".pyshim-tmp";
    fs::remove(tmp, ec);
    if (step.link) {
      fs::create_symlink(*step.link, tmp, ec);
      if (!ec) fs::rename(tmp, step.path, ec);
    } else {
      fs::rename(step.backup, step.path, ec);
      if (!ec && step.mode) fs::permissions(step.path, static_cast<fs::perms>(*step.mode), ec);
    }
    if (ec) {
      return Error{kExitUsage,
                   fmt::format("cannot restore {}: {}", step.path.string(), ec.message()),
                   {},
                   "fix the cause and run uninstall again"};
    }
  }
  fs::remove(venv / kConfigName, ec);
  fs::remove_all(venv / "lib" / "pyshim", ec);
  remove_site_files(venv);
  fs::remove_all(state, ec);
  return Ok{};
}

}  // namespace pyshim::cli
