// Fuzzes the readers of files that `doctor --extensions` and `dynlib` take
// from a venv anyone may have written: the ELF header and dynamic-section
// reader and the loader-cache parser. Any input must give a value or an
// Error, never a read outside the bytes (ASan) or UB.
#include <cstddef>
#include <string_view>

#include "fuzz_check.hpp"
#include "pyshim/elf.hpp"
#include "pyshim/extensions.hpp"

extern "C" int LLVMFuzzerTestOneInput(const char* data, std::size_t size) {
  std::string_view bytes(data, size);
  (void)pyshim::parse_elf(bytes.substr(0, 4096));
  if (auto dynamic = pyshim::parse_dynamic(bytes)) {
    for (const std::string& name : dynamic->needed) {
      fuzz::check(name.find('\0') == std::string::npos, "a DT_NEEDED name holds a NUL", name);
    }
    fuzz::check(dynamic->has_runpath || dynamic->runpath.empty(), "a runpath without DT_RUNPATH");
  }
  for (const pyshim::CacheEntry& entry : pyshim::parse_loader_cache(bytes)) {
    fuzz::check(entry.name.size() < size && entry.path.size() < size,
                "a cache string longer than the cache", entry.name);
  }
  return 0;
}
