// The launch rules, written once: what a launch looks up, trusts, refuses and
// checks, for every path that decides a launch. They are freestanding (no C
// library, no allocation, no exceptions, no thread-local storage) so the hot
// path can run them from the ELF entry point before glibc is set up
// (src/launcher/entry.cpp, with raw syscalls and an arena on the stack), and
// the general path (prepare_launch in src/core/launch.cpp, with libc and the
// heap) and `pyshim doctor` run the very same code.
//
// Each rule takes the OS as a template parameter (the syscalls it needs, on
// NUL-terminated paths; each returns 0 or an errno value unless said) and,
// where it makes paths, an Arena; it answers with a Verdict: which step and
// item failed and the ErrorKind, never text. Text is the general path's
// (launch.cpp makes every error message from a verdict), as are the lookups
// only it does: PYSHIM_CONFIG, symlink hops, TOML parsing, reading a file to
// look closer.
//
// The OS a rule is instantiated with:
//   int stat(const char* path, FileInfo& info);    // follows links
//   int lstat(const char* path, FileInfo& info);   // does not
//   long readlink(const char* path, char* buffer, std::size_t size);  // bytes or -errno
//   long getcwd(char* buffer, std::size_t size);   // bytes with the NUL, or -errno
//   int open_inherited(const char* path);          // an fd without O_CLOEXEC, or -errno
#pragma once

#include <sys/stat.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "pyshim/error.hpp"
#include "pyshim/file_info.hpp"
#include "pyshim/plan.hpp"
#include "pyshim/stamp.hpp"

namespace pyshim {

inline constexpr std::string_view kConfigName = "pyshim.toml";
inline constexpr std::string_view kRestoreLibraryName = "libpyshim-restore.so";
inline constexpr std::size_t kPathMax = 4096;  // PATH_MAX: what readlink and getcwd get

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

// The identity a stamp records of its config file (FileIdentity, stamp.hpp).
PYSHIM_INLINE FileIdentity identity_of(const FileInfo& info) {
  return info;  // the identity part of what stat said
}

namespace rules {

// ---------------------------------------------------------------- verdicts

// The steps of a launch, in order.
enum class Step : std::uint8_t {
  kAccept,          // is this a launch the caller takes (the hot path: stamped, no overrides)
  kInvoked,         // P, absolute
  kConfig,          // the config: beside P, one level up, the stamp
  kRestoreLibrary,  // found and trusted
  kInterpreter,     // exists, executable, not a launcher
  kPreload,         // item: which preload
  kLibraryFolder,   // item: which library_path folder
  kDescriptor,      // the restore library preloaded through /proc/self/fd/N
  kPlan,            // the environment, each entry within execve's limit
  kLaunch,          // everything decided: exec
};

// What a rule decided. kind kNone: it passed (or, for a step the hot path
// hands over, that the case is the general path's to decide, not an error).
struct Verdict {
  Step step = Step::kAccept;
  ErrorKind kind = ErrorKind::kNone;
  int item = 0;  // which preload, folder or environment entry
  int err = 0;   // the errno of the lookup that failed, when one did
  PYSHIM_INLINE bool passed() const { return kind == ErrorKind::kNone; }
};

PYSHIM_INLINE Verdict verdict(Step step, ErrorKind kind = ErrorKind::kNone, int item = 0,
                              int err = 0) {
  Verdict v;
  v.step = step;
  v.kind = kind;
  v.item = item;
  v.err = err;
  return v;
}

// ---------------------------------------------------------------- strings
// Our own: libc's string functions are IFUNCs, unresolved on the hot path.

PYSHIM_INLINE std::size_t length(const char* s) {
  std::size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}

PYSHIM_INLINE bool same(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a.data()[i] != b.data()[i]) return false;
  }
  return true;
}

PYSHIM_INLINE bool starts_with(const char* s, std::string_view prefix) {
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (s[i] != prefix.data()[i]) return false;  // also stops at s's NUL
  }
  return true;
}

PYSHIM_INLINE bool has_char(std::string_view s, char c) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s.data()[i] == c) return true;
  }
  return false;
}

PYSHIM_INLINE bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// The folder of an absolute path, as a prefix of it ("" for a path without
// a slash: nothing is made relative to the current folder).
PYSHIM_INLINE std::string_view dirname_of(std::string_view path) {
  while (path.size() > 1 && path.data()[path.size() - 1] == '/') path.remove_suffix(1);
  std::size_t slash = path.size();
  while (slash > 0 && path.data()[slash - 1] != '/') --slash;
  if (slash == 0) return {};
  if (slash == 1) return path.substr(0, 1);
  return path.substr(0, slash - 1);
}

// A bump allocator over a buffer (the hot path's is on its stack, the general
// path's on the heap); the last allocation can give back what it did not
// use, so what is used stays together (fewer stack pages touched).
class Arena {
 public:
  Arena(char* at, std::size_t size) : at_(at), end_(at + size) {}
  PYSHIM_INLINE char* take(std::size_t n, std::size_t align = 1) {
    std::uintptr_t p = reinterpret_cast<std::uintptr_t>(at_);
    std::uintptr_t aligned = (p + align - 1) & ~(std::uintptr_t{align} - 1);
    if (aligned > reinterpret_cast<std::uintptr_t>(end_) ||
        n > reinterpret_cast<std::uintptr_t>(end_) - aligned) {
      return nullptr;
    }
    last_ = reinterpret_cast<char*>(aligned);
    at_ = last_ + n;
    return last_;
  }
  PYSHIM_INLINE void keep(std::size_t used) { at_ = last_ + used; }  // of the last take()

 private:
  char* at_;
  char* end_;
  char* last_ = nullptr;
};

// dir/name[/name2], NUL-terminated in the arena (nullptr when it is full).
PYSHIM_INLINE const char* join(Arena& arena, std::string_view dir, std::string_view name,
                               std::string_view name2 = {}) {
  char* out = arena.take(dir.size() + 1 + name.size() + 1 + name2.size() + 1);
  if (out == nullptr) return nullptr;
  std::size_t n = 0;
  for (std::size_t i = 0; i < dir.size(); ++i) out[n++] = dir.data()[i];
  if (n == 0 || out[n - 1] != '/') out[n++] = '/';
  for (std::size_t i = 0; i < name.size(); ++i) out[n++] = name.data()[i];
  if (!name2.empty()) {
    if (out[n - 1] != '/') out[n++] = '/';
    for (std::size_t i = 0; i < name2.size(); ++i) out[n++] = name2.data()[i];
  }
  out[n++] = '\0';
  arena.keep(n);
  return out;
}

// s, NUL-terminated in the arena (nullptr when it is full).
PYSHIM_INLINE const char* copy(Arena& arena, std::string_view s) {
  char* out = arena.take(s.size() + 1);
  if (out == nullptr) return nullptr;
  for (std::size_t i = 0; i < s.size(); ++i) out[i] = s.data()[i];
  out[s.size()] = '\0';
  return out;
}

// "/proc/self/fd/N" into out (at least kFdPathSize bytes), NUL-terminated;
// returns its length. What LD_PRELOAD gets for a descriptor preload.
inline constexpr std::size_t kFdPathSize = 32;
PYSHIM_INLINE std::size_t write_fd_path(char* out, int fd) {
  constexpr char kFdDir[] = "/proc/self/fd/";
  std::size_t n = 0;
  for (std::size_t i = 0; i + 1 < sizeof kFdDir; ++i) out[n++] = kFdDir[i];
  char digits[12];
  std::size_t count = 0;
  unsigned value = static_cast<unsigned>(fd);
  do {
    digits[count++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (count > 0) out[n++] = digits[--count];
  out[n] = '\0';
  return n;
}

// ---------------------------------------------------------------- P

// Which string names P. AT_EXECFN (the path given to execve) normally. But
// when the kernel runs the launcher as a script's #! interpreter (every pip
// console script has #!/venv/bin/python), AT_EXECFN is the script and
// argv = {"/venv/bin/python", [shebang argument,] script, ...}: then argv[0]
// is the launcher's path. argv[0] also when AT_EXECFN is unusable (fexecve
// reports /dev/fd/N). True: argv[0].
PYSHIM_INLINE bool invoked_by_argv0(const char* execfn, int argc, const char* const* argv) {
  if (execfn == nullptr || execfn[0] == '\0' || starts_with(execfn, "/dev/fd/") ||
      starts_with(execfn, "/proc/self/fd/")) {
    return true;
  }
  // binfmt_script puts the interpreter path from the #! line in argv[0] (it
  // has a slash: the kernel needs a path) and the script's path, which is
  // AT_EXECFN, right after it or after the one optional #! argument.
  std::string_view exec(execfn, length(execfn));
  if (argc >= 2 && argv[0] != nullptr && has_char({argv[0], length(argv[0])}, '/') &&
      !same({argv[0], length(argv[0])}, exec)) {
    for (int i = 1; i <= 2 && i < argc; ++i) {
      if (argv[i] != nullptr && same({argv[i], length(argv[i])}, exec)) return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------- trust

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

// Why look_up_trusted did not trust a file.
enum class Refusal : std::uint8_t {
  kNone,
  kLinkOwner,   // a link someone else owns
  kLinkTarget,  // a trusted link to someone else's file
  kStranger,    // someone else's file, not trusted as the launcher is
  kUndecided,   // a first look only: deciding needs more syscalls
};

struct TrustedLookup {
  int err = 0;                       // the lookup's errno (ENOENT...)
  Refusal refused = Refusal::kNone;  // err 0: why the file is not trusted
  std::uint32_t uid = 0;             // whose the refused link or file is
  FileInfo info;                     // what path names (a link's target)
};

// The trust rule (trust_of, trusted_as_launcher) applied to path: lstat, and
// for a link stat, and for someone else's file its folder and the launcher
// binary (self_exe; none when nullptr). scratch: room for path's folder; when
// nullptr, only the first look is taken (one lstat: a file of root's or the
// caller's that is not a link), anything else is kUndecided.
template <class Os>
TrustedLookup look_up_trusted(Os& os, std::uint32_t euid, const char* self_exe, const char* path,
                              Arena* scratch) {
  TrustedLookup found;
  FileInfo own;
  if ((found.err = os.lstat(path, own)) != 0) return found;
  found.info = own;
  Trust trust = trust_of(own, euid);
  if (trust == Trust::kTrusted && !S_ISLNK(own.mode)) return found;
  if (scratch == nullptr) {
    found.refused = Refusal::kUndecided;
    return found;
  }
  if (S_ISLNK(own.mode)) {
    if (trust != Trust::kTrusted) {
      found.refused = Refusal::kLinkOwner;
      found.uid = own.uid;
      return found;
    }
    if ((found.err = os.stat(path, found.info)) != 0) return found;  // dangling
    if (trust_of(found.info, euid) != Trust::kTrusted) {
      found.refused = Refusal::kLinkTarget;
      found.uid = found.info.uid;
    }
    return found;
  }
  found.refused = Refusal::kStranger;
  found.uid = own.uid;
  std::string_view dir = dirname_of({path, length(path)});
  const char* folder_path = dir.empty() ? nullptr : copy(*scratch, dir);
  FileInfo folder, launcher;
  if (trust == Trust::kAskFolder && self_exe != nullptr && folder_path != nullptr &&
      os.stat(folder_path, folder) == 0 && os.stat(self_exe, launcher) == 0 &&
      trusted_as_launcher(own, folder, launcher)) {
    found.refused = Refusal::kNone;
  }
  return found;
}

// ---------------------------------------------------------------- the config

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

// The stamp still says what the file at info says: the same identity (an
// identity, ctime included, cannot be forged), and not racily clean.
PYSHIM_INLINE bool stamp_still_true(const FileIdentity& stamped, const FileInfo& info) {
  return stamped == identity_of(info) && !racily_clean(stamped);
}

// A config found at path is taken from the stamp, unparsed, when it is the
// stamped file and the stamp still says what it says.
PYSHIM_INLINE bool take_from_stamp(std::string_view stamped_source, const FileIdentity& stamped,
                                   std::string_view path, const FileInfo& info) {
  return same(stamped_source, path) && stamp_still_true(stamped, info);
}

// Where a config is looked for beside a launcher in dir: dir/pyshim.toml,
// then one level up (one candidate when the two are the same, at "/").
// Returns how many were written to out (0: the arena is full or dir empty).
PYSHIM_INLINE int config_candidates(Arena& arena, std::string_view dir, const char* out[2]) {
  std::string_view parent = dirname_of(dir);
  if (dir.empty() || parent.empty()) return 0;
  out[0] = join(arena, dir, kConfigName);
  out[1] = join(arena, parent, kConfigName);
  if (out[0] == nullptr || out[1] == nullptr) return 0;
  return same({out[0], length(out[0])}, {out[1], length(out[1])}) ? 1 : 2;
}

// VENV when dir is VENV/.pyshim/base/bin (a venv's base launcher's folder),
// else "": the base launcher takes the venv's config and restore library, so
// a moved or copied venv's derived environments use its own.
PYSHIM_INLINE std::string_view base_launcher_venv(std::string_view dir) {
  constexpr std::string_view kBaseBin = "/.pyshim/base/bin";
  if (dir.size() <= kBaseBin.size()) return {};
  std::size_t at = dir.size() - kBaseBin.size();
  for (std::size_t i = 0; i < kBaseBin.size(); ++i) {
    if (dir.data()[at + i] != kBaseBin.data()[i]) return {};
  }
  return dir.substr(0, at);
}

// ---------------------------------------------------------------- the restore library

// Where the restore library is looked for, from the real binary (none when
// self_exe is not absolute: nothing relative to the current folder):
// ../lib/pyshim/ first (where an installed pyshim keeps it and `pyshim
// install` puts it in a venv: the usual launch costs one stat), beside it
// (the build tree), and for a base launcher (VENV/.pyshim/base/bin/) VENV's
// own copy, so a moved or copied venv's derived environments use it.
// Returns how many were written to out (-1: the arena is full).
PYSHIM_INLINE int restore_library_candidates(Arena& arena, std::string_view self_exe,
                                             const char* out[3]) {
  std::string_view dir = dirname_of(self_exe);
  std::string_view parent = dirname_of(dir);
  if (self_exe.empty() || self_exe.data()[0] != '/' || dir.empty() || parent.empty()) return 0;
  std::string_view venv = base_launcher_venv(dir);
  out[0] = join(arena, parent, "lib/pyshim", kRestoreLibraryName);
  out[1] = join(arena, dir, kRestoreLibraryName);
  out[2] = venv.empty() ? nullptr : join(arena, venv, "lib/pyshim", kRestoreLibraryName);
  if (out[0] == nullptr || out[1] == nullptr || (!venv.empty() && out[2] == nullptr)) return -1;
  return venv.empty() ? 2 : 3;
}

// What lstat tells of a restore library the caller can use: a regular file
// at least an ELF header long, readable by the caller. The rest (an ELF
// shared object the interpreter's loader takes) needs reading it: the general
// path checks it (check_restore_library), the hot path leaves it to install,
// which put it there.
PYSHIM_INLINE bool may_be_a_restore_library(const FileInfo& info, std::uint32_t euid) {
  constexpr std::uint64_t kElfHeader = 64;  // sizeof(Elf64_Ehdr)
  std::uint32_t read = info.uid == euid ? S_IRUSR : S_IROTH;
  return S_ISREG(info.mode) && info.size >= kElfHeader && (euid == 0 || (info.mode & read) != 0);
}

// ---------------------------------------------------------------- the loader

// Why the loader cannot take a path in LD_PRELOAD (preload) or
// LD_LIBRARY_PATH as it is. glibc (elf/rtld.c, handle_preload_list) splits
// LD_PRELOAD at ' ' and ':' and drops an entry of PATH_MAX bytes or more;
// elf/dl-load.c splits LD_LIBRARY_PATH at ':' and ';'; both expand $ORIGIN,
// $LIB and $PLATFORM. Other whitespace is refused too: it is never what the
// user meant.
enum class LoaderRefusal : std::uint8_t { kNone, kSplits, kWhitespace, kToken, kTooLong };
PYSHIM_INLINE LoaderRefusal loader_refusal_of(std::string_view path, bool preload) {
  std::string_view separators = preload ? kPreloadSeparators : kLibraryPathSeparators;
  for (std::size_t i = 0; i < path.size(); ++i) {
    char c = path.data()[i];
    if (has_char(separators, c)) return LoaderRefusal::kSplits;
    if (is_space(c)) return LoaderRefusal::kWhitespace;
    if (c == '$') return LoaderRefusal::kToken;
  }
  if (preload && path.size() >= kPathMax) return LoaderRefusal::kTooLong;
  return LoaderRefusal::kNone;
}

// The restore library goes into LD_PRELOAD as an inherited descriptor
// (/proc/self/fd/N) when the loader cannot take its path as it is.
PYSHIM_INLINE bool needs_fd_preload(std::string_view path) {
  return loader_refusal_of(path, true) != LoaderRefusal::kNone;
}

// ---------------------------------------------------------------- the checks

// Step 5, one configured item per rule. check_items runs them in this order
// and stops at the first failure; `pyshim doctor` runs each one and reports
// every verdict, so the two cannot disagree.

// The interpreter exists and is an executable file. info: what stat said.
template <class Os>
Verdict check_interpreter(Os& os, const char* path, FileInfo& info) {
  int err = os.stat(path, info);
  if (err == ENOENT || err == ENOTDIR || err == ELOOP) {
    return verdict(Step::kInterpreter, ErrorKind::kInterpreterNotFound, 0, err);
  }
  if (err != 0) return verdict(Step::kInterpreter, ErrorKind::kInterpreterUnreadable, 0, err);
  if (!S_ISREG(info.mode) || (info.mode & 0111) == 0) {
    return verdict(Step::kInterpreter, ErrorKind::kInterpreterNotExecutable);
  }
  return verdict(Step::kInterpreter);
}

// Whether an executable interpreter may be a pyshim launcher, so that only
// reading it tells (the general path does, the hot path hands it over): a
// copy of this very binary, whatever its stamp, has exactly its size (the
// stamp area is fixed); a launcher of another build (A -> B -> A loops
// forever) is looked for only when a launcher exec'd this one directly (its
// bookkeeping is still there: no restore library ran in between), which
// costs nothing on a normal launch and stops a loop at its second hop.
PYSHIM_INLINE bool same_size_as_self(const FileInfo& interpreter, std::uint64_t self_size) {
  return self_size == 0 || interpreter.size == self_size;
}
PYSHIM_INLINE bool started_by_a_launcher(EnvView env) {
  for (const char* entry : env) {
    if (entry[0] == 'P' && starts_with(entry, "PYSHIM_ORIG_LD_PRELOAD=")) return true;
  }
  return false;
}

// The loader can take the preload's path, and it exists (not a folder).
template <class Os>
Verdict check_preload(Os& os, const char* path, std::size_t size, int item) {
  if (loader_refusal_of({path, size}, true) != LoaderRefusal::kNone) {
    return verdict(Step::kPreload, ErrorKind::kPreloadRefused, item);
  }
  FileInfo info;
  int err = os.stat(path, info);
  if (err == ENOENT || err == ENOTDIR) {
    return verdict(Step::kPreload, ErrorKind::kPreloadNotFound, item, err);
  }
  if (err != 0) return verdict(Step::kPreload, ErrorKind::kPreloadUnreadable, item, err);
  if (S_ISDIR(info.mode)) return verdict(Step::kPreload, ErrorKind::kPreloadIsFolder, item);
  return verdict(Step::kPreload, ErrorKind::kNone, item);
}

// The loader can take the folder's path. A missing folder is not refused:
// the loader skips it, as it does any LD_LIBRARY_PATH entry.
PYSHIM_INLINE Verdict check_library_folder(std::string_view path, int item) {
  if (loader_refusal_of(path, false) != LoaderRefusal::kNone) {
    return verdict(Step::kLibraryFolder, ErrorKind::kLibraryFolderRefused, item);
  }
  return verdict(Step::kLibraryFolder, ErrorKind::kNone, item);
}

// The preloads and library folders of a config, in order (after the
// interpreter); the first failure. The values are NUL-terminated (a Config's
// strings, a stamp's packed strings).
template <class Os>
Verdict check_lists(Os& os, const PlanConfig& config) {
  int item = 0;
  for (std::string_view lib : config.preload) {
    Verdict v = check_preload(os, lib.data(), lib.size(), item++);
    if (!v.passed()) return v;
  }
  item = 0;
  for (std::string_view folder : config.library_path) {
    Verdict v = check_library_folder(folder, item++);
    if (!v.passed()) return v;
  }
  return verdict(Step::kLibraryFolder);
}

// ---------------------------------------------------------------- execve's limits

// execve refuses with E2BIG any argument or environment string longer than
// MAX_ARG_STRLEN (32 pages) bytes, its NUL included: one of exactly that
// size is taken (fs/exec.c, copy_strings: strnlen_user(str, MAX_ARG_STRLEN)
// counts the NUL, and only a string that does not end within it is refused).
inline constexpr std::size_t kMaxArgString = 32 * 4096;
PYSHIM_INLINE bool too_long_for_execve(std::size_t length_without_nul) {
  return length_without_nul + 1 > kMaxArgString;
}

// A configured list that alone exceeds what the kernel takes for its
// variable: checked before the plan, in linear time, so the plan (whose
// de-duplication compares entries) never sees more than fits in 128 KiB.
// Returns the list's joined size (its separators included), or 0.
PYSHIM_INLINE std::size_t list_too_long(const ValueList& list) {
  std::size_t bytes = 0;
  for (std::string_view item : list) bytes += item.size() + 1;
  // bytes counts a separator per entry: the value is at least bytes - 1
  // long, plus its name.
  return bytes > 0 && too_long_for_execve(bytes - 1) ? bytes - 1 : 0;
}

// The first entry of a planned environment execve would refuse, as a
// kPlan verdict (item: its index).
PYSHIM_INLINE Verdict check_environment(const char* const* env, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    if (too_long_for_execve(length(env[i]))) {
      return verdict(Step::kPlan, ErrorKind::kTooLongForExecve, static_cast<int>(i));
    }
  }
  return verdict(Step::kPlan);
}

// ---------------------------------------------------------------- the image

// The launcher image's size in bytes, from its mapped ELF header (the
// section headers come last in files written by GNU ld, strip and objcopy):
// how a copy of it is recognised as an interpreter without reading it.
// 0 when header is not an ELF header.
template <class Ehdr>
PYSHIM_INLINE std::uint64_t image_size(const Ehdr* header) {
  constexpr char kMagic[] = {0x7f, 'E', 'L', 'F'};
  if (header == nullptr) return 0;
  for (std::size_t i = 0; i < sizeof kMagic; ++i) {
    if (static_cast<char>(header->e_ident[i]) != kMagic[i]) return 0;
  }
  return header->e_shoff + static_cast<std::uint64_t>(header->e_shnum) * header->e_shentsize;
}

}  // namespace rules

// The names the rest of the code base uses unqualified.
using rules::base_launcher_venv;
using rules::kMaxArgString;
using rules::kTimestampGranularityNs;
using rules::may_be_a_restore_library;
using rules::racily_clean;
using rules::too_long_for_execve;
using rules::Trust;
using rules::trust_of;
using rules::trusted_as_launcher;

}  // namespace pyshim
