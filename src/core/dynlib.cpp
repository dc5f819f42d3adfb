#include "pyshim/dynlib.hpp"
#include "pyshim/path.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <span>
#include <tuple>

#include <fmt/format.h>

namespace pyshim {
namespace {

std::vector<std::string> components(std::string_view path) {
  std::vector<std::string> out;
  while (!path.empty()) {
    std::size_t slash = path.find('/');
    std::string_view part = path.substr(0, slash);
    path.remove_prefix(slash == std::string_view::npos ? path.size() : slash + 1);
    if (!part.empty() && part != ".") out.emplace_back(part);
  }
  return out;
}

bool match_components(std::span<const std::string> pattern, std::span<const std::string> path) {
  if (pattern.empty()) return path.empty();
  if (pattern.front() == "**") {
    // Consecutive ** are one: without this, a/**/**/**/b backtracks for nothing.
    while (pattern.size() > 1 && pattern[1] == "**") pattern = pattern.subspan(1);
    for (std::size_t skip = 0; skip <= path.size(); ++skip) {
      if (match_components(pattern.subspan(1), path.subspan(skip))) return true;
    }
    return false;
  }
  return !path.empty() && ::fnmatch(pattern.front().c_str(), path.front().c_str(), 0) == 0 &&
         match_components(pattern.subspan(1), path.subspan(1));
}

bool is_version_tail(std::string_view s) {
  // "1", "1.2.3": what follows ".so." in a versioned library name.
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s.front())) || s.back() == '.') {
    return false;
  }
  return std::all_of(s.begin(), s.end(),
                     [](unsigned char c) { return std::isdigit(c) != 0 || c == '.'; });
}

bool excluded_by(const ExcludeGlob& exclude, std::string_view path) {
  if (glob_match(exclude.glob, path)) return true;
  // A glob naming a folder excludes everything in it.
  for (std::size_t slash = path.find('/', 1); slash != std::string_view::npos;
       slash = path.find('/', slash + 1)) {
    if (glob_match(exclude.glob, path.substr(0, slash))) return true;
  }
  return false;
}

std::string shell_quote(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

struct Clash {
  std::string name;
  std::vector<const SharedObject*> objects;  // distinct files, in path order
};

Error clash_error(const DynlibInputs& inputs, const std::vector<Clash>& clashes) {
  const std::string& venv = inputs.venv;
  Error error;
  error.kind = ErrorKind::kUsage;
  if (clashes.size() == 1) {
    error.message =
        fmt::format("{} different files would be linked as {} in {}/{}",
                    clashes.front().objects.size(), clashes.front().name, venv, kDynlibDir);
  } else {
    error.message = fmt::format("{} names are each claimed by different files in {}/{}",
                                clashes.size(), venv, kDynlibDir);
  }
  std::vector<std::string> globs;
  for (const Clash& clash : clashes) {
    for (const SharedObject* object : clash.objects) {
      bool by_soname = basename(object->rel_path) != clash.name;
      error.context.push_back(
          fmt::format("{}: {}{}", clash.name, object->path(),
                      by_soname ? fmt::format(" (SONAME {})", clash.name) : std::string()));
    }
    // Keep the first; suggesting the others' paths is the smallest change.
    for (std::size_t i = 1; i < clash.objects.size(); ++i) {
      if (std::find(globs.begin(), globs.end(), clash.objects[i]->rel_path) == globs.end()) {
        globs.push_back(clash.objects[i]->rel_path);
      }
    }
  }
  std::string flags;
  std::string toml;
  for (const std::string& glob : globs) {
    flags += fmt::format(" --exclude {}", shell_quote(glob));
    toml += fmt::format("{}\"{}\"", toml.empty() ? "" : ", ", glob);
  }
  std::string keep =
      inputs.config_file.empty()
          ? fmt::format(
                "pass it on every run (a shim venv keeps it in pyshim.toml: [dynlib] "
                "exclude = [{}])",
                toml)
          : fmt::format("to keep it excluded, write [dynlib] exclude = [{}] in {}", toml,
                        inputs.config_file);
  error.hint = fmt::format(
      "keep one per name: `pyshim dynlib {}{}`; {} (globs are relative to "
      "site-packages, ** matches any folders)",
      venv, flags, keep);
  return error;
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view path) {
  std::vector<std::string> p = components(pattern);
  std::vector<std::string> s = components(path);
  return match_components(p, s);
}

bool is_shared_object_name(std::string_view name) {
  if (name.size() > 3 && name.ends_with(".so")) return true;
  for (std::size_t at = name.find(".so."); at != std::string_view::npos;
       at = name.find(".so.", at + 1)) {
    if (at > 0 && is_version_tail(name.substr(at + 4))) return true;
  }
  return false;
}

NameKind classify_name(std::string_view file_name, const std::vector<std::string>& suffixes) {
  bool bare = false;
  for (const std::string& suffix : suffixes) {
    if (suffix.empty() || file_name.size() <= suffix.size() || !file_name.ends_with(suffix)) {
      continue;
    }
    // ".so" is bare; ".abi3.so" and ".cpython-311-x86_64-linux-gnu.so" are tagged.
    if (suffix.find('.', 1) != std::string::npos) return NameKind::kExtension;
    bare = true;
  }
  if (bare) return NameKind::kMaybeExtension;
  return is_shared_object_name(file_name) ? NameKind::kLibrary : NameKind::kOther;
}

std::string init_symbol(std::string_view file_name) {
  return fmt::format("PyInit_{}", file_name.substr(0, file_name.find('.')));
}

bool is_extension_module(const SharedObject& object, const std::vector<std::string>& suffixes) {
  std::string_view name = basename(object.rel_path);
  switch (classify_name(name, suffixes)) {
    case NameKind::kExtension:
      return true;
    case NameKind::kMaybeExtension:
      return std::find(object.init_symbols.begin(), object.init_symbols.end(), init_symbol(name)) !=
             object.init_symbols.end();
    default:
      return false;
  }
}

const ExcludeGlob* find_exclude(const std::vector<ExcludeGlob>& excludes,
                                const SharedObject& object) {
  for (const ExcludeGlob& exclude : excludes) {
    std::string absolute;
    if (exclude.glob.starts_with('/')) absolute = object.path();
    if (excluded_by(exclude, absolute.empty() ? std::string_view(object.rel_path) : absolute)) {
      return &exclude;
    }
  }
  return nullptr;
}

std::string link_target(std::string_view venv, std::string_view library) {
  namespace fs = std::filesystem;
  std::string root = fs::path(venv).lexically_normal().string();
  std::string lib = fs::path(library).lexically_normal().string();
  while (root.size() > 1 && root.ends_with('/')) root.pop_back();
  if (!lib.starts_with(root + "/")) return lib;
  std::string up;
  for (std::size_t i = 0; i < components(kDynlibDir).size(); ++i) up += "../";
  return up + lib.substr(root.size() + 1);
}

Result<DynlibSelection> select_dynlib(const DynlibInputs& inputs) {
  std::vector<const SharedObject*> ordered;
  for (const SharedObject& object : inputs.objects) ordered.push_back(&object);
  std::sort(ordered.begin(), ordered.end(), [](const SharedObject* a, const SharedObject* b) {
    return std::tie(a->site_dir, a->rel_path) < std::tie(b->site_dir, b->rel_path);
  });

  DynlibSelection selection;
  std::map<std::string, std::vector<const SharedObject*>> claims;
  for (const SharedObject* object : ordered) {
    if (!object->loadable || is_extension_module(*object, inputs.suffixes)) continue;
    if (const ExcludeGlob* by = find_exclude(inputs.excludes, *object)) {
      selection.excluded.push_back({object->path(), *by});
      continue;
    }
    std::string name(basename(object->rel_path));
    claims[name].push_back(object);
    // The loader looks a DT_NEEDED entry up by the SONAME the library was
    // linked against, which need not be the name it was installed under.
    if (!object->soname.empty() && object->soname != name &&
        object->soname.find('/') == std::string::npos) {
      claims[object->soname].push_back(object);
    }
  }

  auto identity = [](const SharedObject* object) {
    return object->identity.empty() ? object->path() : object->identity;
  };
  std::vector<Clash> clashes;
  for (const auto& [name, objects] : claims) {
    // One file reached by several paths (a symlink beside its target) is
    // one candidate; the path that carries the name itself is the better
    // link target.
    std::vector<const SharedObject*> distinct;
    for (const SharedObject* object : objects) {
      auto same = std::find_if(distinct.begin(), distinct.end(), [&](const SharedObject* seen) {
        return identity(seen) == identity(object);
      });
      if (same == distinct.end()) {
        distinct.push_back(object);
      } else if (basename((*same)->rel_path) != name && basename(object->rel_path) == name) {
        *same = object;
      }
    }
    bool all_same = std::all_of(distinct.begin() + 1, distinct.end(), [&](const SharedObject* o) {
      return inputs.same_contents && inputs.same_contents(*distinct.front(), *o);
    });
    if (!all_same) {
      clashes.push_back({name, distinct});
      continue;
    }
    selection.links.push_back(
        {name, link_target(inputs.venv, distinct.front()->path()), distinct.front()->path()});
  }
  if (!clashes.empty()) return clash_error(inputs, clashes);
  return selection;
}

Result<std::vector<DynlibChange>> diff_dynlib(const std::vector<DynlibLink>& wanted,
                                              const std::vector<DynlibEntry>& existing,
                                              std::string_view dynlib_dir) {
  std::map<std::string_view, const DynlibEntry*> have;
  for (const DynlibEntry& entry : existing) have[entry.name] = &entry;
  std::map<std::string_view, const DynlibLink*> want;
  for (const DynlibLink& link : wanted) want[link.name] = &link;

  std::vector<DynlibChange> changes;
  for (const auto& [name, link] : want) {
    auto found = have.find(name);
    if (found == have.end()) {
      changes.push_back({DynlibChange::Kind::kAdd, link->name, link->target, {}});
    } else if (!found->second->symlink) {
      return Error{ErrorKind::kUsage,
                   fmt::format("{}/{} is in the way: it is not a symlink", dynlib_dir, name),
                   {fmt::format("wanted: a link to {}", link->source)},
                   fmt::format("{} holds only links that pyshim maintains; move the file away "
                               "(use --library-path for folders of your own)",
                               dynlib_dir)};
    } else if (found->second->target != link->target) {
      changes.push_back(
          {DynlibChange::Kind::kChange, link->name, link->target, found->second->target});
    }
  }
  for (const auto& [name, entry] : have) {
    if (entry->symlink && want.find(name) == want.end()) {
      changes.push_back({DynlibChange::Kind::kRemove, entry->name, {}, entry->target});
    }
  }
  std::sort(changes.begin(), changes.end(),
            [](const DynlibChange& a, const DynlibChange& b) { return a.name < b.name; });
  return changes;
}

}  // namespace pyshim
