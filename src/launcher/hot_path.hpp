// The hot path: a launcher copy with a stamped config, started the usual way,
// launches from its ELF entry point, before the C library is initialised
// (entry.cpp). It handles the common case only and hands everything else to
// the general path (prepare_launch in src/core/launch.cpp, which makes the
// exact error messages) by returning false: a missing or damaged stamp,
// PYSHIM_CONFIG or PYSHIM_LOG set, AT_SECURE, a config that is not the
// stamped file unchanged, a symlink hop, any failed check. When it does
// launch, it decides what the general path would: the same lookups in the
// same order, the one planner (plan_env), the same checks. The unit tests
// (tests/unit/hot_path_test.cpp) hold the two paths to byte-identical plans.
//
// Everything here is inline and reached from one PYSHIM_HOT function, so it
// ends up in the hot section; the OS is a template parameter (raw syscalls
// in the launcher, a fake in the tests). No libc, no heap: memory comes from
// an arena on the caller's stack, sized by arena_size() before the lookups.
#pragma once

#include <sys/stat.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "pyshim/launch.hpp"
#include "pyshim/plan.hpp"
#include "pyshim/stamp.hpp"

namespace pyshim::hot {

inline constexpr std::size_t kPathMax = 4096;  // PATH_MAX: what readlink and getcwd get

struct Inputs {
  int argc = 0;
  char** argv = nullptr;
  EnvView env;
  const char* execfn = nullptr;  // AT_EXECFN
  bool secure = false;           // AT_SECURE
  std::uint32_t euid = 0;        // AT_EUID
  std::uint64_t self_size = 0;   // see self_image_size()
  std::string_view stamp_area;
};

// What execve gets.
struct Launch {
  const char* interpreter = nullptr;
  const char* argv0 = nullptr;
  const char** env = nullptr;  // nullptr-terminated
  int fd = -1;                 // the restore library opened for /proc/self/fd/N, or -1
};

// A bump allocator over a buffer; the last allocation can give back what it
// did not use, so what is used stays together (fewer stack pages touched).
class Arena {
 public:
  Arena(char* at, std::size_t size) : at_(at), end_(at + size) {}
  char* take(std::size_t n, std::size_t align = 1) {
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
  void keep(std::size_t used) { at_ = last_ + used; }  // of the last take()

 private:
  char* at_;
  char* end_;
  char* last_ = nullptr;
};

// String helpers of our own: libc's are not usable yet.
inline std::size_t length(const char* s) {
  std::size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}

inline bool same(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a.data()[i] != b.data()[i]) return false;
  }
  return true;
}

inline bool starts_with(const char* s, std::string_view prefix) {
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (s[i] != prefix.data()[i]) return false;  // also stops at s's NUL
  }
  return true;
}

inline bool has_char(std::string_view s, char c) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s.data()[i] == c) return true;
  }
  return false;
}

inline bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// loader_refusal() of launch.cpp is not "": the loader would split the path
// (LD_PRELOAD at ' ' and ':', LD_LIBRARY_PATH at ':' and ';'), it holds
// whitespace or a '$' token, or it is a preload of 4096 bytes or more.
inline bool refused_by_loader(std::string_view path, bool preload) {
  std::string_view separators = preload ? kPreloadSeparators : kLibraryPathSeparators;
  for (std::size_t i = 0; i < path.size(); ++i) {
    char c = path.data()[i];
    if (has_char(separators, c) || is_space(c) || c == '$') return true;
  }
  return preload && path.size() >= 4096;
}

// needs_fd_preload() of launch.cpp.
inline bool needs_fd_preload(std::string_view path) {
  return refused_by_loader(path, true);
}

// dirname() of launch.cpp, as a prefix of path (P and the real binary are
// absolute, so "." never comes up; it is refused rather than made up).
inline std::string_view dirname_of(std::string_view path) {
  while (path.size() > 1 && path.data()[path.size() - 1] == '/') path.remove_suffix(1);
  std::size_t slash = path.size();
  while (slash > 0 && path.data()[slash - 1] != '/') --slash;
  if (slash == 0) return {};
  if (slash == 1) return path.substr(0, 1);
  return path.substr(0, slash - 1);
}

// join_path() of launch.cpp, NUL-terminated in the arena.
inline const char* join(Arena& arena, std::string_view dir, std::string_view name,
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

// s, NUL-terminated in the arena.
inline const char* copy(Arena& arena, std::string_view s) {
  char* out = arena.take(s.size() + 1);
  if (out == nullptr) return nullptr;
  for (std::size_t i = 0; i < s.size(); ++i) out[i] = s.data()[i];
  out[s.size()] = '\0';
  return out;
}

// invoked_source() of launch.cpp: true when argv[0] names P, not AT_EXECFN.
inline bool invoked_by_argv0(const char* execfn, int argc, char* const* argv) {
  if (execfn == nullptr || execfn[0] == '\0' || starts_with(execfn, "/dev/fd/") ||
      starts_with(execfn, "/proc/self/fd/")) {
    return true;
  }
  if (argc >= 2 && argv[0] != nullptr && has_char({argv[0], length(argv[0])}, '/') &&
      !same({argv[0], length(argv[0])}, {execfn, length(execfn)})) {
    for (int i = 1; i <= 2 && i < argc; ++i) {
      if (argv[i] != nullptr && same({argv[i], length(argv[i])}, {execfn, length(execfn)})) {
        return true;
      }
    }
  }
  return false;
}

// The path P names before it is made absolute, or nullptr when only the
// general path can find it (no argv[0], or a bare name to search PATH for).
inline const char* invoked_name(const Inputs& in) {
  if (!invoked_by_argv0(in.execfn, in.argc, in.argv)) return in.execfn;
  const char* argv0 = in.argc > 0 ? in.argv[0] : nullptr;
  if (argv0 == nullptr || argv0[0] == '\0' || !has_char({argv0, length(argv0)}, '/')) {
    return nullptr;
  }
  return argv0;
}

// The cheap part, before any syscall: is this a launch the hot path takes?
inline bool accepts(const Inputs& in, StampView& stamp) {
  if (in.secure) return false;  // the general path refuses it, with the reason
  for (const char* entry : in.env) {
    // Any PYSHIM_CONFIG (even empty) or PYSHIM_LOG: the general path.
    if (entry[0] == 'P' &&
        (starts_with(entry, "PYSHIM_CONFIG=") || starts_with(entry, "PYSHIM_LOG="))) {
      return false;
    }
  }
  if (invoked_name(in) == nullptr) return false;
  return view_stamp(in.stamp_area, stamp, nullptr) == StampState::kStamped;
}

// Bytes of arena plan() needs at most.
inline std::size_t arena_size(const Inputs& in, const StampView& stamp) {
  const char* name = invoked_name(in);
  std::size_t p = length(name) + 2;
  if (name[0] != '/') p += kPathMax;  // made absolute against the cwd
  std::size_t configs = 2 * (p + kConfigName.size() + 2) + 2 * (p + 1);
  std::size_t self = kPathMax;
  std::size_t restores = 3 * (kPathMax + 32 + kRestoreLibraryName.size());
  std::size_t restore = stamp.restore_library.size() > 32 ? stamp.restore_library.size() : 32;
  if (restore < kPathMax + 32 + kRestoreLibraryName.size()) {
    restore = kPathMax + 32 + kRestoreLibraryName.size();
  }
  PlanSize plan = plan_size(stamp.config, in.env, restore, p);
  return p + configs + self + restores + 32 + plan.entries * sizeof(const char*) + plan.bytes +
         plan.pieces * sizeof(std::string_view) + 3 * 16;
}

// Steps 1-5 of the design for the stamped case; false: take the general path.
template <class Os>
bool plan(Os& os, const Inputs& in, const StampView& stamp, Arena& arena, Launch& out) {
  // 1. P, absolute, symlinks not resolved (absolute() of src/os/system.cpp).
  const char* name = invoked_name(in);
  const char* p = name;
  std::size_t p_size = length(name);
  if (name[0] != '/') {
    char* buffer = arena.take(kPathMax + p_size + 2);
    if (buffer == nullptr) return false;
    long n = os.getcwd(buffer, kPathMax);
    if (n <= 1 || buffer[0] != '/') return false;
    std::size_t size = static_cast<std::size_t>(n) - 1;  // getcwd counts the NUL
    if (size > 1) buffer[size++] = '/';
    while (name[0] == '.' && name[1] == '/') name += 2;
    for (std::size_t i = 0; name[i] != '\0'; ++i) buffer[size++] = name[i];
    buffer[size] = '\0';
    arena.keep(size + 1);
    p = buffer;
    p_size = size;
  }
  std::string_view invoked(p, p_size);

  // 2. The config: pyshim.toml beside P, then one level up; it must be the
  // stamped file, unchanged (find_config's take()). None there and P not a
  // link: the stamp, unless its file changed (then it is parsed).
  std::string_view dir = dirname_of(invoked);
  std::string_view parent = dirname_of(dir);
  if (dir.empty() || parent.empty()) return false;
  const char* candidates[2] = {join(arena, dir, kConfigName), join(arena, parent, kConfigName)};
  if (candidates[0] == nullptr || candidates[1] == nullptr) return false;
  bool found = false;
  for (int i = 0; i < 2 && !found; ++i) {
    std::string_view candidate(candidates[i], length(candidates[i]));
    if (i == 1 && same(candidate, {candidates[0], length(candidates[0])})) break;
    FileInfo info;
    int err = os.lstat(candidates[i], info);
    if (err == ENOENT || err == ENOTDIR) continue;
    if (err != 0) return false;
    // The trust rule (launch.hpp): the hot path takes the caller's or root's
    // regular file; a link, or anyone else's file, is the general path's to
    // judge (look_up_trusted) and report.
    if (!S_ISREG(info.mode) || trust_of(info, in.euid) != Trust::kTrusted) return false;
    // An edited or another config: the general path parses it.
    // A racily clean stamp (launch.hpp): the general path parses the file.
    if (!same(stamp.source, candidate) || !(identity_of(info) == stamp.identity) ||
        racily_clean(stamp.identity)) {
      return false;
    }
    found = true;
  }
  if (!found) {
    // A base launcher: the general path looks in its venv first
    // (base_launcher_venv), which may have moved since it was stamped.
    if (!base_launcher_venv(dir).empty()) return false;
    char link[1];
    if (os.readlink(p, link, sizeof link) >= 0) return false;  // a hop to follow
    // The stamped file, if there, must be it unchanged (then it passed the
    // rule at install; an identity, ctime included, cannot be forged);
    // anything else there is the general path's to judge.
    FileInfo info;
    if (os.lstat(stamp.source.data(), info) == 0 &&
        (!(identity_of(info) == stamp.identity) || racily_clean(stamp.identity))) {
      return false;
    }
  }
  const PlanConfig& config = stamp.config;

  // The restore library: ../lib/pyshim/ of the real binary, beside it, a base
  // launcher's venv's, the stamped path (restore_library_candidates and
  // find_restore_library), each under the trust rule.
  char* self = arena.take(kPathMax);
  if (self == nullptr) return false;
  long self_size = os.readlink("/proc/self/exe", self, kPathMax);
  if (self_size <= 0 || static_cast<std::size_t>(self_size) >= kPathMax || self[0] != '/') {
    return false;
  }
  self[self_size] = '\0';
  arena.keep(static_cast<std::size_t>(self_size) + 1);
  std::string_view self_dir = dirname_of({self, static_cast<std::size_t>(self_size)});
  std::string_view self_parent = dirname_of(self_dir);
  if (self_dir.empty() || self_parent.empty()) return false;
  std::string_view base_venv = base_launcher_venv(self_dir);
  bool base = !base_venv.empty();
  const char* restores[4] = {join(arena, self_parent, "lib/pyshim", kRestoreLibraryName),
                             join(arena, self_dir, kRestoreLibraryName),
                             base ? join(arena, base_venv, "lib/pyshim", kRestoreLibraryName)
                                  : stamp.restore_library.data(),
                             base ? stamp.restore_library.data() : nullptr};
  const char* restore = nullptr;
  for (int i = 0; i < (base ? 4 : 3); ++i) {
    const char* candidate = restores[i];
    if (candidate == nullptr) return false;
    FileInfo info;
    int err = os.lstat(candidate, info);
    if (err == ENOENT || err == ENOTDIR) continue;
    // A link, someone else's file, anything but a regular file: the general
    // path judges it (it may skip it and look further).
    if (err != 0 || !may_be_a_restore_library(info, in.euid) ||
        trust_of(info, in.euid) != Trust::kTrusted) {
      return false;
    }
    restore = candidate;
    break;
  }
  if (restore == nullptr) return false;

  // 5. The checks (check_launch), before the plan: they need no memory.
  for (std::string_view lib : config.preload) {
    if (refused_by_loader(lib, true)) return false;
  }
  for (std::string_view dir_entry : config.library_path) {
    if (refused_by_loader(dir_entry, false)) return false;
  }
  FileInfo interpreter;
  if (os.stat(config.interpreter.data(), interpreter) != 0) return false;
  if (!S_ISREG(interpreter.mode) || (interpreter.mode & 0111) == 0) return false;
  // Possibly a copy of this launcher, or a launcher exec'ing a launcher: the
  // general path looks closer.
  if (in.self_size == 0 || interpreter.size == in.self_size) return false;
  for (const char* entry : in.env) {
    if (entry[0] == 'P' && starts_with(entry, "PYSHIM_ORIG_LD_PRELOAD=")) return false;
  }
  for (std::string_view lib : config.preload) {
    FileInfo info;
    if (os.stat(lib.data(), info) != 0 || S_ISDIR(info.mode)) return false;
  }

  // The restore library as LD_PRELOAD takes it: its path, or an inherited
  // descriptor when the loader would split the path.
  std::string_view preload(restore, length(restore));
  if (needs_fd_preload(preload)) {
    int fd = os.open_inherited(restore);
    if (fd < 0) return false;
    out.fd = fd;
    char* text = arena.take(32);
    if (text == nullptr) return false;
    constexpr std::string_view kFdDir = "/proc/self/fd/";
    std::size_t n = 0;
    for (char c : kFdDir) text[n++] = c;
    char digits[12];
    std::size_t count = 0;
    unsigned value = static_cast<unsigned>(fd);
    do {
      digits[count++] = static_cast<char>('0' + value % 10);
      value /= 10;
    } while (value != 0);
    while (count > 0) text[n++] = digits[--count];
    text[n] = '\0';
    arena.keep(n + 1);
    preload = {text, n};
  }

  // 4. The plan.
  PlanSize size = plan_size(config, in.env, preload.size(), invoked.size());
  PlanBuffers buffers;
  buffers.env = reinterpret_cast<const char**>(
      arena.take(size.entries * sizeof(const char*), alignof(const char*)));
  buffers.env_capacity = size.entries;
  buffers.pieces = reinterpret_cast<std::string_view*>(
      arena.take(size.pieces * sizeof(std::string_view), alignof(std::string_view)));
  buffers.pieces_capacity = size.pieces;
  buffers.bytes = arena.take(size.bytes);
  buffers.bytes_capacity = size.bytes;
  if (buffers.env == nullptr || buffers.pieces == nullptr || buffers.bytes == nullptr) {
    return false;
  }
  std::size_t count = plan_env(config, in.env, preload, invoked, buffers);
  if (count == 0) return false;
  // An entry execve would refuse with E2BIG: the general path says which.
  for (std::size_t i = 0; i < count; ++i) {
    if (too_long_for_execve(length(buffers.env[i]))) return false;
  }

  out.interpreter = config.interpreter.data();
  out.argv0 = p;
  out.env = buffers.env;
  return true;
}

}  // namespace pyshim::hot
