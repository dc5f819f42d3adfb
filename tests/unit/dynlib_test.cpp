#include "pyshim/dynlib.hpp"

#include <elf.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "pyshim/config.hpp"
#include "pyshim/elf.hpp"
#include "pyshim/venv.hpp"

namespace pyshim {
namespace {

const std::vector<std::string> kCpythonSuffixes = {".cpython-311-x86_64-linux-gnu.so", ".abi3.so",
                                                   ".so"};
const std::vector<std::string> kPypySuffixes = {".pypy39-pp73-x86_64-linux-gnu.so"};

// ---------------------------------------------------------------- globs

TEST(GlobMatch, DoubleStarMatchesAnyNumberOfFolders) {
  EXPECT_TRUE(glob_match("**/libbar.so", "libbar.so"));
  EXPECT_TRUE(glob_match("**/libbar.so", "a/b/c/libbar.so"));
  EXPECT_TRUE(glob_match("pkg/**", "pkg/lib/libx.so"));
  EXPECT_TRUE(glob_match("a/**/b", "a/b"));
  EXPECT_TRUE(glob_match("a/**/b", "a/x/y/b"));
  EXPECT_TRUE(glob_match("a/**/**/b", "a/x/b"));
  EXPECT_TRUE(glob_match("**", "anything/at/all"));
  EXPECT_FALSE(glob_match("a/**/b", "a/x/c"));
  EXPECT_FALSE(glob_match("**/libbar.so", "a/libbar.so.1"));
}

TEST(GlobMatch, SingleStarStaysInOneFolder) {
  EXPECT_TRUE(glob_match("pkg/*.so", "pkg/libx.so"));
  EXPECT_FALSE(glob_match("pkg/*.so", "pkg/sub/libx.so"));
  EXPECT_FALSE(glob_match("*", "a/b"));
  EXPECT_TRUE(glob_match("lib?ar.so", "libbar.so"));
  EXPECT_TRUE(glob_match("lib[bc]ar.so", "libcar.so"));
  EXPECT_FALSE(glob_match("lib[bc]ar.so", "libdar.so"));
}

TEST(GlobMatch, IgnoresDotAndEmptyComponents) {
  EXPECT_TRUE(glob_match("./pkg//libx.so", "pkg/libx.so"));
  EXPECT_TRUE(glob_match("pkg/", "pkg"));
}

// ---------------------------------------------------------------- names

TEST(IsSharedObjectName, AcceptsPlainAndVersionedNames) {
  for (const char* yes : {"libfoo.so", "libfoo.so.1", "libfoo.so.1.2.3", "libstdc++.so.6.0.30",
                          "libopenblas64_p-r0-15028c96.3.21.so"}) {
    EXPECT_TRUE(is_shared_object_name(yes)) << yes;
  }
  for (const char* no : {"foo.py", "libfoo.so.1a", ".so", "libfoo.so.", "libfoo.sox",
                         "libfoo.so.1.debug", "so", "libfoo.a"}) {
    EXPECT_FALSE(is_shared_object_name(no)) << no;
  }
}

TEST(ClassifyName, TaggedSuffixesAreExtensionsAndBareSoIsAmbiguous) {
  EXPECT_EQ(classify_name("_b.cpython-311-x86_64-linux-gnu.so", kCpythonSuffixes),
            NameKind::kExtension);
  EXPECT_EQ(classify_name("_b.abi3.so", kCpythonSuffixes), NameKind::kExtension);
  EXPECT_EQ(classify_name("_b.so", kCpythonSuffixes), NameKind::kMaybeExtension);
  EXPECT_EQ(classify_name("libfoo.so", kCpythonSuffixes), NameKind::kMaybeExtension);
  EXPECT_EQ(classify_name("libfoo.so.1", kCpythonSuffixes), NameKind::kLibrary);
  EXPECT_EQ(classify_name("README.md", kCpythonSuffixes), NameKind::kOther);
  // The suffix alone is no module name.
  EXPECT_EQ(classify_name(".so", kCpythonSuffixes), NameKind::kOther);
}

TEST(ClassifyName, FollowsTheInterpretersOwnSuffixes) {
  // PyPy does not import a bare .so, so for a PyPy venv it is a library.
  EXPECT_EQ(classify_name("_b.so", kPypySuffixes), NameKind::kLibrary);
  EXPECT_EQ(classify_name("_b.pypy39-pp73-x86_64-linux-gnu.so", kPypySuffixes),
            NameKind::kExtension);
  EXPECT_EQ(classify_name("_b.cpython-311-x86_64-linux-gnu.so", kPypySuffixes), NameKind::kLibrary);
}

TEST(InitSymbol, UsesTheNameUpToTheFirstDot) {
  EXPECT_EQ(init_symbol("_b.so"), "PyInit__b");
  EXPECT_EQ(init_symbol("foo.abi3.so"), "PyInit_foo");
}

SharedObject object(std::string rel, std::string identity, std::string soname = {},
                    std::vector<std::string> init = {}) {
  SharedObject o;
  o.site_dir = "/v/lib/python3.11/site-packages";
  o.rel_path = std::move(rel);
  o.identity = std::move(identity);
  o.loadable = true;
  o.soname = std::move(soname);
  o.init_symbols = std::move(init);
  return o;
}

TEST(IsExtensionModule, BareSoNeedsItsOwnPyInit) {
  EXPECT_TRUE(is_extension_module(object("_b.so", "1", "", {"PyInit__b"}), kCpythonSuffixes));
  EXPECT_FALSE(is_extension_module(object("libfoo.so", "1"), kCpythonSuffixes));
  // Exporting some other module's init function does not make it importable
  // under this name.
  EXPECT_FALSE(is_extension_module(object("libfoo.so", "1", "", {"PyInit__b"}), kCpythonSuffixes));
  EXPECT_TRUE(
      is_extension_module(object("pkg/_x.cpython-311-x86_64-linux-gnu.so", "1"), kCpythonSuffixes));
}

TEST(FindExclude, MatchesThePathOrAFolderOfIt) {
  std::vector<ExcludeGlob> excludes = {{"bar_two", "--exclude"},
                                       {"**/libqux.so", "pyshim.toml:9:12"},
                                       {"/v/lib/python3.11/site-packages/abs/*.so", "--exclude"}};
  const ExcludeGlob* by = find_exclude(excludes, object("bar_two/lib/libbar.so", "1"));
  ASSERT_NE(by, nullptr);
  EXPECT_EQ(by->glob, "bar_two");
  by = find_exclude(excludes, object("deep/er/libqux.so", "1"));
  ASSERT_NE(by, nullptr);
  EXPECT_EQ(by->origin, "pyshim.toml:9:12");
  by = find_exclude(excludes, object("abs/libz.so", "1"));
  ASSERT_NE(by, nullptr);
  EXPECT_EQ(by->glob, "/v/lib/python3.11/site-packages/abs/*.so");
  EXPECT_EQ(find_exclude(excludes, object("bar_one/lib/libbar.so", "1")), nullptr);
  EXPECT_EQ(find_exclude(excludes, object("bar_twofold/libbar.so", "1")), nullptr);
}

TEST(LinkTarget, RelativeInsideTheVenvAbsoluteOutside) {
  EXPECT_EQ(link_target("/v", "/v/lib/python3.11/site-packages/pkg/libfoo.so.1"),
            "../../../lib/python3.11/site-packages/pkg/libfoo.so.1");
  EXPECT_EQ(link_target("/v/", "/v/lib/./x/../libfoo.so"), "../../../lib/libfoo.so");
  EXPECT_EQ(link_target("/v", "/v2/lib/libfoo.so"), "/v2/lib/libfoo.so");
  EXPECT_EQ(link_target("/v", "/opt/lib/libfoo.so"), "/opt/lib/libfoo.so");
}

// ---------------------------------------------------------------- selection

DynlibInputs inputs_of(std::vector<SharedObject> objects) {
  DynlibInputs in;
  in.venv = "/v";
  in.suffixes = kCpythonSuffixes;
  in.objects = std::move(objects);
  in.same_contents = [](const SharedObject&, const SharedObject&) { return false; };
  return in;
}

TEST(SelectDynlib, LinksLibrariesByNameAndSonameButNotExtensions) {
  auto in = inputs_of({
      object("foo_pkg/lib/libqux.so", "2", "libqux.so.2"),
      object("foo_pkg/lib/libfoo.so.1", "1", "libfoo.so.1"),
      object("_a.so", "3", "", {"PyInit__a"}),
      object("_c.cpython-311-x86_64-linux-gnu.so", "4"),
  });
  SharedObject script = object("pkg/linker/libc.so", "5");
  script.loadable = false;  // e.g. a linker script named like a library
  in.objects.push_back(script);
  auto selection = select_dynlib(in);
  ASSERT_TRUE(selection.ok()) << format_error(selection.error());
  ASSERT_EQ(selection->links.size(), 3u);
  EXPECT_EQ(selection->links[0].name, "libfoo.so.1");
  EXPECT_EQ(selection->links[0].target,
            "../../../lib/python3.11/site-packages/foo_pkg/lib/libfoo.so.1");
  EXPECT_EQ(selection->links[0].source, "/v/lib/python3.11/site-packages/foo_pkg/lib/libfoo.so.1");
  EXPECT_EQ(selection->links[1].name, "libqux.so");
  EXPECT_EQ(selection->links[2].name, "libqux.so.2");
  EXPECT_EQ(selection->links[2].target, selection->links[1].target);
  EXPECT_TRUE(selection->excluded.empty());
}

TEST(SelectDynlib, TwoDifferentFilesWithOneNameAreAnErrorNamingBoth) {
  auto in = inputs_of({object("bar_two/libbar.so", "2"), object("bar_one/libbar.so", "1")});
  auto selection = select_dynlib(in);
  ASSERT_FALSE(selection.ok());
  const Error& error = selection.error();
  EXPECT_EQ(error.exit_code(), kExitUsage);
  EXPECT_NE(error.message.find("libbar.so"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("2 different files"), std::string::npos) << error.message;
  ASSERT_EQ(error.context.size(), 2u);
  EXPECT_EQ(error.context[0], "libbar.so: /v/lib/python3.11/site-packages/bar_one/libbar.so");
  EXPECT_EQ(error.context[1], "libbar.so: /v/lib/python3.11/site-packages/bar_two/libbar.so");
  EXPECT_NE(error.hint.find("pyshim dynlib /v --exclude 'bar_two/libbar.so'"), std::string::npos)
      << error.hint;
  EXPECT_NE(error.hint.find("[dynlib] exclude = [\"bar_two/libbar.so\"]"), std::string::npos)
      << error.hint;
  EXPECT_NE(error.hint.find("pass it on every run"), std::string::npos) << error.hint;

  in.config_file = "/v/pyshim.toml";
  selection = select_dynlib(in);
  ASSERT_FALSE(selection.ok());
  EXPECT_NE(selection.error().hint.find(
                "write [dynlib] exclude = [\"bar_two/libbar.so\"] in /v/pyshim.toml"),
            std::string::npos)
      << selection.error().hint;
}

TEST(SelectDynlib, AClashBySonameSaysSo) {
  auto in = inputs_of(
      {object("a/libfoo.so.1", "1", "libfoo.so.1"), object("b/libfoo.so", "2", "libfoo.so.1")});
  auto selection = select_dynlib(in);
  ASSERT_FALSE(selection.ok());
  ASSERT_EQ(selection.error().context.size(), 2u);
  EXPECT_EQ(selection.error().context[1],
            "libfoo.so.1: /v/lib/python3.11/site-packages/b/libfoo.so (SONAME libfoo.so.1)");
}

TEST(SelectDynlib, EveryClashIsListed) {
  auto in = inputs_of({object("x/libbar.so", "1"), object("y/libbar.so", "2"),
                       object("x/libbaz.so", "3"), object("y/libbaz.so", "4")});
  auto selection = select_dynlib(in);
  ASSERT_FALSE(selection.ok());
  EXPECT_EQ(selection.error().context.size(), 4u);
  EXPECT_NE(selection.error().hint.find("--exclude 'y/libbar.so' --exclude 'y/libbaz.so'"),
            std::string::npos)
      << selection.error().hint;
}

TEST(SelectDynlib, AnExcludeResolvesAClashAndIsReported) {
  auto in = inputs_of({object("bar_one/libbar.so", "1"), object("bar_two/libbar.so", "2")});
  in.excludes = {{"bar_two/**", "--exclude"}};
  auto selection = select_dynlib(in);
  ASSERT_TRUE(selection.ok()) << format_error(selection.error());
  ASSERT_EQ(selection->links.size(), 1u);
  EXPECT_EQ(selection->links[0].source, "/v/lib/python3.11/site-packages/bar_one/libbar.so");
  ASSERT_EQ(selection->excluded.size(), 1u);
  EXPECT_EQ(selection->excluded[0].path, "/v/lib/python3.11/site-packages/bar_two/libbar.so");
  EXPECT_EQ(selection->excluded[0].by.glob, "bar_two/**");
}

TEST(SelectDynlib, IdenticalCopiesAreNotAClash) {
  auto in = inputs_of(
      {object("y/libgomp.so.1", "2"), object("x/libgomp.so.1", "1"), object("z/libother.so", "3")});
  int asked = 0;
  in.same_contents = [&asked](const SharedObject& a, const SharedObject& b) {
    ++asked;
    return a.rel_path.ends_with("libgomp.so.1") && b.rel_path.ends_with("libgomp.so.1");
  };
  auto selection = select_dynlib(in);
  ASSERT_TRUE(selection.ok()) << format_error(selection.error());
  ASSERT_EQ(selection->links.size(), 2u);
  EXPECT_EQ(selection->links[0].source, "/v/lib/python3.11/site-packages/x/libgomp.so.1");
  EXPECT_EQ(asked, 1);  // only the colliding name reads files
}

TEST(SelectDynlib, OneFileUnderTwoPathsIsOneCandidate) {
  // pkg/libfoo.so -> libfoo.so.1 beside its target: same file, and the link
  // named libfoo.so.1 should point at the path with that name.
  auto in = inputs_of(
      {object("pkg/libfoo.so", "7", "libfoo.so.1"), object("pkg/libfoo.so.1", "7", "libfoo.so.1")});
  auto selection = select_dynlib(in);
  ASSERT_TRUE(selection.ok()) << format_error(selection.error());
  ASSERT_EQ(selection->links.size(), 2u);
  EXPECT_EQ(selection->links[0].name, "libfoo.so");
  EXPECT_EQ(selection->links[0].source, "/v/lib/python3.11/site-packages/pkg/libfoo.so");
  EXPECT_EQ(selection->links[1].name, "libfoo.so.1");
  EXPECT_EQ(selection->links[1].source, "/v/lib/python3.11/site-packages/pkg/libfoo.so.1");
}

// ---------------------------------------------------------------- diff

TEST(DiffDynlib, AddsChangesAndRemovesOnlyWhatDiffers) {
  std::vector<DynlibLink> wanted = {
      {"liba.so", "../a", "/a"}, {"libb.so", "../b-new", "/b"}, {"libc.so", "../c", "/c"}};
  std::vector<DynlibEntry> existing = {{"libb.so", true, "../b-old"},
                                       {"libc.so", true, "../c"},
                                       {"libgone.so", true, "../gone"},
                                       {"README", false, ""}};
  auto changes = diff_dynlib(wanted, existing, "/v/share/venv/dynlib");
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 3u);
  EXPECT_EQ((*changes)[0].kind, DynlibChange::Kind::kAdd);
  EXPECT_EQ((*changes)[0].name, "liba.so");
  EXPECT_EQ((*changes)[1].kind, DynlibChange::Kind::kChange);
  EXPECT_EQ((*changes)[1].target, "../b-new");
  EXPECT_EQ((*changes)[1].old_target, "../b-old");
  EXPECT_EQ((*changes)[2].kind, DynlibChange::Kind::kRemove);
  EXPECT_EQ((*changes)[2].name, "libgone.so");
}

TEST(DiffDynlib, UpToDateIsNoChange) {
  std::vector<DynlibLink> wanted = {{"liba.so", "../a", "/a"}};
  auto changes = diff_dynlib(wanted, {{"liba.so", true, "../a"}}, "/d");
  ASSERT_TRUE(changes.ok());
  EXPECT_TRUE(changes->empty());
}

TEST(DiffDynlib, AFileInTheWayIsAnError) {
  std::vector<DynlibLink> wanted = {{"liba.so", "../a", "/a"}};
  auto changes = diff_dynlib(wanted, {{"liba.so", false, ""}}, "/d");
  ASSERT_FALSE(changes.ok());
  EXPECT_EQ(changes.error().message, "/d/liba.so is in the way: it is not a symlink");
}

TEST(RenderConfig, KeepsDynlibExclude) {
  Config spec;
  spec.interpreter = {"/usr/bin/python3.11"};
  spec.dynlib_exclude = {{"bar_two/**"}, {"**/lib\"q\".so"}};
  std::string text = render_config(spec);
  auto config = parse_config(text, "/v/pyshim.toml");
  ASSERT_TRUE(config.ok()) << format_error(config.error()) << text;
  ASSERT_EQ(config->dynlib_exclude.size(), 2u);
  EXPECT_EQ(config->dynlib_exclude[0].value, "bar_two/**");
  EXPECT_EQ(config->dynlib_exclude[1].value, "**/lib\"q\".so");
}

// ---------------------------------------------------------------- ELF

// A minimal shared object image: header, .dynstr, .dynsym, .dynamic and the
// section headers, enough for parse_dynamic.
template <class Ehdr, class Shdr, class Sym, class Dyn>
class ElfBuilder {
 public:
  explicit ElfBuilder(unsigned char elf_class) : class_(elf_class) { strings_.push_back('\0'); }

  void soname(const std::string& name) { soname_ = add_string(name); }
  void symbol(const std::string& name, std::uint16_t shndx, unsigned char bind,
              unsigned char visibility = STV_DEFAULT) {
    Sym sym{};
    sym.st_name = add_string(name);
    sym.st_info = static_cast<unsigned char>((bind << 4) | STT_FUNC);
    sym.st_other = visibility;
    sym.st_shndx = shndx;
    symbols_.push_back(sym);
  }

  std::string build() const {
    std::string image(sizeof(Ehdr), '\0');
    auto append = [&image](const void* data, std::size_t size) {
      std::size_t at = image.size();
      image.append(static_cast<const char*>(data), size);
      return at;
    };
    std::size_t strtab_at = append(strings_.data(), strings_.size());
    std::vector<Sym> symbols(1);  // entry 0: the reserved undefined symbol
    symbols.insert(symbols.end(), symbols_.begin(), symbols_.end());
    std::size_t symtab_at = append(symbols.data(), symbols.size() * sizeof(Sym));
    std::vector<Dyn> dynamic;
    if (soname_ != 0) {
      Dyn d{};
      d.d_tag = DT_SONAME;
      d.d_un.d_val = soname_;
      dynamic.push_back(d);
    }
    dynamic.push_back(Dyn{});  // DT_NULL
    std::size_t dynamic_at = append(dynamic.data(), dynamic.size() * sizeof(Dyn));

    std::vector<Shdr> sections(4);
    sections[1].sh_type = SHT_STRTAB;
    sections[1].sh_offset = static_cast<decltype(Shdr::sh_offset)>(strtab_at);
    sections[1].sh_size = static_cast<decltype(Shdr::sh_size)>(strings_.size());
    sections[2].sh_type = SHT_DYNSYM;
    sections[2].sh_offset = static_cast<decltype(Shdr::sh_offset)>(symtab_at);
    sections[2].sh_size = static_cast<decltype(Shdr::sh_size)>(symbols.size() * sizeof(Sym));
    sections[2].sh_entsize = sizeof(Sym);
    sections[2].sh_link = 1;
    sections[3].sh_type = SHT_DYNAMIC;
    sections[3].sh_offset = static_cast<decltype(Shdr::sh_offset)>(dynamic_at);
    sections[3].sh_size = static_cast<decltype(Shdr::sh_size)>(dynamic.size() * sizeof(Dyn));
    sections[3].sh_link = 1;
    std::size_t shoff = append(sections.data(), sections.size() * sizeof(Shdr));

    Ehdr ehdr{};
    std::memcpy(ehdr.e_ident, ELFMAG, SELFMAG);
    ehdr.e_ident[EI_CLASS] = class_;
    ehdr.e_ident[EI_DATA] = ELFDATA2LSB;
    ehdr.e_type = ET_DYN;
    ehdr.e_machine = EM_X86_64;
    ehdr.e_shoff = static_cast<decltype(Ehdr::e_shoff)>(shoff);
    ehdr.e_shentsize = sizeof(Shdr);
    ehdr.e_shnum = static_cast<std::uint16_t>(sections.size());
    std::memcpy(image.data(), &ehdr, sizeof ehdr);
    return image;
  }

 private:
  std::uint32_t add_string(const std::string& s) {
    auto at = static_cast<std::uint32_t>(strings_.size());
    strings_.insert(strings_.end(), s.begin(), s.end());
    strings_.push_back('\0');
    return at;
  }

  unsigned char class_;
  std::vector<char> strings_;
  std::vector<Sym> symbols_;
  std::uint32_t soname_ = 0;
};

using Elf64Builder = ElfBuilder<Elf64_Ehdr, Elf64_Shdr, Elf64_Sym, Elf64_Dyn>;
using Elf32Builder = ElfBuilder<Elf32_Ehdr, Elf32_Shdr, Elf32_Sym, Elf32_Dyn>;

TEST(ParseDynamic, ReadsSonameAndExportedInitFunctions) {
  Elf64Builder elf(ELFCLASS64);
  elf.soname("libfoo.so.1");
  elf.symbol("PyInit__b", 5, STB_GLOBAL);
  elf.symbol("PyInit_weak", 5, STB_WEAK);
  elf.symbol("PyInit_imported", SHN_UNDEF, STB_GLOBAL);  // undefined: used, not defined
  elf.symbol("PyInit_local", 5, STB_LOCAL);
  elf.symbol("PyInit_hidden", 5, STB_GLOBAL, STV_HIDDEN);
  elf.symbol("foo_value", 5, STB_GLOBAL);
  auto info = parse_dynamic(elf.build());
  ASSERT_TRUE(info.ok()) << format_error(info.error());
  EXPECT_EQ(info->type, ET_DYN);
  EXPECT_EQ(info->soname, "libfoo.so.1");
  EXPECT_EQ(info->init_symbols, (std::vector<std::string>{"PyInit__b", "PyInit_weak"}));
}

TEST(ParseDynamic, ReadsThirtyTwoBitObjects) {
  Elf32Builder elf(ELFCLASS32);
  elf.soname("libbar.so");
  elf.symbol("PyInit_bar", 5, STB_GLOBAL);
  auto info = parse_dynamic(elf.build());
  ASSERT_TRUE(info.ok()) << format_error(info.error());
  EXPECT_EQ(info->elf_class, ELFCLASS32);
  EXPECT_EQ(info->soname, "libbar.so");
  EXPECT_EQ(info->init_symbols, std::vector<std::string>{"PyInit_bar"});
}

TEST(ParseDynamic, NoSonameIsEmpty) {
  Elf64Builder elf(ELFCLASS64);
  auto info = parse_dynamic(elf.build());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->soname, "");
  EXPECT_TRUE(info->init_symbols.empty());
}

TEST(ParseDynamic, RejectsDamagedFiles) {
  Elf64Builder elf(ELFCLASS64);
  elf.soname("libfoo.so.1");
  std::string good = elf.build();
  EXPECT_FALSE(parse_dynamic("#!/bin/sh\n").ok());
  EXPECT_FALSE(parse_dynamic(good.substr(0, 40)).ok());  // cut inside the header
  // Cut inside the section headers.
  EXPECT_FALSE(parse_dynamic(good.substr(0, good.size() - 8)).ok());

  // DT_SONAME pointing past its string table.
  std::string bad = good;
  Elf64_Ehdr ehdr;
  std::memcpy(&ehdr, bad.data(), sizeof ehdr);
  Elf64_Shdr dynamic;
  std::size_t dynamic_header = ehdr.e_shoff + 3 * sizeof(Elf64_Shdr);
  std::memcpy(&dynamic, bad.data() + dynamic_header, sizeof dynamic);
  Elf64_Dyn soname;
  std::memcpy(&soname, bad.data() + dynamic.sh_offset, sizeof soname);
  soname.d_un.d_val = 100000;
  std::memcpy(bad.data() + dynamic.sh_offset, &soname, sizeof soname);
  auto info = parse_dynamic(bad);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().message, "DT_SONAME points outside its string table");

  // A section linking a string table that does not exist.
  bad = good;
  dynamic.sh_link = 42;
  std::memcpy(bad.data() + dynamic_header, &dynamic, sizeof dynamic);
  EXPECT_FALSE(parse_dynamic(bad).ok());
}

std::string read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(ParseDynamic, RealLibraryAndExtensionModule) {
  // What the linker really writes, beyond the crafted images above.
  const char* libc = "/lib/x86_64-linux-gnu/libc.so.6";
  const char* json = "/usr/lib/python3.11/lib-dynload/_json.cpython-311-x86_64-linux-gnu.so";
  std::string libc_image = read_file(libc);
  std::string json_image = read_file(json);
  if (libc_image.empty() || json_image.empty()) {
    GTEST_SKIP() << "needs " << libc << " and " << json << " (Debian x86-64, python3.11)";
  }
  auto info = parse_dynamic(libc_image);
  ASSERT_TRUE(info.ok()) << format_error(info.error());
  EXPECT_EQ(info->soname, "libc.so.6");
  EXPECT_TRUE(info->init_symbols.empty());
  info = parse_dynamic(json_image);
  ASSERT_TRUE(info.ok()) << format_error(info.error());
  EXPECT_EQ(info->type, ET_DYN);
  EXPECT_EQ(info->init_symbols, std::vector<std::string>{"PyInit__json"});
}

}  // namespace
}  // namespace pyshim
