#include "pyshim/elf.hpp"

#include <elf.h>

#include <cstring>

#include <fmt/format.h>

namespace pyshim {
namespace {

template <class Ehdr, class Phdr>
Result<ElfInfo> parse_class(std::string_view head, ElfInfo info) {
  if (head.size() < sizeof(Ehdr)) {
    return Error{kExitShimFailure, "truncated ELF header", {}, ""};
  }
  Ehdr ehdr;
  std::memcpy(&ehdr, head.data(), sizeof ehdr);
  bool swap = info.data != ELFDATA2LSB;  // the host is little-endian
  auto fix16 = [swap](std::uint16_t v) {
    return swap ? static_cast<std::uint16_t>((v >> 8) | (v << 8)) : v;
  };
  info.machine = fix16(ehdr.e_machine);
  info.type = fix16(ehdr.e_type);
  if (swap) return info;  // foreign byte order: class and machine are enough
  std::uint64_t phoff = ehdr.e_phoff;
  std::uint64_t phnum = ehdr.e_phnum;
  std::uint64_t phentsize = ehdr.e_phentsize;
  if (phnum == 0) return info;
  if (phentsize < sizeof(Phdr) || phoff + phnum * phentsize > head.size()) {
    return Error{kExitShimFailure, "program headers lie beyond the bytes read", {}, ""};
  }
  for (std::uint64_t i = 0; i < phnum; ++i) {
    Phdr phdr;
    std::memcpy(&phdr, head.data() + phoff + i * phentsize, sizeof phdr);
    if (phdr.p_type == PT_INTERP) info.has_interp = true;
    if (phdr.p_type == PT_DYNAMIC) info.has_dynamic = true;
  }
  return info;
}

}  // namespace

Result<ElfInfo> parse_elf(std::string_view head) {
  if (head.size() < EI_NIDENT || std::memcmp(head.data(), ELFMAG, SELFMAG) != 0) {
    return Error{kExitShimFailure, "not an ELF file", {}, ""};
  }
  ElfInfo info;
  info.elf_class = static_cast<unsigned char>(head[EI_CLASS]);
  info.data = static_cast<unsigned char>(head[EI_DATA]);
  if (info.data != ELFDATA2LSB && info.data != ELFDATA2MSB) {
    return Error{kExitShimFailure, "unknown ELF byte order", {}, ""};
  }
  if (info.elf_class == ELFCLASS64) return parse_class<Elf64_Ehdr, Elf64_Phdr>(head, info);
  if (info.elf_class == ELFCLASS32) return parse_class<Elf32_Ehdr, Elf32_Phdr>(head, info);
  return Error{kExitShimFailure, "unknown ELF class", {}, ""};
}

std::string describe(const ElfInfo& info) {
  std::string machine;
  switch (info.machine) {
    case EM_X86_64:
      machine = "x86-64";
      break;
    case EM_386:
      machine = "i386";
      break;
    case EM_AARCH64:
      machine = "aarch64";
      break;
    case EM_ARM:
      machine = "arm";
      break;
    case EM_RISCV:
      machine = "riscv";
      break;
    case EM_PPC64:
      machine = "ppc64";
      break;
    case EM_S390:
      machine = "s390";
      break;
    default:
      machine = fmt::format("machine {}", info.machine);
  }
  return fmt::format("{}, {}-bit{}", machine, info.elf_class == ELFCLASS64 ? 64 : 32,
                     info.data == ELFDATA2MSB ? ", big-endian" : "");
}

}  // namespace pyshim
