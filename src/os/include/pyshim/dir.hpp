// Tool mode's only way to change a venv (the OS layer: tool mode makes no
// system call of its own). `pyshim install`/`uninstall` run as
// root on venvs other users can write (CI caches, container volumes), so
// every file in a venv may be a planted link: everything here works relative
// to directory fds opened with O_NOFOLLOW, never follows a link it did not
// create, creates temporaries with O_EXCL, checks every write, and makes each
// change atomic and durable (fsync the file, rename, fsync the folder).
// Failures throw std::filesystem::filesystem_error naming the path and the
// real errno (tool_main reports it).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pyshim {

// Dry run (`--dry-run` of install, uninstall and dynlib): the mutations below
// (write, symlink, link_from, remove, creating a folder with sub) are the
// only places a tool command changes a venv, and each of them decides here
// whether it applies. In a dry run each one prints "would <verb> <path>" on
// stdout where it would have changed something, changes nothing, and reports
// the change as made (true), so the command goes on exactly as the real run
// would. A folder it would create is a Dir without an fd (fd() == -1) that
// reads as empty. With a log sink set (tool mode's logger at debug: -v,
// PYSHIM_LOG) each mutation is logged before it is applied and after, with
// its folder's fd, the name relative to it and the result.
void set_dry_run(bool on);
bool dry_run();

// Where Dir's log lines go ("plan: write NAME (fd 3 = /venv)", "write NAME
// (fd 3 = /venv): ok"), already escaped; nullptr (the default): nowhere.
// The OS layer has no logger of its own: the launcher shares this layer and
// must stay free of one.
using DirLogSink = void (*)(std::string_view line);
void set_dir_log_sink(DirLogSink sink);

// An open directory (O_DIRECTORY|O_NOFOLLOW), closed on destruction. `path`
// is kept for messages only; nothing is ever opened by it.
class Dir {
 public:
  Dir() = default;
  Dir(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  Dir(Dir&& other) noexcept : fd_(other.fd_), path_(std::move(other.path_)) { other.fd_ = -1; }
  Dir& operator=(Dir&& other) noexcept;
  Dir(const Dir&) = delete;
  Dir& operator=(const Dir&) = delete;
  ~Dir();

  // A folder named by a path the caller gave (links in it are the caller's
  // to follow); throws when it cannot be opened.
  static Dir open(const std::string& path);

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  std::string path_of(std::string_view name) const { return path_ + "/" + std::string(name); }

  // The subfolder at a relative path ("lib/pyshim"), each component opened
  // without following links; created (0755) when create is set. nullopt when
  // it does not exist and create is not set. A link on the way is an error.
  std::optional<Dir> sub(std::string_view relative, bool create) const;

  // lstat of an entry; nullopt when it does not exist.
  std::optional<struct stat> stat(std::string_view name) const;
  // stat of a config about to be stamped: when its mtime is too recent for
  // the stamp to trust it (racily_clean), moved back first.
  std::optional<struct stat> stat_for_stamp(std::string_view name) const;
  std::optional<std::string> readlink(std::string_view name) const;
  // fstat of the folder itself; nullopt for a folder a dry run would have
  // created, or when fstat fails.
  std::optional<struct stat> self_stat() const;
  // A regular file's bytes (never through a link), at most max bytes.
  std::optional<std::string> read(std::string_view name, std::size_t max = 64 << 20) const;
  // The first max bytes of a regular file (never through a link).
  std::optional<std::string> read_head(std::string_view name, std::size_t max) const;
  std::vector<std::string> names() const;  // entries, without . and ..

  // Atomic replace: name ends up a regular file with these bytes and mode.
  // Returns false (and touches nothing) when it already was exactly that.
  bool write(std::string_view name, std::string_view bytes, mode_t mode) const;
  // Atomic replace: name ends up a symlink to target; false if it already was.
  bool symlink(std::string_view name, std::string_view target) const;
  // Atomic replace of name by a hard link to from/from_name (a file of this
  // venv). Returns false when name already is that inode.
  bool link_from(const Dir& from, std::string_view from_name, std::string_view name) const;
  // Removes an entry (never following it); a folder is removed with all it
  // holds. False when there was nothing.
  bool remove(std::string_view name) const;
  void sync() const;  // fsync the folder: makes renames and unlinks in it durable

 private:
  // The one gate of every mutation: logs the planned action and returns
  // whether to apply it (false in a dry run, after printing it).
  // detail follows the name (" -> target"), already escaped.
  bool begin(std::string_view verb, std::string_view name, std::string_view detail = {}) const;
  void done(std::string_view verb, std::string_view name, std::string_view detail = {}) const;

  int fd_ = -1;
  std::string path_;
};

// A venv opened for a tool command: its root folder, locked (flock on the
// folder itself: nothing to create or clean up) for the whole command. A
// second command on the same venv says so and waits.
class VenvLock {
 public:
  static VenvLock open(const std::string& venv);
  const Dir& root() const { return root_; }

 private:
  explicit VenvLock(Dir root) : root_(std::move(root)) {}
  Dir root_;
};

}  // namespace pyshim
