/* The floor of any exec-based launcher: a static program with no C library
 * that only execve()s its target (given at build time), passing argv and the
 * environment through unchanged, as the launcher does. What it costs over
 * running the target directly is one more execve of a tiny image on this
 * kernel; what pyshim costs above it is pyshim's own work.
 * Build: gcc -O2 -static -nostdlib -fno-stack-protector -DTARGET='"/path"' */
#ifndef TARGET
#error "build with -DTARGET='\"/path\"'"
#endif

static const char kTarget[] = TARGET;

/* The kernel's initial stack: argc, argv[], NULL, envp[], NULL. */
__attribute__((used, noreturn)) static void start(long* sp) {
  char** argv = (char**)(sp + 1);
  char** envp = argv + sp[0] + 1;
#if defined(__x86_64__)
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(59L), "D"(kTarget), "S"(argv), "d"(envp)
                   : "rcx", "r11", "memory");
  __asm__ volatile("syscall" : : "a"(60L), "D"(127L) : "rcx", "r11", "memory");
#elif defined(__aarch64__)
  register long x0 __asm__("x0") = (long)kTarget;
  register long x1 __asm__("x1") = (long)argv;
  register long x2 __asm__("x2") = (long)envp;
  register long x8 __asm__("x8") = 221; /* execve */
  __asm__ volatile("svc #0" : "+r"(x0) : "r"(x1), "r"(x2), "r"(x8) : "memory");
  x0 = 127;
  x8 = 93; /* exit */
  __asm__ volatile("svc #0" : : "r"(x0), "r"(x8) : "memory");
#else
#error "x86-64 and aarch64 only"
#endif
  __builtin_unreachable();
}

#if defined(__x86_64__)
__asm__(".globl _start\n_start:\n  mov %rsp, %rdi\n  and $-16, %rsp\n  call start\n");
#else
__asm__(".globl _start\n_start:\n  mov x0, sp\n  bl start\n");
#endif
