/* Measures per-launch wall time of several commands: posix_spawn + waitpid,
 * interleaved rounds (so drift hits every command alike), median per command.
 * Usage: launch_bench ROUNDS PER_ROUND NAME -- [VAR=value]... CMD... [-- NAME -- ...]...
 * Leading VAR=value words are added to that command's environment.
 * Prints one line per command: name, median µs, p10, p90, and the fewest
 * minor page faults of one launch (the whole process: launcher and target;
 * rusage from wait4, so any kernel counts them the same way). */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char** environ;

typedef struct {
  const char* name;
  char** argv;
  char** envp;
  double* samples;
  int count;
  long faults; /* fewest minor faults of one launch */
} Command;

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

static double run_once(char** argv, char** envp, long* faults) {
  pid_t pid;
  double start = now_us();
  if (posix_spawn(&pid, argv[0], NULL, NULL, argv, envp) != 0) {
    perror(argv[0]);
    exit(2);
  }
  int status;
  struct rusage usage;
  wait4(pid, &status, 0, &usage);
  double elapsed = now_us() - start;
  if (*faults < 0 || usage.ru_minflt < *faults) *faults = usage.ru_minflt;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "launch_bench: %s exited with status %d\n", argv[0], status);
    exit(2);
  }
  return elapsed;
}

int main(int argc, char** argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s ROUNDS PER_ROUND NAME -- CMD... [-- NAME -- CMD...]\n", argv[0]);
    return 2;
  }
  int rounds = atoi(argv[1]);
  int per_round = atoi(argv[2]);
  Command commands[16];
  int n = 0;
  for (int i = 3; i < argc && n < 16;) {
    commands[n].name = argv[i];
    i += 2; /* name, "--" */
    size_t env_count = 0;
    while (environ[env_count] != NULL) ++env_count;
    char** envp = calloc(env_count + (size_t)argc + 1, sizeof(char*));
    size_t e = 0;
    for (; i < argc && strchr(argv[i], '=') != NULL && argv[i][0] != '/'; ++i) envp[e++] = argv[i];
    for (size_t k = 0; k < env_count; ++k) envp[e++] = environ[k];
    commands[n].envp = envp;
    commands[n].argv = &argv[i];
    while (i < argc && strcmp(argv[i], "--") != 0) ++i;
    if (i < argc) argv[i++] = NULL;
    commands[n].samples = calloc((size_t)(rounds * per_round), sizeof(double));
    commands[n].count = 0;
    commands[n].faults = -1;
    ++n;
  }
  for (int c = 0; c < n; ++c) { /* warm the page cache */
    run_once(commands[c].argv, commands[c].envp, &commands[c].faults);
  }
  for (int r = 0; r < rounds; ++r) {
    for (int c = 0; c < n; ++c) {
      for (int k = 0; k < per_round; ++k) {
        commands[c].samples[commands[c].count++] =
            run_once(commands[c].argv, commands[c].envp, &commands[c].faults);
      }
    }
  }
  for (int c = 0; c < n; ++c) {
    qsort(commands[c].samples, (size_t)commands[c].count, sizeof(double), cmp);
    int m = commands[c].count;
    printf("%s %.1f %.1f %.1f %ld\n", commands[c].name, commands[c].samples[m / 2],
           commands[c].samples[m / 10], commands[c].samples[m * 9 / 10], commands[c].faults);
  }
  return 0;
}
