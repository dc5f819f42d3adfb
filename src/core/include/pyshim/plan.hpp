// The launch plan: a pure function from (config, caller environment, invoked
// path, restore library) to what execve() gets. No I/O happens here.
//
// One planner serves every caller: plan_env() writes into buffers its caller
// provides (sized by plan_size()), so the launcher's hot path can run it on
// its stack before the C library is even initialised; make_plan() is the
// allocating wrapper that `pyshim show`, `doctor` and the general launch path
// use. The decisions are therefore the same on every path by construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pyshim/config.hpp"

// Code the launcher runs from its ELF entry point, before the C library is
// initialised (src/launcher/entry.cpp): it lives in its own section, calls
// nothing outside that section (no libc: the string functions are IFUNCs not
// yet resolved; no heap), and uses no thread-local storage (errno, the stack
// protector's canary). tests/integration/test_hot_path.py checks the built
// launcher for all three.
#define PYSHIM_HOT __attribute__((section(".pyshim_hot")))
// For the small inline helpers the hot path uses: inlined into it at any
// optimisation level for size, rather than emitted out of line in .text.
#define PYSHIM_INLINE inline __attribute__((always_inline))

namespace pyshim {

// Bookkeeping: the caller's LD_PRELOAD / LD_LIBRARY_PATH, recorded so the
// restore library can put them back. The value is the complete original entry
// ("LD_PRELOAD=..." when it was set, possibly empty after '='), or "" when it
// was unset, so the restore library can reuse the string in place, with no heap.
inline constexpr std::string_view kOrigPreloadVar = "PYSHIM_ORIG_LD_PRELOAD";
inline constexpr std::string_view kOrigLibraryPathVar = "PYSHIM_ORIG_LD_LIBRARY_PATH";
inline constexpr std::string_view kPreloadVar = "LD_PRELOAD";
inline constexpr std::string_view kLibraryPathVar = "LD_LIBRARY_PATH";

// Startup hooks for the interpreter: "<config file>\npath=<dir>\n...hook=<mod:fn>\n...".
// Set only when the config has hooks. The restore library removes it from
// environ before main(), so no child inherits it; the hook module in
// site-packages reads it from /proc/self/environ (the environment as exec'd).
inline constexpr std::string_view kStartupVar = "PYSHIM_STARTUP";

// The value of kStartupVar for a config ("" when it has no hooks).
std::string startup_value(const Config& config);

// The argv[0] the launcher gives the interpreter: the restore library
// restores only in a process started with it (or named like an interpreter,
// as one a #!/bin/sh wrapper execs), and passes the environment on in any
// other (valgrind.bin under --trace-children=yes, /bin/sh running such a
// wrapper). Set by every launch (replaced when nested), removed by the
// restore.
inline constexpr std::string_view kTargetVar = "PYSHIM_TARGET";

// Separators the dynamic loader splits these variables on.
inline constexpr std::string_view kPreloadSeparators = ": ";
inline constexpr std::string_view kLibraryPathSeparators = ":;";

using EnvView = std::span<const char* const>;  // "NAME=value" entries, no terminator

// The value of NAME in env, or nullptr-data view when unset (set-but-empty
// gives a non-null empty view).
PYSHIM_HOT std::string_view env_get(EnvView env, std::string_view name);
inline bool env_has(EnvView env, std::string_view name) {
  return env_get(env, name).data() != nullptr;
}
// NAME of a "NAME=value" entry (all of it when it has no '=').
inline std::string_view env_name(std::string_view entry) {
  return entry.substr(0, entry.find('='));
}

// Appends the non-empty pieces of list (split on any of separators) to out,
// skipping exact duplicates of what out already holds.
void append_unique(std::vector<std::string_view>& out, std::string_view list,
                   std::string_view separators);

// Reads a u32 in host byte order from unaligned bytes (the stamp's packing).
PYSHIM_INLINE std::uint32_t load_u32(const char* p) {
  std::uint32_t v;
  __builtin_memcpy(&v, p, sizeof v);  // a single load: never a call
  return v;
}

// The stamp's packed string at p (u32 length, bytes, NUL) as a view, and
// where the field after it starts.
PYSHIM_INLINE std::string_view packed_string(const char* p) {
  return {p + 4, load_u32(p)};
}
PYSHIM_INLINE const char* after_packed_string(const char* p) {
  return p + 4 + load_u32(p) + 1;
}
// A packed origin: u32 line, u32 column.
PYSHIM_INLINE Origin packed_origin(const char* p) {
  return {load_u32(p), load_u32(p + 4)};
}
constexpr std::size_t kPackedOriginSize = 8;
constexpr std::size_t kPackedModeSize = 4;

// One config list, as a Config holds it (objects: Setting, EnvSetting) or
// as a launcher's stamp packs it in its image (stamp.hpp): the planner reads
// either in place, without copying. Form says what one item is in each.
template <class Form>
class ListView {
 public:
  using Item = typename Form::Item;
  using Entry = typename Form::Entry;
  ListView() = default;
  ListView(const std::vector<Item>& items)  // NOLINT(google-explicit-constructor)
      : items_(items.data()), size_(items.size()) {}
  // n packed items, laid out as Form says.
  static ListView packed(const char* items, std::size_t n) {
    ListView list;
    list.packed_ = items;
    list.size_ = n;
    return list;
  }
  PYSHIM_INLINE std::size_t size() const { return size_; }
  PYSHIM_INLINE bool empty() const { return size_ == 0; }

  class Iterator {
   public:
    PYSHIM_INLINE Iterator(const Item* item, const char* packed, std::size_t index)
        : item_(item), packed_(packed), index_(index) {}
    PYSHIM_INLINE Entry operator*() const {
      return item_ != nullptr ? Form::entry(*item_) : Form::packed_entry(packed_);
    }
    PYSHIM_INLINE Origin origin() const {
      return item_ != nullptr ? item_->origin : Form::packed_origin_of(packed_);
    }
    PYSHIM_INLINE Iterator& operator++() {
      ++index_;
      if (item_ != nullptr) {
        ++item_;
      } else {
        packed_ = Form::after(packed_);
      }
      return *this;
    }
    PYSHIM_INLINE bool operator!=(const Iterator& other) const { return index_ != other.index_; }

   private:
    const Item* item_;
    const char* packed_;
    std::size_t index_;
  };
  PYSHIM_INLINE Iterator begin() const { return {items_, packed_, 0}; }
  PYSHIM_INLINE Iterator end() const { return {nullptr, nullptr, size_}; }

 private:
  const Item* items_ = nullptr;
  const char* packed_ = nullptr;
  std::size_t size_ = 0;
};

// The values of a list key (preload, library_path, ...). Packed item: u32
// length, bytes, NUL, u32 line, u32 column.
struct ValueForm {
  using Item = Setting;
  using Entry = std::string_view;
  PYSHIM_INLINE static Entry entry(const Setting& setting) {
    return {setting.value.data(), setting.value.size()};
  }
  PYSHIM_INLINE static Entry packed_entry(const char* p) { return packed_string(p); }
  PYSHIM_INLINE static Origin packed_origin_of(const char* p) {
    return packed_origin(after_packed_string(p));
  }
  PYSHIM_INLINE static const char* after(const char* p) {
    return after_packed_string(p) + kPackedOriginSize;
  }
};
using ValueList = ListView<ValueForm>;

// [env]: NAME = value pairs. Packed item: u32 length, name, NUL, u32
// length, value, NUL, u32 mode (EnvMode, checked by the stamp reader), u32
// line, u32 column.
struct EnvEntry {
  std::string_view name;
  std::string_view value;
  EnvMode mode = EnvMode::kSet;
};
struct EnvForm {
  using Item = EnvSetting;
  using Entry = EnvEntry;
  PYSHIM_INLINE static Entry entry(const EnvSetting& var) {
    return {{var.name.data(), var.name.size()}, {var.value.data(), var.value.size()}, var.mode};
  }
  PYSHIM_INLINE static Entry packed_entry(const char* p) {
    const char* value = after_packed_string(p);
    return {packed_string(p), packed_string(value),
            static_cast<EnvMode>(load_u32(after_packed_string(value)))};
  }
  PYSHIM_INLINE static Origin packed_origin_of(const char* p) {
    return packed_origin(after_packed_string(after_packed_string(p)) + kPackedModeSize);
  }
  PYSHIM_INLINE static const char* after(const char* p) {
    return after_packed_string(after_packed_string(p)) + kPackedModeSize + kPackedOriginSize;
  }
};
using EnvList = ListView<EnvForm>;

// What the planner reads of a config: a view of a parsed Config
// (plan_config) or of a launcher's stamp (StampView in stamp.hpp).
struct PlanConfig {
  std::string_view file;  // the pyshim.toml (named in the startup variable)
  std::string_view interpreter;
  Position library_path_position = Position::kPrepend;
  ValueList preload;
  ValueList library_path;
  ValueList startup;
  ValueList python_path;
  EnvList env;
};

PlanConfig plan_config(const Config& config);

// Upper bounds of what plan_env() writes, so its buffers can be sized first.
struct PlanSize {
  std::size_t entries = 0;  // env slots, the terminating nullptr included
  std::size_t bytes = 0;    // the entries the plan writes, NULs included
  std::size_t pieces = 0;   // scratch: list pieces while they are deduplicated
};

PYSHIM_HOT PlanSize plan_size(const PlanConfig& config, EnvView caller,
                              std::size_t restore_library_size, std::size_t target_size);

struct PlanBuffers {
  const char** env = nullptr;  // receives the environment for execve
  std::size_t env_capacity = 0;
  char* bytes = nullptr;  // receives the entries the plan writes
  std::size_t bytes_capacity = 0;
  std::string_view* pieces = nullptr;  // scratch
  std::size_t pieces_capacity = 0;
  std::size_t bytes_used = 0;  // out: the entries written are bytes[0, bytes_used)
};

// The environment for execve: the caller's entries with the plan's set,
// nullptr-terminated, in buffers.env. Returns the number of entries (the
// terminator not counted), or 0 when a buffer is smaller than plan_size()
// said it must be (a plan always sets at least three variables). target:
// the interpreter's argv[0] (kTargetVar).
PYSHIM_HOT std::size_t plan_env(const PlanConfig& config, EnvView caller,
                                std::string_view restore_library, std::string_view target,
                                PlanBuffers& buffers);

struct PlanInputs {
  const Config* config = nullptr;
  EnvView env;                    // the caller's environment
  std::string_view invoked_path;  // absolute, symlinks not resolved
  std::string_view restore_library;
};

struct Plan {
  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  Plan(Plan&&) = default;
  Plan& operator=(Plan&&) = default;

  std::string interpreter;
  std::string argv0;
  std::vector<const char*> env;     // nullptr-terminated, for execve
  std::deque<std::string> storage;  // the entries the plan wrote (stable addresses)
};

// plan_env() into buffers it allocates.
Plan make_plan(const PlanInputs& inputs);

}  // namespace pyshim
