#include "pyshim/plan.hpp"

#include "pyshim/launch_rules.hpp"

namespace pyshim {
namespace {

// The planner runs before libc is initialised (see PYSHIM_HOT): its string
// loops are the launch rules' own (launch_rules.hpp), inlined here.
using rules::length;
using rules::same;

PYSHIM_INLINE bool is_one_of(char c, std::string_view set) {
  return rules::has_char(set, c);
}

// The value of entry when it is "name=value".
PYSHIM_INLINE bool split_entry(const char* entry, std::string_view name, std::string_view& value) {
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (entry[i] != name.data()[i] || entry[i] == '\0') return false;
  }
  if (entry[name.size()] != '=') return false;
  const char* start = entry + name.size() + 1;
  value = std::string_view(start, length(start));
  return true;
}

PYSHIM_INLINE bool is_entry(const char* entry, std::string_view name) {
  std::string_view value;
  return split_entry(entry, name, value);
}

// The names as arrays of this file: the header's string_view variables sit in
// writable memory (.data.rel.ro) in a position-independent build, and
// reading one would fault in a page of it on the hot path.
constexpr char kPreloadName[] = "LD_PRELOAD";
constexpr char kLibraryPathName[] = "LD_LIBRARY_PATH";
constexpr char kOrigPreloadName[] = "PYSHIM_ORIG_LD_PRELOAD";
constexpr char kOrigLibraryPathName[] = "PYSHIM_ORIG_LD_LIBRARY_PATH";
constexpr char kStartupName[] = "PYSHIM_STARTUP";
constexpr char kTargetName[] = "PYSHIM_TARGET";
constexpr char kPreloadSeparatorChars[] = ": ";
constexpr char kLibraryPathSeparatorChars[] = ":;";

template <std::size_t N>
constexpr std::string_view name_of(const char (&name)[N]) {
  return {name, N - 1};
}
static_assert(name_of(kPreloadName) == kPreloadVar &&
              name_of(kLibraryPathName) == kLibraryPathVar &&
              name_of(kOrigPreloadName) == kOrigPreloadVar &&
              name_of(kOrigLibraryPathName) == kOrigLibraryPathVar &&
              name_of(kStartupName) == kStartupVar && name_of(kTargetName) == kTargetVar &&
              name_of(kPreloadSeparatorChars) == kPreloadSeparators &&
              name_of(kLibraryPathSeparatorChars) == kLibraryPathSeparators);

// Where the variables the plan reads live in the caller's environment,
// found in one pass (the environment can be long; the launcher is hot).
// The last entry of a name wins, as for the loader.
struct Slots {
  std::string_view preload, library_path, orig_preload, orig_library_path;  // null: unset
};

PYSHIM_HOT Slots find_slots(EnvView env) {
  Slots slots;
  for (const char* entry : env) {
    if (entry[0] == 'L') {
      split_entry(entry, name_of(kPreloadName), slots.preload) ||
          split_entry(entry, name_of(kLibraryPathName), slots.library_path);
    } else if (entry[0] == 'P') {
      split_entry(entry, name_of(kOrigPreloadName), slots.orig_preload) ||
          split_entry(entry, name_of(kOrigLibraryPathName), slots.orig_library_path);
    }
  }
  return slots;
}

// Appends to a fixed buffer; remembers an overflow instead of writing past it.
class Writer {
 public:
  PYSHIM_INLINE Writer(char* at, std::size_t capacity) : begin_(at), at_(at), end_(at + capacity) {}
  PYSHIM_HOT void put(std::string_view s) {
    if (static_cast<std::size_t>(end_ - at_) < s.size()) {
      overflow_ = true;
      return;
    }
    for (std::size_t i = 0; i < s.size(); ++i) at_[i] = s.data()[i];
    at_ += s.size();
  }
  PYSHIM_HOT void put(char c) {
    if (at_ == end_) {
      overflow_ = true;
      return;
    }
    *at_++ = c;
  }
  PYSHIM_INLINE const char* here() const { return at_; }
  PYSHIM_INLINE bool overflow() const { return overflow_; }
  PYSHIM_INLINE std::size_t used() const { return static_cast<std::size_t>(at_ - begin_); }

 private:
  char* begin_;
  char* at_;
  char* end_;
  bool overflow_ = false;
};

// The non-empty pieces of lists, in order, without exact duplicates.
class Pieces {
 public:
  PYSHIM_INLINE Pieces(std::string_view* at, std::size_t capacity) : at_(at), capacity_(capacity) {}
  // Splits list on any of separators ("" keeps it whole).
  PYSHIM_HOT void add(std::string_view list, std::string_view separators) {
    std::size_t start = 0;
    while (start < list.size()) {
      std::size_t end = start;
      while (end < list.size() && !is_one_of(list.data()[end], separators)) ++end;
      std::string_view piece(list.data() + start, end - start);
      start = end + 1;
      if (piece.empty()) continue;
      bool seen = false;
      for (std::size_t i = 0; i < size_ && !seen; ++i) seen = same(at_[i], piece);
      if (seen) continue;
      if (size_ == capacity_) {
        overflow_ = true;
        return;
      }
      at_[size_++] = piece;
    }
  }
  PYSHIM_HOT void join(Writer& out) const {
    for (std::size_t i = 0; i < size_; ++i) {
      if (i > 0) out.put(':');
      out.put(at_[i]);
    }
  }
  PYSHIM_INLINE bool overflow() const { return overflow_; }

 private:
  std::string_view* at_;
  std::size_t capacity_;
  std::size_t size_ = 0;
  bool overflow_ = false;
};

// The environment being built: the caller's entries, then the plan's.
class Env {
 public:
  PYSHIM_INLINE Env(const char** at, std::size_t capacity) : at_(at), capacity_(capacity) {}
  PYSHIM_HOT void assign(EnvView caller) {
    if (caller.size() > capacity_) {
      overflow_ = true;
      return;
    }
    for (std::size_t i = 0; i < caller.size(); ++i) at_[i] = caller[i];
    size_ = caller.size();
  }
  // Sets entry ("name=...") in the slot of name's first entry (keeping its
  // position), or at the end. Later entries of the same name are dropped:
  // the loader and os.environ take the last one, getenv() and the restore
  // library the first, so a duplicate would let the caller's value win over
  // the plan's.
  PYSHIM_HOT void set(std::string_view name, const char* entry) {
    bool placed = false;
    std::size_t out = 0;
    for (std::size_t i = 0; i < size_; ++i) {
      if (is_entry(at_[i], name)) {
        if (placed) continue;
        at_[i] = entry;
        placed = true;
      }
      at_[out++] = at_[i];
    }
    size_ = out;
    if (placed) return;
    if (size_ == capacity_) {
      overflow_ = true;
      return;
    }
    at_[size_++] = entry;
  }
  PYSHIM_HOT void terminate() {
    if (size_ == capacity_) {
      overflow_ = true;
      return;
    }
    at_[size_] = nullptr;
  }
  PYSHIM_INLINE std::size_t size() const { return size_; }
  PYSHIM_INLINE bool overflow() const { return overflow_; }

 private:
  const char** at_;
  std::size_t capacity_;
  std::size_t size_ = 0;
  bool overflow_ = false;
};

// Starts "name=" in out; finish_entry() ends it.
PYSHIM_HOT const char* start_entry(Writer& out, std::string_view name) {
  const char* entry = out.here();
  out.put(name);
  out.put('=');
  return entry;
}

PYSHIM_HOT void finish_entry(Writer& out) {
  out.put('\0');
}

PYSHIM_HOT void put_startup(Writer& out, const PlanConfig& config) {
  out.put(config.file);
  for (std::string_view dir : config.python_path) {
    out.put("\npath=");
    out.put(dir);
  }
  for (std::string_view hook : config.startup) {
    out.put("\nhook=");
    out.put(hook);
  }
}

PYSHIM_HOT std::size_t startup_size(const PlanConfig& config) {
  std::size_t n = config.file.size();
  for (std::string_view dir : config.python_path) n += 6 + dir.size();
  for (std::string_view hook : config.startup) n += 6 + hook.size();
  return n;
}

// The caller's original entry for var, as the bookkeeping variable records
// it: recorded by an earlier hop whose restore did not run, else the
// current value ("" when unset).
PYSHIM_HOT void put_original(Writer& out, std::string_view recorded, std::string_view var,
                             std::string_view current) {
  if (recorded.data() != nullptr) {
    out.put(recorded);
  } else if (current.data() != nullptr) {
    out.put(var);
    out.put('=');
    out.put(current);
  }
}

PYSHIM_HOT std::size_t original_size(std::string_view recorded, std::string_view var,
                                     std::string_view current) {
  if (recorded.data() != nullptr) return recorded.size();
  return current.data() != nullptr ? var.size() + 1 + current.size() : 0;
}

// The caller's value of name (null: unset). The last entry of a name wins,
// as in find_slots.
PYSHIM_HOT std::string_view caller_value(EnvView env, std::string_view name) {
  std::string_view value;
  for (const char* entry : env) split_entry(entry, name, value);
  return value;
}

// Whether list starts (at_start) or ends with part as whole ':'-separated
// pieces: "a" ends "x:a", not "x:ba".
PYSHIM_HOT bool has_end(std::string_view list, std::string_view part, bool at_start) {
  if (list.size() < part.size()) return false;
  std::size_t at = at_start ? 0 : list.size() - part.size();
  if (!same(std::string_view(list.data() + at, part.size()), part)) return false;
  return list.size() == part.size() || list.data()[at_start ? part.size() : at - 1] == ':';
}

// An [env] value given the caller's (README, "`[env]` that adds to the
// caller's value"): a prepend or append that is already in place adds
// nothing, so a launch from inside a launch
// (the caller's value is then this plan's) gives the same value, while a
// caller that changed the variable still gets the part added.
PYSHIM_HOT void put_env_value(Writer& out, EnvList::Entry var, std::string_view caller) {
  if (var.mode == EnvMode::kSet || caller.empty()) {
    out.put(var.value);
    return;
  }
  bool prepend = var.mode == EnvMode::kPrepend;
  if (has_end(caller, var.value, prepend)) {
    out.put(caller);
    return;
  }
  out.put(prepend ? var.value : caller);
  out.put(':');
  out.put(prepend ? caller : var.value);
}

PYSHIM_HOT std::size_t env_value_size(EnvList::Entry var, EnvView caller) {
  if (var.mode == EnvMode::kSet) return var.value.size();
  return var.value.size() + 1 + caller_value(caller, var.name).size();
}

}  // namespace

std::string_view env_get(EnvView env, std::string_view name) {
  for (const char* entry : env) {
    std::string_view value;
    if (split_entry(entry, name, value)) return value;
  }
  return {};
}

void append_unique(std::vector<std::string_view>& out, std::string_view list,
                   std::string_view separators) {
  while (!list.empty()) {
    std::size_t end = list.find_first_of(separators);
    std::string_view piece = list.substr(0, end);
    list.remove_prefix(end == std::string_view::npos ? list.size() : end + 1);
    if (piece.empty()) continue;
    bool seen = false;
    for (std::string_view existing : out) {
      if (existing == piece) {
        seen = true;
        break;
      }
    }
    if (!seen) out.push_back(piece);
  }
}

PlanConfig plan_config(const Config& config) {
  PlanConfig view;
  view.file = config.file;
  view.interpreter = config.interpreter.value;
  view.library_path_position = config.library_path_position;
  view.preload = config.preload;
  view.library_path = config.library_path;
  view.startup = config.startup;
  view.python_path = config.python_path;
  view.env = config.env;
  return view;
}

std::string startup_value(const Config& config) {
  if (config.startup.empty()) return {};
  PlanConfig view = plan_config(config);
  std::string value(startup_size(view), '\0');
  Writer out(value.data(), value.size());
  put_startup(out, view);
  return value;
}

PlanSize plan_size(const PlanConfig& config, EnvView caller, std::size_t restore_library_size,
                   std::size_t target_size) {
  Slots slots = find_slots(caller);
  PlanSize size;
  // The caller's entries, LD_PRELOAD, LD_LIBRARY_PATH, [env], the startup
  // variable, three bookkeeping variables, the terminator.
  size.entries = caller.size() + 2 + config.env.size() + 1 + 3 + 1;

  // Each list: its pieces joined by ':' take at most the bytes of the
  // pieces plus one each; a caller's list joins to no more than it was.
  std::size_t bytes = name_of(kPreloadName).size() + 2 + restore_library_size + 1;
  for (std::string_view lib : config.preload) bytes += lib.size() + 1;
  bytes += slots.preload.size() + 1;
  if (!config.library_path.empty()) {
    bytes += name_of(kLibraryPathName).size() + 2 + slots.library_path.size() + 1;
    for (std::string_view dir : config.library_path) bytes += dir.size() + 1;
  }
  for (EnvList::Entry var : config.env) bytes += var.name.size() + env_value_size(var, caller) + 2;
  if (!config.startup.empty()) bytes += name_of(kStartupName).size() + 2 + startup_size(config);
  bytes += name_of(kOrigPreloadName).size() + 2 +
           original_size(slots.orig_preload, name_of(kPreloadName), slots.preload);
  bytes += name_of(kOrigLibraryPathName).size() + 2 +
           original_size(slots.orig_library_path, name_of(kLibraryPathName), slots.library_path);
  bytes += name_of(kTargetName).size() + 2 + target_size;
  size.bytes = bytes;

  // A list of n bytes has at most n / 2 + 1 non-empty pieces.
  std::size_t preload_pieces = config.preload.size() + 1 + slots.preload.size() / 2 + 1;
  std::size_t dir_pieces = config.library_path.size() + slots.library_path.size() / 2 + 1;
  size.pieces = preload_pieces > dir_pieces ? preload_pieces : dir_pieces;
  return size;
}

std::size_t plan_env(const PlanConfig& config, EnvView caller, std::string_view restore_library,
                     std::string_view target, PlanBuffers& buffers) {
  buffers.bytes_used = 0;
  Env env(buffers.env, buffers.env_capacity);
  env.assign(caller);
  Writer out(buffers.bytes, buffers.bytes_capacity);
  Slots slots = find_slots(caller);

  // LD_PRELOAD: configured, then the restore library, then whatever the
  // caller has (which, when an earlier hop's restore did not run, is that
  // hop's result: deduplication keeps it from growing).
  {
    Pieces preload(buffers.pieces, buffers.pieces_capacity);
    for (std::string_view lib : config.preload) preload.add(lib, {});
    preload.add(restore_library, {});
    preload.add(slots.preload, name_of(kPreloadSeparatorChars));
    const char* entry = start_entry(out, name_of(kPreloadName));
    preload.join(out);
    finish_entry(out);
    if (preload.overflow()) return 0;
    env.set(name_of(kPreloadName), entry);
  }

  if (!config.library_path.empty()) {
    Pieces dirs(buffers.pieces, buffers.pieces_capacity);
    if (config.library_path_position == Position::kAppend) {
      dirs.add(slots.library_path, name_of(kLibraryPathSeparatorChars));
    }
    for (std::string_view dir : config.library_path) dirs.add(dir, {});
    dirs.add(slots.library_path, name_of(kLibraryPathSeparatorChars));
    const char* entry = start_entry(out, name_of(kLibraryPathName));
    dirs.join(out);
    finish_entry(out);
    if (dirs.overflow()) return 0;
    env.set(name_of(kLibraryPathName), entry);
  }

  for (EnvList::Entry var : config.env) {
    const char* entry = start_entry(out, var.name);
    put_env_value(out, var,
                  var.mode == EnvMode::kSet ? std::string_view() : caller_value(caller, var.name));
    finish_entry(out);
    env.set(var.name, entry);
  }
  if (!config.startup.empty()) {
    const char* entry = start_entry(out, name_of(kStartupName));
    put_startup(out, config);
    finish_entry(out);
    env.set(name_of(kStartupName), entry);
  }

  // The caller's environment is only read, never written, so the originals
  // are what the caller gave whatever was set above.
  const char* entry = start_entry(out, name_of(kOrigPreloadName));
  put_original(out, slots.orig_preload, name_of(kPreloadName), slots.preload);
  finish_entry(out);
  env.set(name_of(kOrigPreloadName), entry);
  entry = start_entry(out, name_of(kOrigLibraryPathName));
  put_original(out, slots.orig_library_path, name_of(kLibraryPathName), slots.library_path);
  finish_entry(out);
  env.set(name_of(kOrigLibraryPathName), entry);
  entry = start_entry(out, name_of(kTargetName));
  out.put(target);
  finish_entry(out);
  env.set(name_of(kTargetName), entry);

  env.terminate();
  if (out.overflow() || env.overflow()) return 0;
  buffers.bytes_used = out.used();
  return env.size();
}

Plan make_plan(const PlanInputs& in) {
  PlanConfig config = plan_config(*in.config);
  PlanSize size = plan_size(config, in.env, in.restore_library.size(), in.invoked_path.size());
  Plan plan;
  plan.interpreter = config.interpreter;
  plan.argv0 = std::string(in.invoked_path);
  std::string& bytes = plan.storage.emplace_back(size.bytes, '\0');
  plan.env.resize(size.entries);
  std::vector<std::string_view> pieces(size.pieces);
  PlanBuffers buffers{plan.env.data(), plan.env.size(), bytes.data(),
                      bytes.size(),    pieces.data(),   pieces.size()};
  std::size_t n = plan_env(config, in.env, in.restore_library, in.invoked_path, buffers);
  // plan_size() is an upper bound, so this never fails.
  plan.env.resize(n + 1);
  return plan;
}

}  // namespace pyshim
