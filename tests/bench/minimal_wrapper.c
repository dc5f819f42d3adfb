/* The baseline launcher: a static C program that only execve()s its target
 * (given at build time), passing argv[0] and the environment through. */
#include <unistd.h>

#ifndef TARGET
#error "build with -DTARGET='\"/path\"'"
#endif

int main(int argc, char** argv, char** envp) {
  (void)argc;
  execve(TARGET, argv, envp);
  return 127;
}
