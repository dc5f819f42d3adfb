// x86-64 Linux: the hot path's raw system calls and ELF entry point
// (src/launcher/entry.cpp says what runs there and under which rules).
// Included by entry.cpp only (it defines the entry point); arch.hpp picks this or another
// architecture's.
#pragma once

#include <sys/syscall.h>

namespace pyshim::arch {

// One system call, up to four arguments; returns -errno on failure.
inline long syscall4(long number, long a, long b, long c, long d) {
  long result;
  register long r10 asm("r10") = d;
  asm volatile("syscall"
               : "=a"(result)
               : "a"(number), "D"(a), "S"(b), "d"(c), "r"(r10)
               : "rcx", "r11", "memory");
  return result;
}

// readlink(2) exists on x86-64 (one syscall, as readlinkat would be).
inline long readlink(const char* path, char* buffer, unsigned long size) {
  return syscall4(SYS_readlink, reinterpret_cast<long>(path), reinterpret_cast<long>(buffer),
                  static_cast<long>(size), 0);
}

}  // namespace pyshim::arch

// The ELF entry point: calls the hot path on the initial stack, then, if it
// returns, restores the registers the kernel set (rsp; rdx, the exit function
// glibc's _start hands on) and jumps to glibc's _start.
asm(R"(
  .pushsection .pyshim_hot,"ax",@progbits
  .globl pyshim_entry
  .type pyshim_entry, @function
pyshim_entry:
  .cfi_startproc
  .cfi_undefined rip
  endbr64
  xor %ebp, %ebp
  mov %rsp, %rbx
  mov %rdx, %r12
  mov %rsp, %rdi
  and $-16, %rsp
  call pyshim_hot_start
  mov %rbx, %rsp
  mov %r12, %rdx
  jmp _start
  .cfi_endproc
  .size pyshim_entry, . - pyshim_entry
  .popsection
)");
