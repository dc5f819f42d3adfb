// A read-only mapping of a whole file, for the ELF readers of tool mode
// (dynlib, doctor --extensions).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pyshim {

// A read-only mapping of a whole file: the ELF reader touches only the
// pages it needs, which matters for libraries of hundreds of megabytes.
class MappedFile {
 public:
  // Opened without blocking: a FIFO planted under a library's name is not
  // waited on (it is then refused as not a regular file). Empty (view() of
  // size 0) when the file cannot be mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::string_view view() const { return {data_, size_}; }

 private:
  const char* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace pyshim
