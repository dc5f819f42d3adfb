// What `pyshim install` replaced in a venv's bin/, and the pure decisions of
// install and uninstall about it: gather (the tool reads bin/ and the
// manifest) -> plan (here: values in, a list of steps out) -> apply (the tool,
// relative to directory fds). Unit-tested without a disk.
//
// Crash safety comes from the order of the steps and from each step being
// atomic and idempotent: install hard-links every original file into
// .pyshim/backup/ and writes the manifest (atomically) BEFORE it replaces
// anything in bin/, and replaces by rename, so no name in bin/ is ever
// missing and no original is ever moved; uninstall puts each original back
// by rename and removes the manifest last. A re-run of either after a crash
// at any point finishes the job.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pyshim/error.hpp"

namespace pyshim {

inline constexpr std::string_view kStateDirName = ".pyshim";
inline constexpr std::string_view kManifestFile = "manifest.toml";
inline constexpr std::string_view kBackupDirName = "backup";

// One bin/ entry as gathered (lstat, never followed).
struct BinEntry {
  enum class Kind { kSymlink, kFile, kOther };
  std::string name;
  Kind kind = Kind::kOther;
  std::string target;        // kSymlink: the link's text
  bool is_launcher = false;  // kFile: carries the pyshim launcher note
  std::uint64_t dev = 0, ino = 0;
};

struct ManifestEntry {
  std::string name;
  std::optional<std::string> symlink;  // else a file kept in .pyshim/backup/<name>
};

struct Manifest {
  bool copy = true;  // the layout install chose (informational)
  std::vector<ManifestEntry> entries;
};

// Validated: schema 1, every name a plain interpreter name (python, python3,
// python3.X, pypy...; no '/', no "..", no duplicates), each entry a symlink
// text or a backed-up file. 0.1 manifests (file = "backup/NAME", mode) are
// read too; the mode is ignored: the backup keeps its own inode.
Result<Manifest> parse_manifest(std::string_view text, std::string_view where);
std::string render_manifest(const Manifest& manifest);

enum class StepKind {
  kBackup,         // hard-link bin/<name> to .pyshim/backup/<name>
  kWriteManifest,  // .pyshim/manifest.toml := text (atomic)
  kRestoreLink,    // bin/<name> := symlink to target (atomic)
  kRestoreFile,    // bin/<name> := .pyshim/backup/<name> (hard link, atomic)
};

struct Step {
  StepKind kind;
  std::string name;
  std::string text;  // kWriteManifest: the manifest; kRestoreLink: the target
};

// Install, when the venv has no manifest yet: record every interpreter
// entry of bin/. Refuses a bin/ that already holds a pyshim launcher (an
// earlier install lost its manifest: recording the launcher as the original
// would make uninstall delete the real interpreter).
Result<std::vector<Step>> plan_record(const std::vector<BinEntry>& bin, bool copy);

// Uninstall: the steps that put bin/ back, skipping entries already back
// (a re-run after a crash). backup: what .pyshim/backup/ holds (regular
// files only; anything else there is refused).
Result<std::vector<Step>> plan_restore(const Manifest& manifest, const std::vector<BinEntry>& bin,
                                       const std::vector<BinEntry>& backup);

}  // namespace pyshim
