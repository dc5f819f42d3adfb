/* libpyshim-restore.so: preloaded into the interpreter by the launcher. Its
 * constructor runs before the interpreter's main() and puts LD_PRELOAD and
 * LD_LIBRARY_PATH back to the caller's values, so that children which do not
 * go through the launcher (/bin/sh, git, curl) get the caller's environment.
 * The loader has already consumed both variables by then.
 *
 * Rules: libc only, no heap, no output unless PYSHIM_LOG is set. It edits the
 * environ array in place: the launcher writes each bookkeeping variable as
 *   PYSHIM_ORIG_LD_PRELOAD=LD_PRELOAD=<original>   (was set, maybe empty)
 *   PYSHIM_ORIG_LD_PRELOAD=                        (was unset)
 * so the original entry is a suffix of the bookkeeping string and can be put
 * in the LD_PRELOAD slot without allocating anything. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char** environ;

static size_t find(char** env, const char* prefix, size_t prefix_len) {
  size_t i = 0;
  for (; env[i] != NULL; ++i) {
    if (strncmp(env[i], prefix, prefix_len) == 0) return i;
  }
  return i; /* index of the terminator: not found */
}

static void remove_at(char** env, size_t index) {
  for (size_t i = index; env[i] != NULL; ++i) env[i] = env[i + 1];
}

/* Same rule as the launcher: PYSHIM_LOG=debug/trace (or any value that is
 * not a level name) logs; unset, empty, off or a quieter level does not. */
static int logging(void) {
  const char* level = getenv("PYSHIM_LOG");
  if (level == NULL || level[0] == '\0') return 0;
  static const char* const quiet[] = {"off", "info", "warn", "warning", "err", "error", "critical"};
  for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; ++i) {
    if (strcmp(level, quiet[i]) == 0) return 0;
  }
  return 1;
}

static int verbose; /* logging(), read once per process */

static void say(const char* what, const char* detail) {
  if (!verbose) return;
  static const char head[] = "pyshim-restore: ";
  (void)!write(2, head, sizeof head - 1);
  (void)!write(2, what, strlen(what));
  (void)!write(2, detail, strlen(detail));
  (void)!write(2, "\n", 1);
}

/* bookkeeping: "PYSHIM_ORIG_X=", var: "X=" */
static void restore(char** env, const char* bookkeeping, const char* var) {
  size_t bk_len = strlen(bookkeeping);
  size_t var_len = strlen(var);
  size_t b = find(env, bookkeeping, bk_len);
  if (env[b] == NULL) return;
  char* original = env[b] + bk_len;
  int was_set = strncmp(original, var, var_len) == 0;
  size_t v = find(env, var, var_len);

  if (was_set) {
    if (env[v] != NULL) {
      env[v] = original;
      remove_at(env, b);
    } else {
      env[b] = original; /* reuse the bookkeeping slot */
    }
    say("restored ", original);
  } else {
    /* Remove the higher index first so the lower one stays valid. */
    if (env[v] != NULL && v > b) remove_at(env, v);
    remove_at(env, b);
    if (env[v] != NULL && v < b) remove_at(env, v);
    say("unset ", var);
  }
}

/* When this library's path holds a character the loader splits LD_PRELOAD
 * on (a venv under "~/My Projects"), the launcher opens it and preloads
 * "/proc/self/fd/N": the loader keeps that name, so the descriptor is found
 * from it and closed, and the interpreter starts with no extra fd. */
static void close_own_descriptor(void* self) {
  static const char prefix[] = "/proc/self/fd/";
  Dl_info info;
  if (dladdr(self, &info) == 0 || info.dli_fname == NULL) return;
  const char* p = info.dli_fname;
  if (strncmp(p, prefix, sizeof prefix - 1) != 0) return;
  p += sizeof prefix - 1;
  int fd = 0;
  if (*p < '0' || *p > '9') return;
  for (; *p >= '0' && *p <= '9' && fd < 1000000; ++p) fd = fd * 10 + (*p - '0');
  if (*p != '\0') return;
  close(fd);
  say("closed ", info.dli_fname);
}

__attribute__((constructor)) static void pyshim_restore(void) {
  if (environ == NULL) return;
  verbose = logging();
  close_own_descriptor((void*)&find);
  restore(environ, "PYSHIM_ORIG_LD_PRELOAD=", "LD_PRELOAD=");
  restore(environ, "PYSHIM_ORIG_LD_LIBRARY_PATH=", "LD_LIBRARY_PATH=");
  /* The startup-hook list is for this interpreter only; its hook module
   * reads it from /proc/self/environ, which keeps the environment as
   * exec'd. */
  for (size_t s; environ[s = find(environ, "PYSHIM_STARTUP=", 15)] != NULL;) {
    remove_at(environ, s);
    say("removed ", "PYSHIM_STARTUP");
  }
}
