// The general launch path: everything the launcher decides before execve()
// when the hot path (src/launcher/hot_path.hpp) hands a launch over, and what
// `pyshim show` and `pyshim doctor` run. It applies the launch rules of
// launch_rules.hpp (the same code the hot path runs) through a FileSystem,
// and adds what only it does: PYSHIM_CONFIG, symlink hops of P, parsing the
// TOML, reading files to look closer, and the error text made from each
// rule's verdict. The file system is passed in, so this runs against a fake
// in unit tests and against the disk in the launcher.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pyshim/config.hpp"
#include "pyshim/error.hpp"
#include "pyshim/launch_rules.hpp"
#include "pyshim/path.hpp"
#include "pyshim/plan.hpp"
#include "pyshim/stamp.hpp"

namespace pyshim {

inline constexpr std::string_view kConfigEnvVar = "PYSHIM_CONFIG";
inline constexpr std::string_view kLogEnvVar = "PYSHIM_LOG";
// A config is a regular file of at most this size (a planted /dev/zero or
// FIFO is refused, not read forever).
inline constexpr std::uint64_t kMaxConfigSize = 1 << 20;

// The OS lookups the core needs. Each returns 0 or an errno value.
class FileSystem {
 public:
  virtual ~FileSystem() = default;
  virtual int stat(const std::string& path, FileInfo& info) = 0;   // follows symlinks
  virtual int lstat(const std::string& path, FileInfo& info) = 0;  // does not
  // A config: EINVAL when not a regular file, EISDIR for a folder, EFBIG
  // when larger than kMaxConfigSize; never blocks. opened (if given): what
  // fstat said of the file read, so a caller can tell it is the one it
  // checked.
  virtual int read_file(const std::string& path, std::string& out, FileInfo* opened = nullptr) = 0;
  virtual int readlink(const std::string& path, std::string& target) = 0;
  // The first max bytes (fewer if the file is shorter).
  virtual int read_head(const std::string& path, std::size_t max, std::string& out) = 0;
  // Opens path for the interpreter to inherit (no O_CLOEXEC): the restore
  // library is preloaded as /proc/self/fd/N when its path holds a character
  // the loader splits LD_PRELOAD on.
  virtual int open_inherited(const std::string& path, int& fd) = 0;
};

// A FileSystem as the launch rules' OS (launch_rules.hpp).
struct RulesOs {
  FileSystem& fs;
  int stat(const char* path, FileInfo& info) { return fs.stat(path, info); }
  int lstat(const char* path, FileInfo& info) { return fs.lstat(path, info); }
  int open_inherited(const char* path) {
    int fd = -1;
    int err = fs.open_inherited(path, fd);
    return err != 0 ? -err : fd;
  }
};

struct LaunchRequest {
  std::string invoked_path;  // P: absolute, symlinks not resolved
  EnvView env;               // the caller's environment
  bool secure = false;       // AT_SECURE: the launcher refuses to run
  std::uint32_t euid = 0;    // whose configs are trusted anywhere (and root's)
  // The launcher's real binary (/proc/self/exe; without a usable /proc, the
  // realpath of an absolute AT_EXECFN; else empty: no path is derived from
  // it, never one relative to the cwd).
  std::string self_exe;
  std::uint64_t self_size = 0;  // its size in bytes, to recognise copies of it cheaply
  // Always look for the launcher note in the interpreter (show, doctor); the
  // launcher only does when a launcher exec'd it directly (see check_launch).
  bool thorough = false;
  // The launcher's own stamp (stamp.hpp), decoded; stamp_error when the
  // image holds a damaged one (reported only if the stamp is needed).
  std::optional<Stamp> stamp;
  std::optional<Error> stamp_error;
};

enum class ConfigSource { kEnvVar, kFile, kStamp };

struct Launch {
  Config config;
  ConfigSource source = ConfigSource::kFile;
  std::string restore_library;  // the real path
  std::string restore_preload;  // what LD_PRELOAD gets: the path or /proc/self/fd/N
  Plan plan;
};

// Every pyshim binary carries an ELF note (name "pyshim", type 1) in its
// first page, so a launcher of any build is recognised as an interpreter.
inline constexpr char kLauncherNote[] = {7,   0,   0,   0,   8,   0,   0,   0,   1, 0,
                                         0,   0,   'p', 'y', 's', 'h', 'i', 'm', 0, 0,
                                         'l', 'a', 'u', 'n', 'c', 'h', 'e', 'r'};
bool has_launcher_note(std::string_view head);

// The file at path is a pyshim launcher of any build (its note), or a #!
// script whose interpreter, through up to 4 levels of #! as the kernel
// follows them, is one: exec'ing it from a launcher would loop. For doctor
// and install to refuse such an `interpreter` (check_interpreter does at the
// second hop of a launch, and whenever request.thorough is set).
bool runs_a_launcher(FileSystem& fs, std::string path);

// The CLI carries a note of its own (type 2, "toolmode"), so install refuses
// it as an interpreter too (it would answer every launch with its usage).
inline constexpr char kToolNote[] = {7,   0,   0,   0,   8,   0,   0,   0,   2, 0,
                                     0,   0,   'p', 'y', 's', 'h', 'i', 'm', 0, 0,
                                     't', 'o', 'o', 'l', 'm', 'o', 'd', 'e'};

struct FoundConfig {
  std::string path;
  std::string text;  // empty when source is kStamp
  ConfigSource source = ConfigSource::kFile;
};

// Which string names P (rules::invoked_by_argv0).
enum class InvokedSource { kExecFn, kArgv0 };
InvokedSource invoked_source(const char* execfn, int argc, const char* const* argv);

// rules::look_up_trusted in full (self_exe: none when empty). err: the
// lookup's errno (ENOENT...); refused: why the file is not trusted ("" when
// it is), in words; info: what path names (a link's target).
struct Lookup {
  int err = 0;
  std::string refused;
  FileInfo info;
};
Lookup look_up_trusted(FileSystem& fs, std::uint32_t euid, std::string_view self_exe,
                       const std::string& path);

// $PYSHIM_CONFIG, else pyshim.toml beside P, then one level up; then the
// same for each symlink hop of P; then the stamp. A file found on the way
// that is the stamped one, unchanged, is not read: the stamp is used (the
// hot path). Never the cwd.
Result<FoundConfig> find_config(FileSystem& fs, const LaunchRequest& request);

// The Config a FoundConfig stands for: the stamp's, or the file parsed.
Result<Config> load_config(const LaunchRequest& request, const FoundConfig& found);

// rules::restore_library_candidates, as strings.
std::vector<std::string> restore_library_candidates(std::string_view self_exe);

// The first of restore_library_candidates(), then the stamped path (a copied
// launcher lands without one beside it), that is a regular file passing the
// trust rule for euid (look_up_trusted).
Result<std::string> find_restore_library(FileSystem& fs, std::string_view self_exe,
                                         const Stamp* stamp, std::uint32_t euid);

using rules::needs_fd_preload;

// Why the loader cannot take this path in LD_PRELOAD (preload = true) or
// LD_LIBRARY_PATH as it is (rules::loader_refusal_of), in words, or "" when
// it can.
std::string loader_refusal(std::string_view path, bool preload);

// The refusal (message and hint; no exit code or context) of a path the
// loader cannot take as it is (loader_refusal), or nullopt. The launcher
// gives it for a hand-edited config, install before it writes one.
std::optional<Error> loader_path_error(std::string_view path, bool preload);

// Step 5, one configured item per function: the rules of the same names in
// launch_rules.hpp, their verdict (Error::kind) with its text. check_launch
// runs them in this order and stops at the first failure; `pyshim doctor`
// runs each one and reads each verdict's kind, so the two cannot disagree.
//
// The interpreter exists, is an executable file and is not a pyshim
// launcher (this one, a copy of it, or one of another build).
Status check_interpreter(FileSystem& fs, const LaunchRequest& request, const Config& config);
// The loader can take the path in LD_PRELOAD, and it exists (not a folder).
Status check_preload(FileSystem& fs, const Config& config, const Setting& lib);
// The loader can take the path in LD_LIBRARY_PATH. A missing folder is not
// refused: the loader skips it, as it does any LD_LIBRARY_PATH entry.
Status check_library_folder(const Config& config, const Setting& folder);
// The restore library is a readable ELF shared object the interpreter's
// loader accepts (class, byte order, machine): else the loader warns, skips
// it, and LD_PRELOAD leaks into every child. General-only (it reads the
// file); the hot path checks what lstat tells (may_be_a_restore_library).
Status check_restore_library(FileSystem& fs, const std::string& restore,
                             const std::string& interpreter);
Status check_launch(FileSystem& fs, const LaunchRequest& request, const Launch& launch);

Result<Launch> prepare_launch(FileSystem& fs, const LaunchRequest& request);

// text with control bytes, C1 controls and invalid UTF-8 shown as \xNN, cut
// at max bytes: what error messages echo from files others may write.
std::string printable(std::string_view text, std::size_t max);

}  // namespace pyshim
