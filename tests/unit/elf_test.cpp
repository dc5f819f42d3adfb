#include "pyshim/elf.hpp"

#include <elf.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace pyshim {
namespace {

std::string head_of(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes(4096, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  return bytes;
}

TEST(ParseElf, DynamicExecutableHasInterp) {
  auto info = parse_elf(head_of("/bin/sh"));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->elf_class, ELFCLASS64);
  EXPECT_TRUE(info->has_interp);
  EXPECT_TRUE(info->has_dynamic);
}

TEST(ParseElf, CraftedThirtyTwoBitArmHeader) {
  Elf32_Ehdr ehdr{};
  std::memcpy(ehdr.e_ident, ELFMAG, SELFMAG);
  ehdr.e_ident[EI_CLASS] = ELFCLASS32;
  ehdr.e_ident[EI_DATA] = ELFDATA2LSB;
  ehdr.e_type = ET_DYN;
  ehdr.e_machine = EM_ARM;
  std::string bytes(reinterpret_cast<const char*>(&ehdr), sizeof ehdr);
  auto info = parse_elf(bytes);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->elf_class, ELFCLASS32);
  EXPECT_EQ(info->machine, EM_ARM);
  EXPECT_EQ(describe(*info), "arm, 32-bit");
  ElfInfo host{ELFCLASS64, ELFDATA2LSB, EM_X86_64, ET_DYN, true, true};
  EXPECT_FALSE(compatible(*info, host));
}

TEST(ParseElf, RejectsNonElfAndTruncated) {
  EXPECT_FALSE(parse_elf("#!/bin/sh\n").ok());
  EXPECT_FALSE(parse_elf(std::string_view("\x7f"
                                          "ELF\x02\x01",
                                          6))
                   .ok());
}

}  // namespace
}  // namespace pyshim
