#include "pyshim/extensions.hpp"

#include <elf.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "pyshim/path.hpp"

namespace pyshim {
namespace {

// glibc's sysdeps/generic/dl-cache.h.
constexpr std::string_view kCacheMagic = "glibc-ld.so.cache1.1";
constexpr std::size_t kCacheHeaderSize = 48;  // magic, version, nlibs, len_strings, flags, ...
constexpr std::size_t kCacheEntrySize = 24;   // flags, key, value, osversion, hwcap
constexpr std::int32_t kFlagElfLibc6 = 0x0003;
constexpr std::int32_t kFlagTypeMask = 0x00ff;
constexpr std::int32_t kFlagRequiredMask = 0xff00;
constexpr std::int32_t kFlagX8664Lib64 = 0x0300;
constexpr std::int32_t kFlagAarch64Lib64 = 0x0a00;

std::uint32_t u32_at(std::string_view bytes, std::size_t offset) {
  std::uint32_t v;
  std::memcpy(&v, bytes.data() + offset, sizeof v);
  return v;
}

std::optional<std::string_view> c_string_at(std::string_view bytes, std::uint32_t offset) {
  if (offset >= bytes.size()) return std::nullopt;
  std::size_t end = bytes.find('\0', offset);
  if (end == std::string_view::npos) return std::nullopt;
  return bytes.substr(offset, end - offset);
}

// Every folder a DT_RPATH/DT_RUNPATH string names, with $ORIGIN, $LIB and
// $PLATFORM expanded. $LIB has no single value across distributions, so
// both are tried: a false alarm is worse than a miss here.
std::vector<std::string> expand_search_path(std::string_view list, const LinkedObject& object,
                                            const ElfInfo& interpreter) {
  std::vector<std::string> out;
  std::string platform = interpreter.machine == EM_AARCH64 ? "aarch64" : "x86_64";
  std::string multiarch = platform + "-linux-gnu";
  std::size_t start = 0;
  while (start <= list.size()) {
    std::size_t end = list.find(':', start);
    if (end == std::string_view::npos) end = list.size();
    std::string entry(list.substr(start, end - start));
    start = end + 1;
    if (entry.empty()) continue;  // the current folder: nothing to say about it
    std::vector<std::string> forms = {entry};
    auto replace_all = [](std::string s, std::string_view from, std::string_view to) {
      for (std::size_t at = s.find(from); at != std::string::npos;
           at = s.find(from, at + to.size())) {
        s.replace(at, from.size(), to);
      }
      return s;
    };
    std::vector<std::string> expanded;
    for (std::string form : forms) {
      for (std::string_view token : {"${ORIGIN}", "$ORIGIN"}) {
        form = replace_all(form, token, object.real_dir);
      }
      for (std::string_view token : {"${PLATFORM}", "$PLATFORM"}) {
        form = replace_all(form, token, platform);
      }
      if (form.find("$LIB") != std::string::npos || form.find("${LIB}") != std::string::npos) {
        for (std::string lib :
             {std::string("lib/") + multiarch, std::string("lib64"), std::string("lib")}) {
          expanded.push_back(replace_all(replace_all(form, "${LIB}", lib), "$LIB", lib));
        }
      } else {
        expanded.push_back(form);
      }
    }
    for (std::string& dir : expanded) {
      // A folder that still holds a '$' names a token the loader does not
      // expand either: it refuses the entry.
      if (dir.find('$') == std::string::npos) out.push_back(std::move(dir));
    }
  }
  return out;
}

std::optional<std::string> find_in(const std::vector<std::string>& dirs, const std::string& name,
                                   const LoaderFacts& loader) {
  for (const std::string& dir : dirs) {
    std::string candidate = dir.ends_with('/') ? dir + name : dir + "/" + name;
    if (loader.has_file(candidate)) return candidate;
  }
  return std::nullopt;
}

bool fits(const DynamicInfo& object, const ElfInfo& interpreter) {
  return object.elf_class == interpreter.elf_class && object.machine == interpreter.machine;
}

ElfInfo elf_of(const DynamicInfo& object) {
  ElfInfo info;
  info.elf_class = object.elf_class;
  info.data = ELFDATA2LSB;
  info.machine = object.machine;
  return info;
}

// The index of the configured preload that is this runtime, or -1.
int preload_index(const std::vector<std::string>& preloads, const SanitizerRuntime& runtime) {
  for (std::size_t i = 0; i < preloads.size(); ++i) {
    std::string_view name = basename(preloads[i]);
    if (name.starts_with(runtime.library_prefix) ||
        name.find(runtime.clang_library_part) != std::string::npos) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

// What makes a layer's copy of `name` visible: --layer for a venv whose
// dynlib folder links it, `pyshim dynlib` first when only its
// site-packages holds it.
std::string layer_fix(const ExtensionInputs& inputs, const std::string& name) {
  for (const LayerCandidate& layer : inputs.candidates) {
    for (const LayerLibrary& library : layer.libraries) {
      if (library.name != name) continue;
      std::string sync = library.in_dynlib ? "" : fmt::format("pyshim dynlib {}", layer.venv);
      if (layer.on_library_path) {
        return fmt::format("{} holds it ({}) but its dynlib folder does not link it: {}",
                           layer.venv, library.path, sync);
      }
      return fmt::format("{} holds it ({}): {}{}pyshim install {} --layer {}", layer.venv,
                         library.path, sync, sync.empty() ? "" : ", then ", inputs.venv,
                         layer.venv);
    }
  }
  return "";
}

}  // namespace

std::vector<CacheEntry> parse_loader_cache(std::string_view bytes) {
  std::vector<CacheEntry> out;
  std::size_t at = bytes.find(kCacheMagic);
  if (at == std::string_view::npos) return out;
  std::string_view cache = bytes.substr(at);  // string offsets count from here
  if (cache.size() < kCacheHeaderSize) return out;
  std::uint32_t count = u32_at(cache, kCacheMagic.size());
  if (count > (cache.size() - kCacheHeaderSize) / kCacheEntrySize) return out;
  out.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    std::size_t entry = kCacheHeaderSize + std::size_t{i} * kCacheEntrySize;
    std::int32_t flags;
    std::memcpy(&flags, cache.data() + entry, sizeof flags);
    auto name = c_string_at(cache, u32_at(cache, entry + 4));
    auto path = c_string_at(cache, u32_at(cache, entry + 8));
    if (!name || !path) continue;
    out.push_back({std::string(*name), std::string(*path), flags});
  }
  return out;
}

bool cache_entry_fits(const CacheEntry& entry, const ElfInfo& interpreter) {
  if ((entry.flags & kFlagTypeMask) != kFlagElfLibc6) return false;
  std::int32_t required = entry.flags & kFlagRequiredMask;
  if (interpreter.elf_class == ELFCLASS64 && interpreter.machine == EM_X86_64) {
    return required == kFlagX8664Lib64;
  }
  if (interpreter.elf_class == ELFCLASS64 && interpreter.machine == EM_AARCH64) {
    return required == kFlagAarch64Lib64;
  }
  if (interpreter.elf_class == ELFCLASS32 && interpreter.machine == EM_386) return required == 0;
  return true;  // a machine this table does not know: do not claim a library is missing
}

std::vector<std::string> default_library_dirs(const ElfInfo& interpreter) {
  if (interpreter.machine == EM_AARCH64) {
    return {"/lib/aarch64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/lib64",
            "/usr/lib64",
            "/lib",
            "/usr/lib"};
  }
  if (interpreter.machine == EM_386) {
    return {"/lib/i386-linux-gnu", "/usr/lib/i386-linux-gnu", "/lib", "/usr/lib"};
  }
  return {"/lib/x86_64-linux-gnu",
          "/usr/lib/x86_64-linux-gnu",
          "/lib64",
          "/usr/lib64",
          "/lib",
          "/usr/lib"};
}

std::optional<std::string> resolve_needed(const LinkedObject& object, const std::string& name,
                                          const LoaderFacts& loader) {
  if (name.find('/') != std::string::npos) {
    // A path: relative ones are taken from the process's working folder,
    // which only run time knows.
    if (name.front() != '/' || loader.has_file(name)) return name;
    return std::nullopt;
  }
  if (std::find(loader.loaded.begin(), loader.loaded.end(), name) != loader.loaded.end()) {
    return name + " (already loaded)";
  }
  const DynamicInfo& dynamic = object.dynamic;
  if (!dynamic.has_runpath && !dynamic.rpath.empty()) {
    if (auto found =
            find_in(expand_search_path(dynamic.rpath, object, loader.interpreter), name, loader)) {
      return found;
    }
  }
  if (auto found = find_in(loader.library_path, name, loader)) return found;
  if (dynamic.has_runpath) {
    if (auto found = find_in(expand_search_path(dynamic.runpath, object, loader.interpreter), name,
                             loader)) {
      return found;
    }
  }
  for (const std::string& path : loader.cache) {
    if (basename(path) == name) return path;
  }
  return find_in(loader.default_dirs, name, loader);
}

std::optional<SanitizerRuntime> sanitizer_runtime(std::string_view import) {
  if (import == "__asan_init") return SanitizerRuntime{"asan", "libasan.so", "libclang_rt.asan"};
  if (import == "__tsan_init") return SanitizerRuntime{"tsan", "libtsan.so", "libclang_rt.tsan"};
  if (import == "__msan_init") return SanitizerRuntime{"msan", "libmsan.so", "libclang_rt.msan"};
  if (import == "__hwasan_init") {
    return SanitizerRuntime{"hwasan", "libhwasan.so", "libclang_rt.hwasan"};
  }
  return std::nullopt;
}

std::vector<ExtensionFinding> check_extensions(const ExtensionInputs& inputs) {
  std::vector<ExtensionFinding> out;
  const LoaderFacts& loader = inputs.loader;
  // Libraries of the same site-packages by SONAME: a package may load one
  // by path (ctypes) before the extension that names it, and the loader
  // then finds it already loaded. Not flagged: a false alarm costs trust.
  std::vector<std::string> site_sonames;
  for (const LinkedObject& object : inputs.objects) {
    if (!object.dynamic.soname.empty()) site_sonames.push_back(object.dynamic.soname);
  }
  for (const LinkedObject& object : inputs.objects) {
    const DynamicInfo& dynamic = object.dynamic;
    if (!fits(dynamic, loader.interpreter)) {
      out.push_back({ExtensionFinding::Kind::kForeign, object.label,
                     fmt::format("is {}, the interpreter is {}: the loader refuses it",
                                 describe(elf_of(dynamic)), describe(loader.interpreter)),
                     "reinstall the package that ships it for this interpreter's platform"});
      continue;
    }
    for (const std::string& import : dynamic.sanitizer_imports) {
      auto runtime = sanitizer_runtime(import);
      if (!runtime) continue;
      int at = preload_index(inputs.preloads, *runtime);
      if (at == 0 || (at > 0 && runtime->preset != "asan")) continue;
      if (at < 0) {
        out.push_back(
            {ExtensionFinding::Kind::kRuntime, object.label,
             fmt::format("was built with -fsanitize={} ({} is undefined) and the {} "
                         "runtime is not preloaded: every process that imports it dies",
                         runtime->preset == "asan" ? "address" : runtime->preset, import,
                         runtime->preset),
             fmt::format("pyshim install {} --preload {}", inputs.venv, runtime->preset)});
      } else {
        out.push_back(
            {ExtensionFinding::Kind::kRuntime, object.label,
             fmt::format("was built with -fsanitize=address and the ASan runtime is "
                         "preload {} of {}: it must come first",
                         at + 1, inputs.preloads.size()),
             fmt::format("put {} first: pyshim install {} --reset --preload asan "
                         "(then the other preloads)",
                         basename(inputs.preloads[static_cast<std::size_t>(at)]), inputs.venv)});
      }
    }
    for (const std::string& name : dynamic.needed) {
      if (resolve_needed(object, name, loader)) continue;
      if (std::find(site_sonames.begin(), site_sonames.end(), name) != site_sonames.end()) {
        continue;
      }
      std::string fix = layer_fix(inputs, name);
      if (fix.empty()) {
        fix = fmt::format(
            "add the folder that holds it: pyshim install {} --library-path DIR (or --layer "
            "VENV for a venv below this one)",
            inputs.venv);
      }
      out.push_back({ExtensionFinding::Kind::kLibrary, object.label,
                     fmt::format("needs {}, which the loader would not find", name), fix});
    }
  }
  return out;
}

}  // namespace pyshim
