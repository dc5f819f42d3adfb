// Everything the launcher decides before execve(): find and parse the config,
// locate the restore library, plan, and check. The file system is passed in,
// so this runs against a fake in unit tests and against the disk in the
// launcher, `pyshim show` and `pyshim doctor`.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pyshim/config.hpp"
#include "pyshim/error.hpp"
#include "pyshim/path.hpp"
#include "pyshim/plan.hpp"
#include "pyshim/stamp.hpp"

namespace pyshim {

inline constexpr std::string_view kConfigName = "pyshim.toml";
inline constexpr std::string_view kRestoreLibraryName = "libpyshim-restore.so";
inline constexpr std::string_view kConfigEnvVar = "PYSHIM_CONFIG";
inline constexpr std::string_view kLogEnvVar = "PYSHIM_LOG";
// A config is a regular file of at most this size (a planted /dev/zero or
// FIFO is refused, not read forever).
inline constexpr std::uint64_t kMaxConfigSize = 1 << 20;

// What stat(2) answered, as the core needs it: one conversion for the OS
// layer and the launcher's raw-syscall entry point (inlined there).
PYSHIM_INLINE FileInfo file_info_of(const struct stat& st) {
  FileInfo info;
  info.mode = st.st_mode;
  info.dev = st.st_dev;
  info.ino = st.st_ino;
  info.size = static_cast<std::uint64_t>(st.st_size);
  info.mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
  info.ctime_ns = st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
  info.uid = st.st_uid;
  return info;
}

// execve refuses with E2BIG any argument or environment string longer than
// MAX_ARG_STRLEN (32 pages) bytes, its NUL included: one of exactly that
// size is taken (fs/exec.c, copy_strings: strnlen_user(str, MAX_ARG_STRLEN)
// counts the NUL, and only a string that does not end within it is refused).
inline constexpr std::size_t kMaxArgString = 32 * 4096;
PYSHIM_INLINE bool too_long_for_execve(std::size_t length_without_nul) {
  return length_without_nul + 1 > kMaxArgString;
}

// The one trust rule for every path the launcher takes from a file or
// derives without /proc: the config beside P or stamped, the restore library
// found or stamped (README.md "Trust" says why it is enough). info is what
// lstat said: a link is judged by its own owner, not its target's.
//   kTrusted    owned by root or the caller: nobody else can change it, and
//               a replacement would be the replacer's and fail this rule. A
//               link must then also have a kTrusted target.
//   kAskFolder  a regular file someone else owns: trusted only as the
//               launcher binary itself is (trusted_as_launcher).
//   kRefused    a link someone else owns, or anything else of theirs.
// The hot path (src/launcher/hot_path.hpp) takes kTrusted regular files and
// leaves every other case to the general path, which decides it in full.
enum class Trust { kTrusted, kAskFolder, kRefused };
PYSHIM_INLINE Trust trust_of(const FileInfo& info, std::uint32_t euid) {
  if (info.uid == euid || info.uid == 0) return Trust::kTrusted;
  return S_ISREG(info.mode) ? Trust::kAskFolder : Trust::kRefused;
}
// A kAskFolder file: its owner owns the launcher binary too (and so could
// replace the binary itself), and its folder is one nobody else can write
// (sticky or not: a sticky /tmp lets anyone plant a file of their own).
// So root may run a user's own venv, but never a file a stranger planted
// where a stamp points, or anything in /tmp that is not root's or the caller's.
PYSHIM_INLINE bool trusted_as_launcher(const FileInfo& file, const FileInfo& folder,
                                       const FileInfo& launcher) {
  return file.uid == launcher.uid && S_ISDIR(folder.mode) && (folder.mode & S_IWOTH) == 0;
}

// A stamp is "racily clean" (git's word for its index) when its file's mtime
// is not older than the stamp's clock by the file system's timestamp
// granularity: a same-size edit within that window can leave the identity
// unchanged, so the file is parsed instead of trusted by identity. The
// stamp's clock is the file's ctime recorded in it (install stamps right
// after its last change to the file, so the stamp is no older than that; no
// user can set a ctime). The granularity is the coarsest of Linux file
// systems (FAT: 2 s; others tick at 1 s, or at the kernel's coarse clock).
// `pyshim install` moves the mtime of the config it writes back by that much
// before it stamps, so its stamps are not racy, and any later edit sets an
// mtime the stamp does not have.
inline constexpr std::int64_t kTimestampGranularityNs = 2'000'000'000;
PYSHIM_INLINE bool racily_clean(const FileIdentity& id) {
  return id.mtime_ns + kTimestampGranularityNs > id.ctime_ns;
}

inline FileIdentity identity_of(const FileInfo& info) {
  return info;  // the identity part of what stat said
}

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
  // The launcher's own stamp (section 2a), decoded; stamp_error when the
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

// Which string names P. AT_EXECFN (the path given to execve) normally. But
// when the kernel runs the launcher as a script's #! interpreter (every pip
// console script has #!/venv/bin/python), AT_EXECFN is the script and
// argv = {"/venv/bin/python", [shebang argument,] script, ...}: then argv[0]
// is the launcher's path. argv[0] also when AT_EXECFN is unusable (fexecve
// reports /dev/fd/N).
enum class InvokedSource { kExecFn, kArgv0 };
InvokedSource invoked_source(const char* execfn, int argc, const char* const* argv);

// The trust rule (trust_of, trusted_as_launcher) applied to path: lstat, and
// for a link stat, and for someone else's file its folder and the launcher
// binary (self_exe; none when empty). err: the lookup's errno (ENOENT...);
// refused: why the file is not trusted ("" when it is); info: what path
// names (a link's target).
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

// VENV when dir is VENV/.pyshim/base/bin (a venv's base launcher's folder),
// else "": the base launcher takes the venv's config and restore library, so
// a moved or copied venv's derived environments use its own. Compared by
// hand: the hot path calls it before glibc is set up (no memcmp).
PYSHIM_INLINE std::string_view base_launcher_venv(std::string_view dir) {
  constexpr std::string_view kBaseBin = "/.pyshim/base/bin";
  if (dir.size() <= kBaseBin.size()) return {};
  std::size_t at = dir.size() - kBaseBin.size();
  for (std::size_t i = 0; i < kBaseBin.size(); ++i) {
    if (dir[at + i] != kBaseBin[i]) return {};
  }
  return dir.substr(0, at);
}

// Where the restore library is looked for, from the real binary (none when
// self_exe is not absolute): ../lib/pyshim/, beside it, and for a base
// launcher (VENV/.pyshim/base/bin/) VENV/lib/pyshim/.
std::vector<std::string> restore_library_candidates(std::string_view self_exe);

// The first of restore_library_candidates(), then the stamped path (a copied
// launcher lands without one beside it), that is a regular file passing the
// trust rule for euid (look_up_trusted).
Result<std::string> find_restore_library(FileSystem& fs, std::string_view self_exe,
                                         const Stamp* stamp, std::uint32_t euid);

// True when the loader cannot take this path as an LD_PRELOAD entry as it
// is: a separator, whitespace, or '$' (the loader expands $ORIGIN, $LIB and
// $PLATFORM in preload paths).
bool needs_fd_preload(std::string_view path);

// Why the loader cannot take this path in LD_PRELOAD (preload = true) or
// LD_LIBRARY_PATH as it is, or "" when it can. glibc (elf/rtld.c,
// handle_preload_list) splits LD_PRELOAD at ' ' and ':' and drops an entry
// of PATH_MAX bytes or more; elf/dl-load.c splits LD_LIBRARY_PATH at ':'
// and ';'; both expand $ORIGIN, $LIB and $PLATFORM. Other whitespace is
// refused too: it is never what the user meant.
std::string loader_refusal(std::string_view path, bool preload);

// The refusal (message and hint; no exit code or context) of a path the
// loader cannot take as it is (loader_refusal), or nullopt. The launcher
// gives it for a hand-edited config, install before it writes one.
std::optional<Error> loader_path_error(std::string_view path, bool preload);

// Step 5 of the design, one configured item per function. check_launch runs
// them in this order and stops at the first failure; `pyshim doctor` runs
// each one and reports every verdict, so the two cannot disagree.
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
// it, and LD_PRELOAD leaks into every child. The hot path checks only what
// lstat tells (regular, at least an ELF header long, readable by the caller:
// may_be_a_restore_library) and leaves the rest to install, which put it there.
Status check_restore_library(FileSystem& fs, const std::string& restore,
                             const std::string& interpreter);
PYSHIM_INLINE bool may_be_a_restore_library(const FileInfo& info, std::uint32_t euid) {
  constexpr std::uint64_t kElfHeader = 64;  // sizeof(Elf64_Ehdr)
  std::uint32_t read = info.uid == euid ? S_IRUSR : S_IROTH;
  return S_ISREG(info.mode) && info.size >= kElfHeader && (euid == 0 || (info.mode & read) != 0);
}
Status check_launch(FileSystem& fs, const LaunchRequest& request, const Launch& launch);

Result<Launch> prepare_launch(FileSystem& fs, const LaunchRequest& request);

// text with control bytes, C1 controls and invalid UTF-8 shown as \xNN, cut
// at max bytes: what error messages echo from files others may write.
std::string printable(std::string_view text, std::size_t max);

}  // namespace pyshim
