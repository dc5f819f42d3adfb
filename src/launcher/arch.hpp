// The architecture layer of the launcher's hot path: raw system calls and the
// ELF entry point, one header per architecture; the logic (entry.cpp,
// hot_path.hpp) is shared. PYSHIM_ARCH_HOT_PATH is 1 where the hot path
// exists; elsewhere the launcher starts at glibc's _start and the general
// path does every launch.
#pragma once

#if defined(__linux__) && defined(__x86_64__)
#include "arch_x86_64.hpp"
#define PYSHIM_ARCH_HOT_PATH 1
#elif defined(__linux__) && defined(__aarch64__)
#include "arch_aarch64.hpp"
#define PYSHIM_ARCH_HOT_PATH 1
#else
#define PYSHIM_ARCH_HOT_PATH 0
#endif
