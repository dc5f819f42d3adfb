// The loader model of `doctor --extensions` (src/core/extensions.cpp), on
// facts without a disk: a fake set of files stands for the file system.
#include "pyshim/extensions.hpp"

#include <elf.h>
#include <gtest/gtest.h>

#include <cstring>
#include <set>

namespace pyshim {
namespace {

ElfInfo x86_64() {
  ElfInfo info;
  info.elf_class = ELFCLASS64;
  info.data = ELFDATA2LSB;
  info.machine = EM_X86_64;
  return info;
}

LinkedObject object(std::string dir, std::vector<std::string> needed) {
  LinkedObject o;
  o.path = dir + "/ext.so";
  o.real_dir = dir;
  o.label = "pkg/ext.so";
  o.dynamic.elf_class = ELFCLASS64;
  o.dynamic.machine = EM_X86_64;
  o.dynamic.type = ET_DYN;
  o.dynamic.needed = std::move(needed);
  return o;
}

struct Loader {
  std::set<std::string> files;
  LoaderFacts facts() {
    LoaderFacts f;
    f.interpreter = x86_64();
    f.default_dirs = default_library_dirs(f.interpreter);
    f.has_file = [this](const std::string& path) { return files.count(path) > 0; };
    return f;
  }
};

TEST(ExtensionsLoader, OriginInRunpathIsTheObjectsRealFolder) {
  Loader disk{{"/v/site/pkg/../pkg.libs/libb.so.3"}};  // the kernel resolves ".."
  LinkedObject o = object("/v/site/pkg", {"libb.so.3"});
  o.dynamic.runpath = "$ORIGIN/../pkg.libs";
  o.dynamic.has_runpath = true;
  EXPECT_EQ(resolve_needed(o, "libb.so.3", disk.facts()), "/v/site/pkg/../pkg.libs/libb.so.3");
}

TEST(ExtensionsLoader, RpathIsIgnoredWhenRunpathIsPresent) {
  Loader disk{{"/opt/r/liba.so"}};
  LinkedObject o = object("/v/site", {"liba.so"});
  o.dynamic.rpath = "/opt/r";
  EXPECT_TRUE(resolve_needed(o, "liba.so", disk.facts()));
  o.dynamic.runpath = "/elsewhere";
  o.dynamic.has_runpath = true;
  EXPECT_FALSE(resolve_needed(o, "liba.so", disk.facts()));
}

TEST(ExtensionsLoader, LibraryPathCacheDefaultsAndLoadedNames) {
  Loader disk{{"/layer/dynlib/libl.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1"}};
  LinkedObject o = object("/v/site", {});
  LoaderFacts f = disk.facts();
  EXPECT_FALSE(resolve_needed(o, "libl.so.1", f));
  f.library_path = {"/layer/dynlib"};
  EXPECT_EQ(resolve_needed(o, "libl.so.1", f), "/layer/dynlib/libl.so.1");
  EXPECT_EQ(resolve_needed(o, "libz.so.1", f), "/usr/lib/x86_64-linux-gnu/libz.so.1");
  f.cache = {"/opt/cached/libc9.so"};
  EXPECT_EQ(resolve_needed(o, "libc9.so", f), "/opt/cached/libc9.so");
  EXPECT_FALSE(resolve_needed(o, "libpython3.11.so.1.0", f));
  f.loaded = {"libpython3.11.so.1.0"};
  EXPECT_TRUE(resolve_needed(o, "libpython3.11.so.1.0", f));
}

TEST(ExtensionsLoader, AnUnknownTokenIsRefusedAsTheLoaderDoes) {
  Loader disk{{"/x/$NOPE/liba.so"}};
  LinkedObject o = object("/v/site", {});
  o.dynamic.runpath = "/x/$NOPE";
  o.dynamic.has_runpath = true;
  EXPECT_FALSE(resolve_needed(o, "liba.so", disk.facts()));
}

ExtensionInputs asan_inputs(std::vector<std::string> preloads) {
  ExtensionInputs in;
  LinkedObject o = object("/v/site", {});
  o.dynamic.sanitizer_imports = {"__asan_init"};
  in.objects = {o};
  in.preloads = std::move(preloads);
  in.venv = "/v";
  return in;
}

TEST(ExtensionsCheck, AsanRuntimeMissingNotFirstAndFirst) {
  Loader disk;
  auto in = asan_inputs({});
  in.loader = disk.facts();
  auto findings = check_extensions(in);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].kind, ExtensionFinding::Kind::kRuntime);
  EXPECT_EQ(findings[0].fix, "pyshim install /v --preload asan");

  in.preloads = {"/usr/lib/libjemalloc.so.2", "/usr/lib/x86_64-linux-gnu/libasan.so.8"};
  findings = check_extensions(in);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_NE(findings[0].problem.find("preload 2 of 2"), std::string::npos);

  in.preloads = {"/usr/lib/x86_64-linux-gnu/libasan.so.8", "/usr/lib/libjemalloc.so.2"};
  EXPECT_TRUE(check_extensions(in).empty());
  in.preloads = {"/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.asan-x86_64.so"};
  EXPECT_TRUE(check_extensions(in).empty());
}

TEST(ExtensionsCheck, MissingLibraryNamesTheLayerThatHoldsIt) {
  Loader disk;
  ExtensionInputs in;
  in.objects = {object("/up/site", {"libframework.so.1"})};
  in.loader = disk.facts();
  in.venv = "/up";
  in.candidates = {{"/low", false, {{"libframework.so.1", "/low/site/libframework.so.1", true}}}};
  auto findings = check_extensions(in);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].kind, ExtensionFinding::Kind::kLibrary);
  EXPECT_EQ(findings[0].fix,
            "/low holds it (/low/site/libframework.so.1): pyshim install /up --layer /low");
  in.candidates[0].libraries[0].in_dynlib = false;
  EXPECT_EQ(check_extensions(in)[0].fix,
            "/low holds it (/low/site/libframework.so.1): pyshim dynlib /low, then pyshim "
            "install /up --layer /low");
}

TEST(ExtensionsCheck, ALibraryOfTheSameSitePackagesIsNotFlagged) {
  Loader disk;
  ExtensionInputs in;
  LinkedObject lib = object("/v/site/pkg", {});
  lib.dynamic.soname = "libbundled.so";
  in.objects = {object("/v/site", {"libbundled.so"}), lib};
  in.loader = disk.facts();
  EXPECT_TRUE(check_extensions(in).empty());
}

TEST(ExtensionsCheck, ForeignMachineIsFlaggedOnce) {
  Loader disk;
  ExtensionInputs in;
  LinkedObject o = object("/v/site", {"libmissing.so"});
  o.dynamic.machine = EM_AARCH64;
  in.objects = {o};
  in.loader = disk.facts();
  auto findings = check_extensions(in);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].kind, ExtensionFinding::Kind::kForeign);
}

// A glibc loader cache made by hand: header, two entries, the strings.
TEST(ExtensionsCache, ParsesTheNewFormatAndFiltersByMachine) {
  std::string bytes = "glibc-ld.so.cache1.1";
  auto put32 = [&bytes](std::uint32_t v) { bytes.append(reinterpret_cast<char*>(&v), 4); };
  put32(2);                // nlibs
  put32(0);                // len_strings (unused here)
  bytes.append(4, '\0');   // flags + padding
  put32(0);                // extension offset
  bytes.append(12, '\0');  // unused
  std::size_t strings = 48 + 2 * 24;
  std::string table = std::string("liba.so.1") + '\0' + "/lib/x86_64-linux-gnu/liba.so.1" + '\0' +
                      "libb.so.2" + '\0' + "/lib/aarch64-linux-gnu/libb.so.2" + '\0';
  auto entry = [&](std::int32_t flags, std::uint32_t key, std::uint32_t value) {
    bytes.append(reinterpret_cast<char*>(&flags), 4);
    put32(key);
    put32(value);
    put32(0);
    bytes.append(8, '\0');
  };
  entry(0x0303, static_cast<std::uint32_t>(strings), static_cast<std::uint32_t>(strings + 10));
  entry(0x0a03, static_cast<std::uint32_t>(strings + 42), static_cast<std::uint32_t>(strings + 52));
  bytes += table;
  auto entries = parse_loader_cache(bytes);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].name, "liba.so.1");
  EXPECT_EQ(entries[0].path, "/lib/x86_64-linux-gnu/liba.so.1");
  EXPECT_EQ(entries[1].path, "/lib/aarch64-linux-gnu/libb.so.2");
  EXPECT_TRUE(cache_entry_fits(entries[0], x86_64()));
  EXPECT_FALSE(cache_entry_fits(entries[1], x86_64()));
  EXPECT_TRUE(parse_loader_cache("not a cache").empty());
  EXPECT_TRUE(parse_loader_cache(bytes.substr(0, 60)).empty());  // entries cut off
}

}  // namespace
}  // namespace pyshim
