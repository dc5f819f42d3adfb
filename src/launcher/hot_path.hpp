// The hot path: a launcher copy with a stamped config, started the usual way,
// launches from its ELF entry point, before the C library is initialised
// (entry.cpp). It is the launch rules (pyshim/launch_rules.hpp, the code the
// general path and doctor run too) put together for the common case, and it
// hands everything else to the general path (prepare_launch in
// src/core/launch.cpp, which makes the exact error messages): a missing or
// damaged stamp, PYSHIM_CONFIG or PYSHIM_LOG set, AT_SECURE, a config that
// is not the stamped file unchanged, a symlink hop, a file whose trust takes
// more than one look, any failed rule. plan() says where it handed over (a
// Verdict: step, item, and the error kind when a rule failed).
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

#include "pyshim/launch_rules.hpp"
#include "pyshim/plan.hpp"
#include "pyshim/stamp.hpp"

namespace pyshim::hot {

using rules::Arena;
using rules::length;
using rules::Step;
using rules::Verdict;

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

// The path P names before it is made absolute, or nullptr when only the
// general path can find it (no argv[0], or a bare name to search PATH for).
inline const char* invoked_name(const Inputs& in) {
  if (!rules::invoked_by_argv0(in.execfn, in.argc, in.argv)) return in.execfn;
  const char* argv0 = in.argc > 0 ? in.argv[0] : nullptr;
  if (argv0 == nullptr || argv0[0] == '\0' || !rules::has_char({argv0, length(argv0)}, '/')) {
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
        (rules::starts_with(entry, "PYSHIM_CONFIG=") || rules::starts_with(entry, "PYSHIM_LOG="))) {
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
  return p + configs + self + restores + rules::kFdPathSize + plan.entries * sizeof(const char*) +
         plan.bytes + plan.pieces * sizeof(std::string_view) + 3 * 16;
}

// Whether plan()'s verdict is to exec (else: the general path).
PYSHIM_INLINE bool launches(const Verdict& v) {
  return v.step == Step::kLaunch && v.passed();
}

// The rules in the order of a launch, for the stamped case. A verdict of any
// step but kLaunch hands the launch to the general path; its kind is the
// rule's error when one failed, kNone when the case is simply not the hot
// path's (a link, someone else's file, an edited config).
template <class Os>
Verdict plan(Os& os, const Inputs& in, const StampView& stamp, Arena& arena, Launch& out) {
  using rules::verdict;
  // P, absolute, symlinks not resolved (absolute() of src/os/system.cpp).
  const char* name = invoked_name(in);
  const char* p = name;
  std::size_t p_size = length(name);
  if (name[0] != '/') {
    char* buffer = arena.take(kPathMax + p_size + 2);
    if (buffer == nullptr) return verdict(Step::kInvoked);
    long n = os.getcwd(buffer, kPathMax);
    if (n <= 1 || buffer[0] != '/') return verdict(Step::kInvoked);
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

  // The config: pyshim.toml beside P, then one level up, taken on a first
  // look only (root's or the caller's, not a link); it must be the stamped
  // file, unchanged. None there and P not a link: the stamp, unless its file
  // changed (then it is parsed).
  std::string_view dir = rules::dirname_of(invoked);
  const char* candidates[2];
  int count = rules::config_candidates(arena, dir, candidates);
  if (count == 0) return verdict(Step::kConfig);
  bool found = false;
  for (int i = 0; i < count && !found; ++i) {
    rules::TrustedLookup look =
        rules::look_up_trusted(os, in.euid, nullptr, candidates[i], nullptr);
    if (look.err == ENOENT || look.err == ENOTDIR) continue;
    if (look.err != 0 || look.refused != rules::Refusal::kNone || !S_ISREG(look.info.mode) ||
        !rules::take_from_stamp(stamp.source, stamp.identity,
                                {candidates[i], length(candidates[i])}, look.info)) {
      return verdict(Step::kConfig);
    }
    found = true;
  }
  if (!found) {
    // A base launcher: the general path looks in its venv first, which may
    // have moved since it was stamped.
    if (!rules::base_launcher_venv(dir).empty()) return verdict(Step::kConfig);
    char link[1];
    if (os.readlink(p, link, sizeof link) >= 0) return verdict(Step::kConfig);  // a hop
    // The stamped file, if there, must be it unchanged (then it passed the
    // rule at install); anything else there is the general path's to judge.
    FileInfo info;
    if (os.lstat(stamp.source.data(), info) == 0 &&
        !rules::stamp_still_true(stamp.identity, info)) {
      return verdict(Step::kConfig);
    }
  }
  const PlanConfig& config = stamp.config;

  // The restore library: the candidates from the real binary, then the
  // stamped path, each taken on a first look only.
  char* self = arena.take(kPathMax);
  if (self == nullptr) return verdict(Step::kRestoreLibrary);
  long self_size = os.readlink("/proc/self/exe", self, kPathMax);
  if (self_size <= 0 || static_cast<std::size_t>(self_size) >= kPathMax || self[0] != '/') {
    return verdict(Step::kRestoreLibrary);
  }
  self[self_size] = '\0';
  arena.keep(static_cast<std::size_t>(self_size) + 1);
  const char* restores[4];
  int candidate_count = rules::restore_library_candidates(
      arena, {self, static_cast<std::size_t>(self_size)}, restores);
  if (candidate_count <= 0) return verdict(Step::kRestoreLibrary);
  restores[candidate_count++] = stamp.restore_library.data();
  const char* restore = nullptr;
  for (int i = 0; i < candidate_count && restore == nullptr; ++i) {
    rules::TrustedLookup look = rules::look_up_trusted(os, in.euid, nullptr, restores[i], nullptr);
    if (look.err == ENOENT || look.err == ENOTDIR) continue;
    if (look.err != 0 || look.refused != rules::Refusal::kNone ||
        !rules::may_be_a_restore_library(look.info, in.euid)) {
      return verdict(Step::kRestoreLibrary);
    }
    restore = restores[i];
  }
  if (restore == nullptr) {
    return verdict(Step::kRestoreLibrary, ErrorKind::kRestoreLibraryNotFound);
  }

  // The checks, before the plan: they need no memory. A possible launcher
  // as the interpreter: the general path looks closer.
  FileInfo interpreter;
  Verdict checked = rules::check_interpreter(os, config.interpreter.data(), interpreter);
  if (!checked.passed()) return checked;
  if (rules::same_size_as_self(interpreter, in.self_size) || rules::started_by_a_launcher(in.env)) {
    return verdict(Step::kInterpreter);
  }
  checked = rules::check_lists(os, config);
  if (!checked.passed()) return checked;

  // The restore library as LD_PRELOAD takes it: its path, or an inherited
  // descriptor when the loader would split the path.
  std::string_view preload(restore, length(restore));
  if (rules::needs_fd_preload(preload)) {
    int fd = os.open_inherited(restore);
    if (fd < 0) {
      return verdict(Step::kDescriptor, ErrorKind::kRestoreLibraryUnopenable, 0, -fd);
    }
    out.fd = fd;
    char* text = arena.take(rules::kFdPathSize);
    if (text == nullptr) return verdict(Step::kDescriptor);
    std::size_t n = rules::write_fd_path(text, fd);
    arena.keep(n + 1);
    preload = {text, n};
  }

  // The plan, and execve's limit on each entry.
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
    return verdict(Step::kPlan);
  }
  std::size_t env_count = plan_env(config, in.env, preload, invoked, buffers);
  if (env_count == 0) return verdict(Step::kPlan);
  checked = rules::check_environment(buffers.env, env_count);
  if (!checked.passed()) return checked;

  out.interpreter = config.interpreter.data();
  out.argv0 = p;
  out.env = buffers.env;
  return verdict(Step::kLaunch);
}

}  // namespace pyshim::hot
