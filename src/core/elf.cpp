#include "pyshim/elf.hpp"

#include <elf.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include <fmt/format.h>

namespace pyshim {
namespace {

template <class Ehdr, class Phdr>
Result<ElfInfo> parse_class(std::string_view head, ElfInfo info) {
  if (head.size() < sizeof(Ehdr)) {
    return Error{ErrorKind::kShimFailure, "truncated ELF header", {}, ""};
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
  // Compared without the sum, which a hostile e_phoff would wrap.
  if (phentsize < sizeof(Phdr) || phoff > head.size() || phnum * phentsize > head.size() - phoff) {
    return Error{ErrorKind::kShimFailure, "program headers lie beyond the bytes read", {}, ""};
  }
  for (std::uint64_t i = 0; i < phnum; ++i) {
    Phdr phdr;
    std::memcpy(&phdr, head.data() + phoff + i * phentsize, sizeof phdr);
    if (phdr.p_type == PT_INTERP) {
      info.has_interp = true;
      // The loader's path, NUL-terminated, usually in the first page.
      if (phdr.p_offset < head.size() && phdr.p_filesz <= head.size() - phdr.p_offset) {
        std::string_view path = head.substr(phdr.p_offset, phdr.p_filesz);
        info.interp = std::string(path.substr(0, path.find('\0')));
      }
    }
    if (phdr.p_type == PT_DYNAMIC) info.has_dynamic = true;
  }
  return info;
}

Error elf_error(std::string message) {
  return Error{ErrorKind::kShimFailure, std::move(message), {}, ""};
}

template <class T>
bool read_struct(std::string_view image, std::uint64_t offset, T& out) {
  if (offset > image.size() || image.size() - offset < sizeof(T)) return false;
  std::memcpy(&out, image.data() + offset, sizeof out);
  return true;
}

// The NUL-terminated string at index of a string table section, or nullopt
// when the table or the string does not lie inside the file.
template <class Shdr>
std::optional<std::string_view> string_at(std::string_view image, const Shdr& table,
                                          std::uint64_t index) {
  std::uint64_t offset = table.sh_offset;
  std::uint64_t size = table.sh_size;
  if (offset > image.size() || size > image.size() - offset || index >= size) return std::nullopt;
  std::string_view strings = image.substr(offset, size);
  std::size_t end = strings.find('\0', index);
  if (end == std::string_view::npos) return std::nullopt;
  return strings.substr(index, end - index);
}

// The entry points that every object built with a sanitizer calls and only
// its runtime defines.
bool is_sanitizer_init(std::string_view name) {
  return name == "__asan_init" || name == "__tsan_init" || name == "__msan_init" ||
         name == "__hwasan_init";
}

// A .gnu.version_r (needs) or .gnu.version_d (definitions) section: chains
// of entries by byte offset (vn_next, vna_next...), the same layout for
// both ELF classes. Bounded by the section's sh_info entry count and by
// each entry's count, so a looping chain ends.
template <class Shdr>
Status read_versions(std::string_view image, const Shdr& sh, const Shdr& strtab,
                     DynamicInfo& info) {
  auto name_at = [&](std::uint64_t index) -> Result<std::string> {
    auto name = string_at(image, strtab, index);
    if (!name) return elf_error("a symbol version name lies outside its string table");
    return std::string(*name);
  };
  constexpr std::uint64_t kMaxEntries = 4096;
  std::uint64_t offset = sh.sh_offset;
  std::uint64_t entries = std::min<std::uint64_t>(sh.sh_info, kMaxEntries);
  for (std::uint64_t i = 0; i < entries; ++i) {
    if (sh.sh_type == SHT_GNU_verneed) {
      Elf64_Verneed need;
      if (!read_struct(image, offset, need))
        return elf_error(".gnu.version_r lies beyond the file");
      auto file = name_at(need.vn_file);
      if (!file) return file.error();
      DynamicInfo::VersionNeed entry{*file, {}};
      std::uint64_t aux_offset = offset + need.vn_aux;
      for (std::uint64_t j = 0; j < std::min<std::uint64_t>(need.vn_cnt, kMaxEntries); ++j) {
        Elf64_Vernaux aux;
        if (!read_struct(image, aux_offset, aux)) {
          return elf_error(".gnu.version_r lies beyond the file");
        }
        auto version = name_at(aux.vna_name);
        if (!version) return version.error();
        entry.versions.push_back(*version);
        if (aux.vna_next == 0) break;
        aux_offset += aux.vna_next;
      }
      info.version_needs.push_back(std::move(entry));
      if (need.vn_next == 0) break;
      offset += need.vn_next;
    } else {
      Elf64_Verdef def;
      if (!read_struct(image, offset, def)) return elf_error(".gnu.version_d lies beyond the file");
      // The first auxiliary entry names the version; VER_FLG_BASE is the
      // file's own name (its SONAME), not a version.
      Elf64_Verdaux aux;
      if (def.vd_cnt > 0 && (def.vd_flags & VER_FLG_BASE) == 0) {
        if (!read_struct(image, offset + def.vd_aux, aux)) {
          return elf_error(".gnu.version_d lies beyond the file");
        }
        auto version = name_at(aux.vda_name);
        if (!version) return version.error();
        info.version_definitions.push_back(*version);
      }
      if (def.vd_next == 0) break;
      offset += def.vd_next;
    }
  }
  return Ok{};
}

template <class Ehdr, class Shdr, class Sym, class Dyn>
Result<DynamicInfo> parse_dynamic_class(std::string_view image, DynamicInfo info) {
  Ehdr ehdr;
  if (!read_struct(image, 0, ehdr)) return elf_error("truncated ELF header");
  info.type = ehdr.e_type;
  info.machine = ehdr.e_machine;
  std::uint64_t shoff = ehdr.e_shoff;
  std::uint64_t shentsize = ehdr.e_shentsize;
  if (shoff == 0) return info;
  if (shentsize < sizeof(Shdr)) return elf_error("section header entries are too small");
  std::uint64_t shnum = ehdr.e_shnum;
  if (shnum == 0) {
    // More than SHN_LORESERVE sections: the count is in section 0's sh_size.
    Shdr first;
    if (!read_struct(image, shoff, first)) return elf_error("section headers lie beyond the file");
    shnum = first.sh_size;
  }
  if (shoff > image.size() || shnum > (image.size() - shoff) / shentsize) {
    return elf_error("section headers lie beyond the file");
  }
  auto section = [&](std::uint64_t index, Shdr& out) {
    return index < shnum && read_struct(image, shoff + index * shentsize, out);
  };
  for (std::uint64_t i = 0; i < shnum; ++i) {
    Shdr sh;
    section(i, sh);
    if (sh.sh_type != SHT_DYNAMIC && sh.sh_type != SHT_DYNSYM && sh.sh_type != SHT_GNU_verneed &&
        sh.sh_type != SHT_GNU_verdef) {
      continue;
    }
    Shdr strtab;
    if (!section(sh.sh_link, strtab)) return elf_error("a section links a missing string table");
    std::uint64_t base = sh.sh_offset;
    if (sh.sh_type == SHT_GNU_verneed || sh.sh_type == SHT_GNU_verdef) {
      if (auto read = read_versions(image, sh, strtab, info); !read) return read.error();
      continue;
    }
    if (sh.sh_type == SHT_DYNAMIC) {
      for (std::uint64_t j = 0; j < sh.sh_size / sizeof(Dyn); ++j) {
        Dyn dyn;
        if (!read_struct(image, base + j * sizeof(Dyn), dyn)) {
          return elf_error(".dynamic lies beyond the file");
        }
        if (dyn.d_tag == DT_NULL) break;
        if (dyn.d_tag != DT_SONAME && dyn.d_tag != DT_NEEDED && dyn.d_tag != DT_RPATH &&
            dyn.d_tag != DT_RUNPATH) {
          continue;
        }
        auto text = string_at(image, strtab, dyn.d_un.d_val);
        if (!text) {
          const char* tag = dyn.d_tag == DT_SONAME   ? "DT_SONAME"
                            : dyn.d_tag == DT_NEEDED ? "DT_NEEDED"
                            : dyn.d_tag == DT_RPATH  ? "DT_RPATH"
                                                     : "DT_RUNPATH";
          return elf_error(fmt::format("{} points outside its string table", tag));
        }
        if (dyn.d_tag == DT_SONAME) info.soname = std::string(*text);
        if (dyn.d_tag == DT_NEEDED) info.needed.emplace_back(*text);
        if (dyn.d_tag == DT_RPATH) info.rpath = std::string(*text);
        if (dyn.d_tag == DT_RUNPATH) {
          info.runpath = std::string(*text);
          info.has_runpath = true;
        }
      }
      continue;
    }
    std::uint64_t entsize = sh.sh_entsize >= sizeof(Sym) ? sh.sh_entsize : sizeof(Sym);
    // Entry 0 is the reserved undefined symbol.
    for (std::uint64_t j = 1; j < sh.sh_size / entsize; ++j) {
      Sym sym;
      if (!read_struct(image, base + j * entsize, sym))
        return elf_error(".dynsym lies beyond the file");
      int bind = ELF64_ST_BIND(sym.st_info);
      if (sym.st_shndx == SHN_UNDEF) {
        if (bind != STB_GLOBAL) continue;  // a weak reference does not need the runtime
        auto name = string_at(image, strtab, sym.st_name);
        if (name && is_sanitizer_init(*name)) info.sanitizer_imports.emplace_back(*name);
        continue;
      }
      if (bind != STB_GLOBAL && bind != STB_WEAK && bind != STB_GNU_UNIQUE) continue;
      int visibility = ELF64_ST_VISIBILITY(sym.st_other);
      if (visibility == STV_HIDDEN || visibility == STV_INTERNAL) continue;
      auto name = string_at(image, strtab, sym.st_name);
      if (!name) return elf_error("a symbol name lies outside its string table");
      if (name->starts_with("PyInit_")) info.init_symbols.emplace_back(*name);
    }
  }
  return info;
}

}  // namespace

Result<DynamicInfo> parse_dynamic(std::string_view image) {
  if (image.size() < EI_NIDENT || std::memcmp(image.data(), ELFMAG, SELFMAG) != 0) {
    return elf_error("not an ELF file");
  }
  DynamicInfo info;
  info.elf_class = static_cast<unsigned char>(image[EI_CLASS]);
  if (static_cast<unsigned char>(image[EI_DATA]) != ELFDATA2LSB) {
    return elf_error("not a little-endian ELF file");
  }
  if (info.elf_class == ELFCLASS64) {
    return parse_dynamic_class<Elf64_Ehdr, Elf64_Shdr, Elf64_Sym, Elf64_Dyn>(image, info);
  }
  if (info.elf_class == ELFCLASS32) {
    return parse_dynamic_class<Elf32_Ehdr, Elf32_Shdr, Elf32_Sym, Elf32_Dyn>(image, info);
  }
  return elf_error("unknown ELF class");
}

std::vector<std::string> missing_versions(const DynamicInfo& user, std::string_view file,
                                          const std::vector<std::string>& definitions) {
  std::vector<std::string> missing;
  for (const auto& need : user.version_needs) {
    if (need.file != file) continue;
    for (const std::string& version : need.versions) {
      if (std::find(definitions.begin(), definitions.end(), version) == definitions.end() &&
          std::find(missing.begin(), missing.end(), version) == missing.end()) {
        missing.push_back(version);
      }
    }
  }
  return missing;
}

Result<ElfInfo> parse_elf(std::string_view head) {
  if (head.size() < EI_NIDENT || std::memcmp(head.data(), ELFMAG, SELFMAG) != 0) {
    return Error{ErrorKind::kShimFailure, "not an ELF file", {}, ""};
  }
  ElfInfo info;
  info.elf_class = static_cast<unsigned char>(head[EI_CLASS]);
  info.data = static_cast<unsigned char>(head[EI_DATA]);
  if (info.data != ELFDATA2LSB && info.data != ELFDATA2MSB) {
    return Error{ErrorKind::kShimFailure, "unknown ELF byte order", {}, ""};
  }
  if (info.elf_class == ELFCLASS64) return parse_class<Elf64_Ehdr, Elf64_Phdr>(head, info);
  if (info.elf_class == ELFCLASS32) return parse_class<Elf32_Ehdr, Elf32_Phdr>(head, info);
  return Error{ErrorKind::kShimFailure, "unknown ELF class", {}, ""};
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

std::optional<SectionRange> find_section(std::string_view image, std::string_view name) {
  // Host class and byte order only: the launcher images pyshim writes.
  Elf64_Ehdr ehdr;
  if (!read_struct(image, 0, ehdr) || std::memcmp(ehdr.e_ident, ELFMAG, SELFMAG) != 0 ||
      ehdr.e_ident[EI_CLASS] != ELFCLASS64 || ehdr.e_shentsize < sizeof(Elf64_Shdr)) {
    return std::nullopt;
  }
  Elf64_Shdr names;
  if (!read_struct(image, ehdr.e_shoff + std::uint64_t{ehdr.e_shstrndx} * ehdr.e_shentsize,
                   names)) {
    return std::nullopt;
  }
  for (std::uint64_t i = 0; i < ehdr.e_shnum; ++i) {
    Elf64_Shdr sh;
    if (!read_struct(image, ehdr.e_shoff + i * ehdr.e_shentsize, sh)) return std::nullopt;
    auto section_name = string_at(image, names, sh.sh_name);
    if (!section_name || *section_name != name) continue;
    if (sh.sh_type == SHT_NOBITS || sh.sh_offset > image.size() ||
        sh.sh_size > image.size() - sh.sh_offset) {
      return std::nullopt;
    }
    return SectionRange{sh.sh_offset, sh.sh_size};
  }
  return std::nullopt;
}

}  // namespace pyshim
