// The OS edge: the only code that talks to the kernel. Kept small so the
// rest can be tested without a disk.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pyshim/launch.hpp"

namespace pyshim {

class RealFileSystem final : public FileSystem {
 public:
  // The launcher passes keep_open: it opens files O_CLOEXEC and execs right
  // after, so close() would be a wasted syscall.
  explicit RealFileSystem(bool keep_open = false) : keep_open_(keep_open) {}
  int stat(const std::string& path, FileInfo& info) override;
  int lstat(const std::string& path, FileInfo& info) override;
  int read_file(const std::string& path, std::string& out, FileInfo* opened = nullptr) override;
  int readlink(const std::string& path, std::string& target) override;
  int read_head(const std::string& path, std::size_t max, std::string& out) override;
  int open_inherited(const std::string& path, int& fd) override;

 private:
  bool keep_open_;
};

// P: the path this process was executed by, absolute, symlinks not resolved
// (AT_EXECFN; else argv[0] made absolute; else a PATH search like execvp's).
std::optional<std::string> invoked_path(int argc, const char* const* argv, const char* const* envp);

// name looked up in path_value (a PATH value; "/bin:/usr/bin" when null)
// as execvp does: the first executable regular file, made absolute.
std::optional<std::string> search_path(std::string_view name, const char* path_value);

// The real binary, for the restore library lookup: readlink(/proc/self/exe);
// without a usable /proc (not mounted, or readlink refused by a seccomp
// filter) the realpath of AT_EXECFN when that is absolute; else "" (never a
// path relative to the current folder).
std::string self_exe();

// Size of this executable's file, read from its own mapped ELF header, so
// recognising the shim as its own interpreter costs no syscall in the
// common case. 0 if unknown.
std::uint64_t self_image_size();

bool is_secure();  // AT_SECURE (setuid/setgid/capabilities)

std::uint32_t effective_uid();  // from the auxiliary vector: no syscall

}  // namespace pyshim

namespace pyshim {

// What the launcher at `launcher` would see if started by that path now:
// P is the path made absolute (not resolved), the real binary is its
// realpath, the environment is this process's. For `show` and `doctor`.
Result<LaunchRequest> request_for_launcher(const std::string& launcher, EnvView env);

// The one reader of regular files (RealFileSystem's read_file and
// read_head, Dir::read, every file tool mode reads): opened relative to
// dir_fd (AT_FDCWD: the cwd) without blocking, so a FIFO or device is
// refused, not waited on; kWhole: its bytes, nullopt when it is larger than
// max; kHead: its first max bytes. nullopt when it cannot be opened or is
// not a regular file. follow_links = false: a link there is refused too.
enum class ReadSize { kWhole, kHead };
std::optional<std::string> read_regular(int dir_fd, const std::string& path, bool follow_links,
                                        std::size_t max, ReadSize size = ReadSize::kWhole);

// realpath(3), "" on failure.
std::string real_path(const std::string& path);

// stat(2) (links followed) and lstat(2) (not) of a path, relative ones
// against the cwd; nullopt when it fails (errno says why).
std::optional<FileInfo> stat_path(const std::string& path);
std::optional<FileInfo> lstat_path(const std::string& path);

// access(X_OK): this process may execute path (links followed).
bool may_execute(const std::string& path);

// A regular file this process may execute (links followed): what execvp
// would run.
bool is_executable_file(const std::string& path);

// Whether file descriptor fd is a terminal (isatty(3)).
bool is_terminal(int fd);

// The names in the folder at path (a link to it followed; not sorted), none
// when it cannot be read. For paths the caller gave or reads only: what
// changes a venv goes through Dir.
std::vector<std::string> folder_names(const std::string& path);

// A regular file (or with Below::kAll any entry) found below a folder by
// files_below.
struct FoundFile {
  std::string path;      // folder + "/" + the relative path
  std::string relative;  // below the folder
};
enum class Below { kRegularFiles, kAll };
// Every regular file below the folder at path whose name `wanted` accepts
// (not through a folder link, not a link itself; unreadable folders
// skipped), in readdir's order. kAll: every entry whose name `wanted`
// accepts (folders, links, anything), folder links still not entered: the
// caller looks at each itself.
std::vector<FoundFile> files_below(const std::string& path,
                                   const std::function<bool(std::string_view name)>& wanted,
                                   Below which = Below::kRegularFiles);

// mkdir -p (links on the way followed: the caller's own path); false when
// it could not be made.
bool make_folders(const std::string& path);

// getcwd(3), "" on failure.
std::string current_folder();

// readlink(2) of a path (the link itself, not followed); nullopt when it is
// not a link or cannot be read.
std::optional<std::string> read_link(const std::string& path);

// Makes path absolute against the cwd without resolving symlinks.
std::string absolute_path(const std::string& path);

// The stamp area of a launcher file on disk (its .pyshim.stamp section), ""
// when the file has none (not a 0.2+ launcher). For show, doctor, install.
std::string read_stamp_area(const std::string& launcher);

}  // namespace pyshim
