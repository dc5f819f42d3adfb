#include "pyshim/plan.hpp"

#include <cstring>

namespace pyshim {
namespace {

bool is_entry(const char* entry, std::string_view name) {
  return std::strncmp(entry, name.data(), name.size()) == 0 && entry[name.size()] == '=';
}

// Sets NAME=value in the slot of NAME's first entry (keeping its position),
// or at the end. Later entries of the same name are dropped: the loader and
// os.environ take the last one, getenv() and the restore library the first,
// so a duplicate would let the caller's value win over the plan's.
void set_entry(Plan& plan, std::string_view name, std::string_view value) {
  std::string& entry = plan.storage.emplace_back();
  entry.reserve(name.size() + 1 + value.size());
  entry.append(name).append(1, '=').append(value);
  bool placed = false;
  std::size_t out = 0;
  for (std::size_t i = 0; i < plan.env.size(); ++i) {
    if (is_entry(plan.env[i], name)) {
      if (placed) continue;
      plan.env[i] = entry.c_str();
      placed = true;
    }
    plan.env[out++] = plan.env[i];
  }
  plan.env.resize(out);
  if (!placed) plan.env.push_back(entry.c_str());
}

std::string join(const std::vector<std::string_view>& parts) {
  std::size_t size = 0;
  for (std::string_view part : parts) size += part.size() + 1;
  std::string out;
  out.reserve(size);
  for (std::string_view part : parts) {
    if (!out.empty()) out.push_back(':');
    out.append(part);
  }
  return out;
}

// Where the variables the plan reads live in the caller's environment,
// found in one pass (the environment can be long; the launcher is hot).
struct Slots {
  std::string_view preload, library_path, orig_preload, orig_library_path;  // null: unset
};

bool split_entry(const char* entry, std::string_view name, std::string_view& value) {
  if (std::strncmp(entry, name.data(), name.size()) != 0 || entry[name.size()] != '=') {
    return false;
  }
  value = std::string_view(entry + name.size() + 1);
  return true;
}

Slots find_slots(EnvView env) {
  Slots slots;
  for (const char* entry : env) {
    if (entry[0] == 'L') {
      split_entry(entry, kPreloadVar, slots.preload) ||
          split_entry(entry, kLibraryPathVar, slots.library_path);
    } else if (entry[0] == 'P') {
      split_entry(entry, kOrigPreloadVar, slots.orig_preload) ||
          split_entry(entry, kOrigLibraryPathVar, slots.orig_library_path);
    }
  }
  return slots;
}

// The caller's original entry for var: recorded by an earlier hop whose
// restore did not run, else the current value. "" means unset.
std::string original_entry(std::string_view recorded, std::string_view var,
                           std::string_view current) {
  if (recorded.data() != nullptr) return std::string(recorded);
  if (current.data() == nullptr) return {};
  std::string entry;
  entry.reserve(var.size() + 1 + current.size());
  entry.append(var).append(1, '=').append(current);
  return entry;
}

}  // namespace

std::string_view env_get(EnvView env, std::string_view name) {
  for (const char* entry : env) {
    if (std::strncmp(entry, name.data(), name.size()) == 0 && entry[name.size()] == '=') {
      return std::string_view(entry + name.size() + 1);
    }
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

std::string startup_value(const Config& config) {
  if (config.startup.empty()) return {};
  std::string value = config.file;
  for (const Setting& dir : config.python_path) value.append("\npath=").append(dir.value);
  for (const Setting& hook : config.startup) value.append("\nhook=").append(hook.value);
  return value;
}

Plan make_plan(const PlanInputs& in) {
  const Config& config = *in.config;
  Plan plan;
  plan.interpreter = config.interpreter.value;
  plan.argv0 = std::string(in.invoked_path);
  plan.env.reserve(in.env.size() + 8);
  plan.env.assign(in.env.begin(), in.env.end());

  Slots caller = find_slots(in.env);
  // Originals first: they must be read before this plan changes anything.
  std::string orig_preload = original_entry(caller.orig_preload, kPreloadVar, caller.preload);
  std::string orig_library_path =
      original_entry(caller.orig_library_path, kLibraryPathVar, caller.library_path);

  // LD_PRELOAD: configured, then the restore library, then whatever the
  // caller has (which, when an earlier hop's restore did not run, is that
  // hop's result: deduplication keeps it from growing).
  std::vector<std::string_view> preload;
  preload.reserve(config.preload.size() + 4);
  for (const Setting& lib : config.preload) append_unique(preload, lib.value, {});
  append_unique(preload, in.restore_library, {});
  append_unique(preload, caller.preload, kPreloadSeparators);
  set_entry(plan, kPreloadVar, join(preload));

  if (!config.library_path.empty()) {
    std::vector<std::string_view> dirs;
    dirs.reserve(config.library_path.size() + 4);
    if (config.library_path_position == Position::kAppend) {
      append_unique(dirs, caller.library_path, kLibraryPathSeparators);
    }
    for (const Setting& dir : config.library_path) append_unique(dirs, dir.value, {});
    append_unique(dirs, caller.library_path, kLibraryPathSeparators);
    set_entry(plan, kLibraryPathVar, join(dirs));
  }

  for (const EnvSetting& var : config.env) set_entry(plan, var.name, var.value);
  if (!config.startup.empty()) set_entry(plan, kStartupVar, startup_value(config));

  set_entry(plan, kOrigPreloadVar, orig_preload);
  set_entry(plan, kOrigLibraryPathVar, orig_library_path);
  plan.env.push_back(nullptr);
  return plan;
}

}  // namespace pyshim
