// aarch64 Linux: the hot path's raw system calls and ELF entry point
// (src/launcher/entry.cpp says what runs there and under which rules).
// Included by entry.cpp only (it defines the entry point); arch.hpp picks this or another
// architecture's.
#pragma once

#include <fcntl.h>
#include <sys/syscall.h>

namespace pyshim::arch {

// One system call, up to four arguments (svc #0, number in x8, arguments
// and result in x0..x3); returns -errno on failure.
inline long syscall4(long number, long a, long b, long c, long d) {
  register long x8 asm("x8") = number;
  register long x0 asm("x0") = a;
  register long x1 asm("x1") = b;
  register long x2 asm("x2") = c;
  register long x3 asm("x3") = d;
  asm volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
  return x0;
}

// The generic syscall table has no readlink(2): readlinkat relative to the
// working directory is the same single call.
inline long readlink(const char* path, char* buffer, unsigned long size) {
  return syscall4(SYS_readlinkat, AT_FDCWD, reinterpret_cast<long>(path),
                  reinterpret_cast<long>(buffer), static_cast<long>(size));
}

}  // namespace pyshim::arch

// The ELF entry point: calls the hot path with the initial stack pointer
// (16-byte aligned by the kernel), then, if it returns, restores sp and x0
// (the exit function glibc's _start hands on) from callee-saved registers
// and branches to glibc's _start. x29/x30 zeroed: the outermost frame.
asm(R"(
  .pushsection .pyshim_hot,"ax",%progbits
  .globl pyshim_entry
  .type pyshim_entry, %function
pyshim_entry:
  .cfi_startproc
  .cfi_undefined x30
  mov x29, #0
  mov x30, #0
  mov x19, x0
  mov x20, sp
  mov x0, sp
  bl pyshim_hot_start
  mov sp, x20
  mov x0, x19
  b _start
  .cfi_endproc
  .size pyshim_entry, . - pyshim_entry
  .popsection
)");
