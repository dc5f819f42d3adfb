#include "pyshim/manifest.hpp"

#include <algorithm>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "pyshim/venv.hpp"

namespace pyshim {
namespace {

Error manifest_error(std::string_view where, std::string message) {
  return Error{ErrorKind::kUsage,
               std::move(message),
               {fmt::format("manifest: {}", where)},
               "nothing was changed; the manifest was damaged or written by someone else: "
               "restore bin/ by hand or recreate the venv"};
}

const BinEntry* find(const std::vector<BinEntry>& entries, std::string_view name) {
  for (const BinEntry& entry : entries) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

}  // namespace

Result<Manifest> parse_manifest(std::string_view text, std::string_view where) {
  toml::parse_result parsed = toml::parse(text);
  if (!parsed) return manifest_error(where, "cannot parse the install manifest");
  const toml::table& root = parsed.table();
  if (root["schema"].value<std::int64_t>() != 1) {
    return manifest_error(where, "the install manifest has an unknown schema");
  }
  const toml::array* replaced = root["replaced"].as_array();
  if (replaced == nullptr) return manifest_error(where, "the install manifest lists nothing");
  Manifest manifest;
  manifest.copy = root["copy"].value_or(true);
  for (const toml::node& node : *replaced) {
    const toml::table* entry = node.as_table();
    auto name = entry != nullptr ? (*entry)["name"].value<std::string>() : std::nullopt;
    if (!name || !is_interpreter_name(*name)) {
      return manifest_error(where, "a manifest entry has no valid interpreter name");
    }
    bool duplicate = std::any_of(manifest.entries.begin(), manifest.entries.end(),
                                 [&](const ManifestEntry& e) { return e.name == *name; });
    if (duplicate) return manifest_error(where, fmt::format("bin/{} is listed twice", *name));
    ManifestEntry out{*name, (*entry)["symlink"].value<std::string>()};
    if (out.symlink && (out.symlink->empty() || out.symlink->find('\0') != std::string::npos)) {
      return manifest_error(where, fmt::format("manifest entry {} has an empty link", *name));
    }
    if (!out.symlink) {
      // 0.2 writes file = true; 0.1 wrote file = "backup/NAME". Either way the
      // backup is .pyshim/backup/NAME: no other path is ever taken from it.
      const toml::node_view<const toml::node> file = (*entry)["file"];
      bool ok = file.value<bool>() == true ||
                file.value<std::string>() == fmt::format("{}/{}", kBackupDirName, *name);
      if (!ok) {
        return manifest_error(where, fmt::format("manifest entry {} names no valid backup", *name));
      }
    }
    manifest.entries.push_back(std::move(out));
  }
  return manifest;
}

std::string render_manifest(const Manifest& manifest) {
  toml::array replaced;
  for (const ManifestEntry& entry : manifest.entries) {
    toml::table row{{"name", entry.name}};
    if (entry.symlink) {
      row.insert("symlink", *entry.symlink);
    } else {
      row.insert("file", true);
    }
    replaced.push_back(std::move(row));
  }
  toml::table root{{"schema", 1}, {"copy", manifest.copy}, {"replaced", std::move(replaced)}};
  std::ostringstream out;
  out << "# Written by `pyshim install`: what it replaced in bin/ (files are kept, as hard\n"
      << "# links, in .pyshim/backup/), for `pyshim uninstall`.\n"
      << root << "\n";
  return out.str();
}

Result<std::vector<Step>> plan_record(const std::vector<BinEntry>& bin, bool copy) {
  std::vector<Step> steps;
  Manifest manifest;
  manifest.copy = copy;
  for (const BinEntry& entry : bin) {
    if (!is_interpreter_name(entry.name)) continue;
    switch (entry.kind) {
      case BinEntry::Kind::kSymlink:
        // A link into the venv's .pyshim/ is install's own (a 3.11+ venv's
        // bin/python3.X links to its base launcher): not an original.
        if (!entry.target.starts_with("../.pyshim/")) {
          manifest.entries.push_back({entry.name, entry.target});
          break;
        }
        [[fallthrough]];
      case BinEntry::Kind::kFile:
        if (entry.is_launcher || entry.kind == BinEntry::Kind::kSymlink) {
          return Error{ErrorKind::kUsage,
                       fmt::format("bin/{} is already a pyshim launcher, but the venv has no "
                                   "install manifest",
                                   entry.name),
                       {},
                       "its original interpreter is unknown: recreate the venv, or restore "
                       "bin/ from the real interpreter and run install again"};
        }
        steps.push_back({StepKind::kBackup, entry.name, {}});
        manifest.entries.push_back({entry.name, std::nullopt});
        break;
      case BinEntry::Kind::kOther:
        return Error{ErrorKind::kUsage,
                     fmt::format("bin/{} is neither a file nor a symlink", entry.name),
                     {},
                     "remove it or recreate the venv"};
    }
  }
  if (manifest.entries.empty()) {
    return Error{ErrorKind::kUsage,
                 "bin/ has no python executables",
                 {},
                 "recreate the venv with `python -m venv`"};
  }
  steps.push_back(
      {StepKind::kWriteManifest, std::string(kManifestFile), render_manifest(manifest)});
  return steps;
}

Result<std::vector<Step>> plan_restore(const Manifest& manifest, const std::vector<BinEntry>& bin,
                                       const std::vector<BinEntry>& backup) {
  std::vector<Step> steps;
  for (const ManifestEntry& entry : manifest.entries) {
    const BinEntry* now = find(bin, entry.name);
    if (entry.symlink) {
      if (now == nullptr || now->kind != BinEntry::Kind::kSymlink ||
          now->target != *entry.symlink) {
        steps.push_back({StepKind::kRestoreLink, entry.name, *entry.symlink});
      }
      continue;
    }
    const BinEntry* saved = find(backup, entry.name);
    if (saved == nullptr && now != nullptr && now->kind == BinEntry::Kind::kFile &&
        !now->is_launcher) {
      continue;  // put back by an uninstall that stopped while removing the backups
    }
    if (saved == nullptr || saved->kind != BinEntry::Kind::kFile) {
      return Error{ErrorKind::kUsage,
                   fmt::format("the backup of bin/{} is missing or not a regular file", entry.name),
                   {fmt::format("expected: {}/{}/{}", kStateDirName, kBackupDirName, entry.name)},
                   "nothing was changed; restore that file by hand (e.g. a copy of the venv's "
                   "interpreter) and run uninstall again, or recreate the venv"};
    }
    if (now == nullptr || now->dev != saved->dev || now->ino != saved->ino) {
      steps.push_back({StepKind::kRestoreFile, entry.name, {}});
    }
  }
  return steps;
}

}  // namespace pyshim
