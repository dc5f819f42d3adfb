#include "pyshim/elf.hpp"

#include <elf.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
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
  ElfInfo host{ELFCLASS64, ELFDATA2LSB, EM_X86_64, ET_DYN, true, true, ""};
  EXPECT_FALSE(compatible(*info, host));
}

std::string whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

TEST(ParseElf, InterpreterPath) {
  auto info = parse_elf(head_of("/bin/sh"));
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->interp.starts_with("/")) << info->interp;
  EXPECT_NE(info->interp.find("ld-linux"), std::string::npos) << info->interp;
}

// The libc check's inputs, read from this machine's /bin/sh and its libc:
// the needs name libc.so.6 and its GLIBC_ versions; libc defines them all
// (the floor, GLIBC_2.17, among them) and not its own SONAME.
TEST(ParseDynamic, SymbolVersionNeedsAndDefinitions) {
  auto sh = parse_dynamic(whole_file("/bin/sh"));
  ASSERT_TRUE(sh.ok()) << sh.error().message;
  const DynamicInfo::VersionNeed* libc_need = nullptr;
  for (const auto& need : sh->version_needs) {
    if (need.file == "libc.so.6") libc_need = &need;
  }
  ASSERT_NE(libc_need, nullptr);
  ASSERT_FALSE(libc_need->versions.empty());
  for (const auto& version : libc_need->versions) EXPECT_TRUE(version.starts_with("GLIBC_"));

  std::string interp = parse_elf(head_of("/bin/sh"))->interp;
  char real[4096];
  ASSERT_NE(realpath(interp.c_str(), real), nullptr);
  std::string libc_path = std::string(real).substr(0, std::string(real).rfind('/')) + "/libc.so.6";
  auto libc = parse_dynamic(whole_file(libc_path));
  ASSERT_TRUE(libc.ok()) << libc.error().message;
  const auto& defs = libc->version_definitions;
  EXPECT_NE(std::find(defs.begin(), defs.end(), "GLIBC_2.17"), defs.end());
  EXPECT_NE(std::find(defs.begin(), defs.end(), "GLIBC_PRIVATE"), defs.end());
  EXPECT_EQ(std::find(defs.begin(), defs.end(), "libc.so.6"), defs.end());

  EXPECT_TRUE(missing_versions(*sh, "libc.so.6", defs).empty());
  // An older libc lacks what /bin/sh needs beyond the oldest version.
  auto missing = missing_versions(*sh, "libc.so.6", {"GLIBC_2.2.5", "GLIBC_2.17"});
  for (const auto& version : missing) {
    EXPECT_NE(version, "GLIBC_2.17");
    EXPECT_NE(std::find(libc_need->versions.begin(), libc_need->versions.end(), version),
              libc_need->versions.end());
  }
  EXPECT_TRUE(missing_versions(*sh, "libm.so.6", {}).empty());  // needs of another file only
  EXPECT_EQ(missing_versions(*sh, "libc.so.6", {}).size(), libc_need->versions.size());
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
