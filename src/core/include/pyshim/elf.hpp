// The little of ELF that doctor needs (class, machine, whether a file is
// dynamically linked) and that `pyshim dynlib` needs (SONAME, exported
// PyInit_* symbols). A small reader over <elf.h> structs rather than libelf:
// a handful of fields does not justify linking an LGPL library statically
// into the launcher. Tested in tests/unit/elf_test.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pyshim/error.hpp"

namespace pyshim {

struct ElfInfo {
  int elf_class = 0;          // ELFCLASS32 (1) or ELFCLASS64 (2)
  int data = 0;               // ELFDATA2LSB (1) or ELFDATA2MSB (2)
  std::uint16_t machine = 0;  // EM_X86_64, EM_AARCH64, ...
  std::uint16_t type = 0;     // ET_EXEC, ET_DYN
  bool has_interp = false;    // PT_INTERP: started by the dynamic loader
  bool has_dynamic = false;   // PT_DYNAMIC
  std::string interp;         // PT_INTERP's path, when it lies in the bytes read
};

// Parses the ELF header and program headers from the first bytes of a file
// (4 KiB is plenty for anything a linker writes).
Result<ElfInfo> parse_elf(std::string_view head);

// What `pyshim dynlib` and the libc check (install, doctor) read from a
// shared object.
struct DynamicInfo {
  int elf_class = 0;
  std::uint16_t machine = 0;
  std::uint16_t type = 0;                 // ET_DYN for a shared object
  std::string soname;                     // DT_SONAME, "" when absent
  std::vector<std::string> init_symbols;  // defined, exported PyInit_* in .dynsym
  // What the loader reads to link it (for `doctor --extensions`).
  std::vector<std::string> needed;  // DT_NEEDED, in order
  std::string rpath;                // DT_RPATH, "" when absent (':'-separated)
  std::string runpath;              // DT_RUNPATH, "" when absent
  bool has_runpath = false;         // DT_RUNPATH present: the loader then ignores DT_RPATH
  // Undefined symbols that only a sanitizer runtime defines: __asan_init,
  // __tsan_init, __msan_init, __hwasan_init (one each at most).
  std::vector<std::string> sanitizer_imports;
  // Symbol versions (.gnu.version_r, .gnu.version_d): which versions this
  // file needs of which library (GLIBC_2.34 of libc.so.6), and which it
  // defines itself (a libc defines GLIBC_2.2.5 ... GLIBC_2.36).
  struct VersionNeed {
    std::string file;
    std::vector<std::string> versions;
  };
  std::vector<VersionNeed> version_needs;
  std::vector<std::string> version_definitions;
};

// The versions `user` needs of `file` (a DT_NEEDED name, "libc.so.6") that
// `definitions` (that library's version_definitions) lacks: what the loader
// would refuse with "version `GLIBC_2.34' not found". Pure: pyshim checks
// this from the files, never by running the interpreter.
std::vector<std::string> missing_versions(const DynamicInfo& user, std::string_view file,
                                          const std::vector<std::string>& definitions);

// Reads the section headers of a whole file image (mapped, so only the pages
// touched are read): .dynamic for DT_SONAME, .dynsym for the PyInit_*
// symbols an extension module exports. Host byte order only. A file whose
// section headers were stripped (sstrip) gives no SONAME and no symbols;
// nothing a Python package installer writes is like that.
Result<DynamicInfo> parse_dynamic(std::string_view image);

// Where a named section lies in a whole file image (64-bit, host byte
// order), or nullopt. For the launcher's stamp area.
struct SectionRange {
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
};
std::optional<SectionRange> find_section(std::string_view image, std::string_view name);

// "x86-64, 64-bit" and the like, for messages.
std::string describe(const ElfInfo& info);

// Same class, byte order and machine: a library the loader would accept for
// a process of the other.
inline bool compatible(const ElfInfo& a, const ElfInfo& b) {
  return a.elf_class == b.elf_class && a.data == b.data && a.machine == b.machine;
}

}  // namespace pyshim
