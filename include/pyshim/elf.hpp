// The little of ELF that doctor needs: class, machine, and whether a file is
// dynamically linked. A small reader over <elf.h> structs (no libelf needed
// for three fields); tested in tests/unit/elf_test.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "pyshim/error.hpp"

namespace pyshim {

struct ElfInfo {
  int elf_class = 0;          // ELFCLASS32 (1) or ELFCLASS64 (2)
  int data = 0;               // ELFDATA2LSB (1) or ELFDATA2MSB (2)
  std::uint16_t machine = 0;  // EM_X86_64, EM_AARCH64, ...
  std::uint16_t type = 0;     // ET_EXEC, ET_DYN
  bool has_interp = false;    // PT_INTERP: started by the dynamic loader
  bool has_dynamic = false;   // PT_DYNAMIC
};

// Parses the ELF header and program headers from the first bytes of a file
// (4 KiB is plenty for anything a linker writes).
Result<ElfInfo> parse_elf(std::string_view head);

// "x86-64, 64-bit" and the like, for messages.
std::string describe(const ElfInfo& info);

// Same class, byte order and machine: a library the loader would accept for
// a process of the other.
inline bool compatible(const ElfInfo& a, const ElfInfo& b) {
  return a.elf_class == b.elf_class && a.data == b.data && a.machine == b.machine;
}

}  // namespace pyshim
