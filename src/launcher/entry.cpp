// The launcher's ELF entry point. A stamped launcher copy started the usual
// way decides and execs here, before the C library's start-up: glibc's static
// start-up alone (TLS, IRELATIVE relocations, tunables, malloc, stdio) costs
// more page faults and syscalls than the whole launch. Anything the hot path
// does not take (hot_path.hpp says what) continues into glibc's _start as if
// this did not exist, and runs the general path from .preinit_array (main.cpp).
//
// Rules for everything reached from pyshim_hot_start, checked on the built
// binary by tests/integration/test_hot_path.py: code in the .pyshim_hot
// section only (PYSHIM_HOT; calls go nowhere else), raw syscalls, no
// thread-local storage (errno, the stack protector), no heap, no writes to
// static data.
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <cstddef>
#include <cstdint>

#include "arch.hpp"
#include "hot_path.hpp"
#include "launcher.hpp"

#if PYSHIM_ARCH_HOT_PATH

// Defined by the linker at the start of the mapped ELF header.
extern "C" const ElfW(Ehdr) __ehdr_start __attribute__((weak));  // NOLINT

namespace pyshim {
namespace {

using arch::syscall4;

inline long arg(const void* p) {
  return reinterpret_cast<long>(p);
}

// The OS as hot::plan sees it; each call is one syscall.
struct RawOs {
  int stat(const char* path, FileInfo& info) {
    struct stat st;
    long r = syscall4(SYS_newfstatat, AT_FDCWD, arg(path), arg(&st), 0);
    if (r < 0) return static_cast<int>(-r);
    info = file_info_of(st);
    return 0;
  }
  int lstat(const char* path, FileInfo& info) {
    struct stat st;
    long r = syscall4(SYS_newfstatat, AT_FDCWD, arg(path), arg(&st), AT_SYMLINK_NOFOLLOW);
    if (r < 0) return static_cast<int>(-r);
    info = file_info_of(st);
    return 0;
  }
  long readlink(const char* path, char* buffer, std::size_t size) {
    return arch::readlink(path, buffer, size);
  }
  long getcwd(char* buffer, std::size_t size) {
    return syscall4(SYS_getcwd, arg(buffer), static_cast<long>(size), 0, 0);
  }
  // No O_CLOEXEC: the interpreter inherits it (see prepare_launch).
  int open_inherited(const char* path) {
    return static_cast<int>(syscall4(SYS_openat, AT_FDCWD, arg(path), O_RDONLY, 0));
  }
  void close(int fd) { syscall4(SYS_close, fd, 0, 0, 0); }
  long execve(const char* path, char* const* argv, const char* const* envp) {
    return syscall4(SYS_execve, arg(path), arg(argv), arg(envp), 0);
  }
};

// The arena is on the stack: keep it well inside any stack limit.
constexpr std::size_t kMaxArena = 1 << 20;
// What the hot path's own frames take below the arena, with room to spare.
constexpr std::size_t kFrames = 16 << 10;
// A stack this deep is never asked about: no Python starts with a stack
// limit below it (CPython 3.11 dies at `ulimit -s 64`), and the kernel maps
// it at exec when the limit allows (setup_arg_pages grows the stack by 128
// KiB). Deeper needs cost one prlimit64, on uncommon launches only (a large
// environment or a long caller LD_PRELOAD).
constexpr std::size_t kStackWithoutAsking = 96 << 10;

// Whether size bytes of alloca fit under the stack limit, top being the
// highest byte of the initial stack (the kernel puts AT_EXECFN's string
// there) and sp where the hot path started. Past the limit the stack does
// not grow and alloca'd memory faults: the general path (heap) runs instead.
inline bool arena_fits(const char* top, const void* sp, std::size_t size) {
  auto used = static_cast<std::size_t>(top - static_cast<const char*>(sp));
  std::size_t need = used + size + kFrames;
  if (need <= kStackWithoutAsking) return true;
  struct {
    std::uint64_t cur, max;
  } limit;
  if (syscall4(SYS_prlimit64, 0, RLIMIT_STACK, 0, arg(&limit)) != 0) return false;
  return limit.cur == ~std::uint64_t{0} || need <= limit.cur;
}

}  // namespace
}  // namespace pyshim

// sp: the process's initial stack (argc, argv..., 0, envp..., 0, auxv...).
// Returns only when the general path is to run.
extern "C" PYSHIM_HOT __attribute__((flatten, used)) void pyshim_hot_start(long* sp) {
  using namespace pyshim;
  hot::Inputs in;
  in.argc = static_cast<int>(sp[0]);
  in.argv = reinterpret_cast<char**>(sp + 1);
  const char* const* envp = in.argv + in.argc + 1;
  std::size_t env_count = 0;
  while (envp[env_count] != nullptr) ++env_count;
  in.env = EnvView(envp, env_count);
  for (auto* aux = reinterpret_cast<const ElfW(auxv_t)*>(envp + env_count + 1);
       aux->a_type != AT_NULL; ++aux) {
    if (aux->a_type == AT_EXECFN) in.execfn = reinterpret_cast<const char*>(aux->a_un.a_val);
    if (aux->a_type == AT_SECURE) in.secure = aux->a_un.a_val != 0;
    if (aux->a_type == AT_EUID) in.euid = static_cast<std::uint32_t>(aux->a_un.a_val);
  }
  const char* area = pyshim_stamp_area.data();
  in.stamp_area = std::string_view(area, kStampCapacity);

  StampView stamp;
  if (!hot::accepts(in, stamp)) return;
  in.self_size = rules::image_size(&__ehdr_start);
  std::size_t size = hot::arena_size(in, stamp);
  if (size > kMaxArena || in.execfn == nullptr ||
      !arena_fits(in.execfn + hot::length(in.execfn) + 1, sp, size)) {
    return;
  }
  hot::Arena arena(static_cast<char*>(__builtin_alloca(size)), size);
  RawOs os;
  hot::Launch launch;
  if (hot::launches(hot::plan(os, in, stamp, arena, launch))) {
    // argv is passed through untouched except argv[0]; an empty argv
    // (possible with execve) becomes just P.
    char* empty_argv[] = {nullptr, nullptr};
    char** argv = in.argc > 0 ? in.argv : empty_argv;
    char* argv0 = argv[0];
    argv[0] = const_cast<char*>(launch.argv0);
    os.execve(launch.interpreter, argv, launch.env);
    // It failed: the general path does it again and says why.
    argv[0] = argv0;
  }
  if (launch.fd >= 0) os.close(launch.fd);
}

// The ELF entry point, pyshim_entry (the link sets it, see
// cmake/Launcher.cmake), is the architecture's (arch.hpp): it calls
// pyshim_hot_start, then glibc's _start.

#endif
