/* libpyshim-restore.so: preloaded into the interpreter by the launcher. Its
 * initialiser runs before the interpreter's main() and puts LD_PRELOAD and
 * LD_LIBRARY_PATH back to the caller's values, so that children which do not
 * go through the launcher (/bin/sh, git, curl) get the caller's environment.
 * The loader has already consumed both variables by then.
 *
 * Rules: no heap, no output unless PYSHIM_LOG is set. It edits the
 * environment array in place: the launcher writes each bookkeeping variable as
 *   PYSHIM_ORIG_LD_PRELOAD=LD_PRELOAD=<original>   (was set, maybe empty)
 *   PYSHIM_ORIG_LD_PRELOAD=                        (was unset)
 * so the original entry is a suffix of the bookkeeping string and can be put
 * in the LD_PRELOAD slot without allocating anything.
 *
 * Only in the process it was planned for. The launcher records the argv[0]
 * it gives the interpreter in PYSHIM_TARGET. A program between the launcher
 * and the interpreter has another argv[0] (valgrind.bin re-executed under
 * --trace-children=yes, /bin/sh running an `interpreter` that is a
 * #!/bin/sh wrapper, env, nice or numactl that such a wrapper execs), and
 * there the environment is passed on untouched. The interpreter a wrapper
 * execs under its own name (argv[0] /usr/bin/python3.11, or python, pypy3)
 * is recognised by that name and restores.
 *
 * It costs the interpreter as little as a preloaded object can (see
 * tests/bench): no libc at all (raw system calls, its own string loops), so
 * no DT_NEEDED, no symbol imports, no relocations, no PLT or GOT, no symbol
 * versions (any glibc loads it), no unwind tables, no writable data of its
 * own, and an initialiser named by DT_INIT (an .init_array entry would be a
 * relocation). glibc calls DT_INIT with (argc, argv, envp), envp being the
 * array libc's environ points at. */

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "libpyshim-restore: raw system calls are written for x86-64 and aarch64 only"
#endif

typedef unsigned long size_t;

#if defined(__x86_64__)
enum { kSysWrite = 1, kSysClose = 3, kSysPrctl = 157 };
static long sys3(long nr, long a, long b, long c) {
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a), "S"(b), "d"(c)
                   : "rcx", "r11", "memory");
  return ret;
}
#else
enum { kSysWrite = 64, kSysClose = 57, kSysPrctl = 167 };
static long sys3(long nr, long a, long b, long c) {
  register long x8 __asm__("x8") = nr;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
  return x0;
}
#endif
enum { kPrSetName = 15, kCommSize = 16 };

static size_t length(const char* s) {
  size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}

/* s starts with prefix (prefix_len bytes). */
static int starts(const char* s, const char* prefix, size_t prefix_len) {
  for (size_t i = 0; i < prefix_len; ++i) {
    if (s[i] != prefix[i]) return 0;
  }
  return 1;
}

static int equal(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) ++a, ++b;
  return *a == *b;
}

static size_t find(char** env, const char* prefix, size_t prefix_len) {
  size_t i = 0;
  for (; env[i] != 0; ++i) {
    if (starts(env[i], prefix, prefix_len)) return i;
  }
  return i; /* index of the terminator: not found */
}

static void remove_at(char** env, size_t index) {
  for (size_t i = index; env[i] != 0; ++i) env[i] = env[i + 1];
}

#define LIT(s) s, sizeof s - 1

/* Same rule as the launcher: PYSHIM_LOG=debug/trace (or any value that is
 * not a level name) logs; unset, empty, off or a quieter level does not. */
static int logging(char** env) {
  size_t i = find(env, LIT("PYSHIM_LOG="));
  if (env[i] == 0) return 0;
  const char* level = env[i] + sizeof "PYSHIM_LOG=" - 1;
  /* One string, not an array of pointers (which would need relocations). */
  static const char quiet[] = "\0off\0info\0warn\0warning\0err\0error\0critical\0";
  for (const char* q = quiet; q < quiet + sizeof quiet - 1; q += length(q) + 1) {
    if (equal(level, q)) return 0;
  }
  return 1;
}

static void say_n(int verbose, const char* what, const char* detail, size_t detail_len) {
  if (!verbose) return;
  static const char head[] = "pyshim-restore: ";
  sys3(kSysWrite, 2, (long)head, sizeof head - 1);
  sys3(kSysWrite, 2, (long)what, (long)length(what));
  sys3(kSysWrite, 2, (long)detail, (long)detail_len);
  sys3(kSysWrite, 2, (long)"\n", 1);
}

static void say(int verbose, const char* what, const char* detail) {
  say_n(verbose, what, detail, length(detail));
}

/* bookkeeping: "PYSHIM_ORIG_X=", var: "X=" */
static void restore(int verbose, char** env, const char* bookkeeping, size_t bk_len,
                    const char* var, size_t var_len) {
  size_t b = find(env, bookkeeping, bk_len);
  if (env[b] == 0) return;
  char* original = env[b] + bk_len;
  int was_set = starts(original, var, var_len);
  size_t v = find(env, var, var_len);

  if (was_set) {
    if (env[v] != 0) {
      env[v] = original;
      remove_at(env, b);
    } else {
      env[b] = original; /* reuse the bookkeeping slot */
    }
    say(verbose, "restored ", original);
  } else {
    /* Remove the higher index first so the lower one stays valid. */
    if (env[v] != 0 && v > b) remove_at(env, v);
    remove_at(env, b);
    if (env[v] != 0 && v < b) remove_at(env, v);
    say(verbose, "unset ", var);
  }
}

/* piece [s, s + n) is one of the entries of list (split on ':' and ' ',
 * the loader's LD_PRELOAD separators). */
static int in_list(const char* list, const char* s, size_t n) {
  while (*list != '\0') {
    const char* end = list;
    while (*end != '\0' && *end != ':' && *end != ' ') ++end;
    if ((size_t)(end - list) == n && starts(list, s, n)) return 1;
    list = *end != '\0' ? end + 1 : end;
  }
  return 0;
}

/* When this library's path holds a character the loader splits LD_PRELOAD
 * on (a venv under "~/My Projects"), the launcher opens it and preloads
 * "/proc/self/fd/N". The launcher's own entries are those of LD_PRELOAD the
 * caller's original (recorded in the bookkeeping) does not hold; a
 * "/proc/self/fd/N" among them is the descriptor it left open for the
 * loader, closed here so the interpreter starts with no extra fd. Runs
 * before LD_PRELOAD is restored. */
static void close_own_descriptors(int verbose, char** env) {
  size_t p = find(env, LIT("LD_PRELOAD="));
  if (env[p] == 0) return;
  const char* original = "";
  size_t o = find(env, LIT("PYSHIM_ORIG_LD_PRELOAD="));
  if (env[o] != 0 && starts(env[o] + 23, LIT("LD_PRELOAD="))) original = env[o] + 23 + 11;
  static const char prefix[] = "/proc/self/fd/";
  for (const char* s = env[p] + 11; *s != '\0';) {
    const char* end = s;
    while (*end != '\0' && *end != ':' && *end != ' ') ++end;
    if (starts(s, prefix, sizeof prefix - 1) && !in_list(original, s, (size_t)(end - s))) {
      const char* d = s + sizeof prefix - 1;
      int fd = 0;
      while (d < end && *d >= '0' && *d <= '9' && fd < 1000000) fd = fd * 10 + (*d++ - '0');
      if (d == end && d > s + sizeof prefix - 1 && fd > 2) {
        sys3(kSysClose, fd, 0, 0);
        say_n(verbose, "closed ", s, (size_t)(end - s));
      }
    }
    s = *end != '\0' ? end + 1 : end;
  }
}

/* The interpreter's process name (/proc/self/comm, what ps -C, pkill -x and
 * top show) as a plain venv's: the kernel named it after the file the
 * launcher exec'd (python3.11), a plain venv's after the name it was started
 * by (python): the basename of argv[0], cut to 15 bytes as the kernel does. */
static void name_process(const char* argv0) {
  const char* base = argv0;
  for (const char* s = argv0; *s != '\0'; ++s) {
    if (*s == '/' && s[1] != '\0') base = s + 1;
  }
  char name[kCommSize];
  size_t n = 0;
  while (n < kCommSize - 1 && base[n] != '\0' && base[n] != '/') name[n] = base[n], ++n;
  name[n] = '\0';
  if (n > 0) sys3(kSysPrctl, kPrSetName, (long)name, 0);
}

/* argv0's last component starts with "python" or "pypy": an interpreter a
 * wrapper exec'd under its own name rather than the launcher's. */
static int interpreter_name(const char* argv0) {
  const char* base = argv0;
  for (const char* s = argv0; *s != '\0'; ++s) {
    if (*s == '/') base = s + 1;
  }
  return starts(base, LIT("python")) || starts(base, LIT("pypy"));
}

/* Hidden: named by -Wl,-init (CMakeLists.txt), exported by nothing. */
__attribute__((visibility("hidden"))) void pyshim_restore(int argc, char** argv, char** env) {
  if (env == 0) return;
  int verbose = logging(env);
  const char* argv0 = argc >= 1 && argv != 0 && argv[0] != 0 ? argv[0] : "";
  size_t t = find(env, LIT("PYSHIM_TARGET="));
  if (env[t] != 0) {
    const char* target = env[t] + sizeof "PYSHIM_TARGET=" - 1;
    if (!equal(argv0, target) && !interpreter_name(argv0)) {
      say(verbose, "passed on (not the interpreter): ", argv0);
      return;
    }
    remove_at(env, t);
  }
  close_own_descriptors(verbose, env);
  restore(verbose, env, LIT("PYSHIM_ORIG_LD_PRELOAD="), LIT("LD_PRELOAD="));
  restore(verbose, env, LIT("PYSHIM_ORIG_LD_LIBRARY_PATH="), LIT("LD_LIBRARY_PATH="));
  /* The startup-hook list is for this interpreter only; its hook module
   * reads it from /proc/self/environ, which keeps the environment as
   * exec'd. */
  for (size_t s; env[s = find(env, LIT("PYSHIM_STARTUP="))] != 0;) {
    remove_at(env, s);
    say(verbose, "removed ", "PYSHIM_STARTUP");
  }
  if (argv0[0] != '\0') name_process(argv0);
}
