#include "extensions.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <string_view>

#include <fmt/format.h>

#include "pyshim/dynlib.hpp"
#include "pyshim/launch.hpp"
#include "pyshim/mapped_file.hpp"
#include "pyshim/os.hpp"
#include "pyshim/path.hpp"

namespace pyshim::cli {
namespace {

constexpr std::size_t kMaxFindings = 20;  // per kind: enough to act on, short enough to read
constexpr std::size_t kMaxPrinted = 1024;

bool regular_file(const std::string& path) {
  auto info = stat_path(path);
  return info && S_ISREG(info->mode);
}

bool inside(const std::string& real, const std::string& real_root) {
  return real.size() > real_root.size() && real.starts_with(real_root) &&
         real[real_root.size()] == '/';
}

bool maybe_shared_object(std::string_view name) {
  return is_shared_object_name(name) || name.ends_with(".so");
}

// VENV/lib/python3.X/site-packages, VENV/lib/pypy3.X/site-packages and the
// lib64 twins, each once by real path and only inside the venv.
std::vector<std::string> site_dirs_of(const std::string& venv) {
  std::vector<std::string> out;
  std::vector<std::string> seen;
  std::string real_venv = real_path(venv);
  for (const char* lib : {"lib", "lib64"}) {
    std::string folder = join(venv, lib);
    for (const std::string& name : folder_names(folder)) {
      std::string site = join(folder, name) + "/site-packages";
      std::string real = real_path(site);
      if (real.empty() || !inside(real, real_venv)) continue;
      if (std::find(seen.begin(), seen.end(), real) != seen.end()) continue;
      seen.push_back(real);
      out.push_back(site);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Every regular file under dir named like a shared object, read once
// (mapped: only the headers' and dynamic section's pages are touched).
// Folder links are not followed and a file whose real path leaves the
// venv is not read, as in `pyshim dynlib`.
void scan_dir(const std::string& dir, const std::string& real_venv,
              std::vector<LinkedObject>& out) {
  for (FoundFile& found : files_below(dir, maybe_shared_object)) {
    std::string& path = found.path;
    std::string real_dir = real_path(dirname(path));
    if (!inside(real_dir + "/x", real_venv)) continue;
    MappedFile file(path);
    auto dynamic = parse_dynamic(file.view());
    if (!dynamic || dynamic->type != 3 /* ET_DYN */) continue;
    LinkedObject object;
    object.path = path;
    object.real_dir = real_dir;
    object.label = std::move(found.relative);
    object.dynamic = std::move(*dynamic);
    out.push_back(std::move(object));
  }
}

// The sonames the loader has loaded before any import: the interpreter's
// DT_NEEDED (and theirs, one level down: libpython's libm), the preloads.
std::vector<std::string> loaded_before_imports(const std::string& interpreter,
                                               const LoaderFacts& loader,
                                               const std::vector<std::string>& preloads) {
  std::vector<std::string> loaded;
  auto add = [&loaded](const std::string& name) {
    if (!name.empty() && std::find(loaded.begin(), loaded.end(), name) == loaded.end()) {
      loaded.push_back(name);
    }
  };
  auto read = [](const std::string& path) -> std::optional<LinkedObject> {
    MappedFile file(path);
    auto dynamic = parse_dynamic(file.view());
    if (!dynamic) return std::nullopt;
    return LinkedObject{path, real_path(dirname(path)), std::string(basename(path)),
                        std::move(*dynamic)};
  };
  auto program = read(real_path(interpreter));
  if (program) {
    for (const std::string& name : program->dynamic.needed) {
      add(name);
      auto found = resolve_needed(*program, name, loader);
      if (!found || !found->starts_with('/')) continue;
      if (auto library = read(*found)) {
        for (const std::string& inner : library->dynamic.needed) add(inner);
      }
    }
  }
  for (const std::string& preload : preloads) {
    add(std::string(basename(preload)));
    if (auto library = read(preload)) add(library->dynamic.soname);
  }
  return loaded;
}

// What a candidate layer holds: its dynlib folder's links, then its
// site-packages' shared objects by file name and SONAME.
LayerCandidate candidate_of(const std::string& venv, bool on_library_path) {
  LayerCandidate layer{venv, on_library_path, {}};
  std::string dynlib = join(venv, kDynlibDir);
  for (std::string& name : folder_names(dynlib)) {
    std::string path = join(dynlib, name);
    layer.libraries.push_back({std::move(name), std::move(path), true});
  }
  std::vector<LinkedObject> objects;
  std::string real_venv = real_path(venv);
  for (const std::string& site : site_dirs_of(venv)) scan_dir(site, real_venv, objects);
  for (const LinkedObject& object : objects) {
    layer.libraries.push_back({std::string(basename(object.path)), object.path, false});
    if (!object.dynamic.soname.empty()) {
      layer.libraries.push_back({object.dynamic.soname, object.path, false});
    }
  }
  return layer;
}

std::string mark(const ExtensionFinding& finding) {
  return fmt::format("{}: {}", printable(finding.object, kMaxPrinted),
                     printable(finding.problem, kMaxPrinted));
}

}  // namespace

Result<ExtensionScan> scan_extensions(const ExtensionRequest& request) {
  ExtensionScan scan;
  ExtensionInputs inputs;
  inputs.venv = request.venv;
  inputs.preloads = request.preloads;

  MappedFile interpreter(real_path(request.interpreter));
  auto elf = parse_elf(interpreter.view().substr(0, 4096));
  if (!elf) {
    return Error{ErrorKind::kCheckFailed,
                 fmt::format("cannot read the interpreter {} as ELF: {}",
                             printable(request.interpreter, kMaxPrinted), elf.error().message),
                 {},
                 "fix 'interpreter' in the config"};
  }
  LoaderFacts& loader = inputs.loader;
  loader.interpreter = *elf;
  loader.library_path = request.library_path;
  loader.default_dirs = default_library_dirs(*elf);
  loader.has_file = regular_file;
  MappedFile cache("/etc/ld.so.cache");
  for (const CacheEntry& entry : parse_loader_cache(cache.view())) {
    if (cache_entry_fits(entry, *elf)) loader.cache.push_back(entry.path);
  }
  loader.loaded = loaded_before_imports(request.interpreter, loader, request.preloads);

  std::string real_venv = real_path(request.venv);
  scan.site_dirs = site_dirs_of(request.venv);
  for (const std::string& site : scan.site_dirs) scan_dir(site, real_venv, inputs.objects);
  scan.objects = inputs.objects.size();

  // Lower layers already configured (their dynlib folders on library_path),
  // then the ones offered.
  for (const std::string& dir : request.library_path) {
    std::string suffix = "/" + std::string(kDynlibDir);
    if (dir.ends_with(suffix) && dir.size() > suffix.size()) {
      std::string layer = dir.substr(0, dir.size() - suffix.size());
      if (layer != request.venv) inputs.candidates.push_back(candidate_of(layer, true));
    }
  }
  for (const std::string& venv : request.candidates) {
    inputs.candidates.push_back(candidate_of(absolute_path(venv), false));
  }
  scan.findings = check_extensions(inputs);
  return scan;
}

std::vector<Check> extension_checks(const ExtensionScan& scan) {
  std::vector<Check> out;
  struct Kind {
    const char* id;
    const char* passed;
    bool (*match)(const ExtensionFinding&);
  };
  const Kind kinds[] = {
      {"extension_runtime", "no extension needs a sanitizer runtime that is not preloaded first",
       [](const ExtensionFinding& f) { return f.kind == ExtensionFinding::Kind::kRuntime; }},
      {"extension_libraries", "the loader finds every library the extensions need",
       [](const ExtensionFinding& f) { return f.kind != ExtensionFinding::Kind::kRuntime; }},
  };
  for (const Kind& kind : kinds) {
    std::size_t count = 0;
    for (const ExtensionFinding& finding : scan.findings) {
      if (!kind.match(finding)) continue;
      if (++count > kMaxFindings) continue;
      out.push_back(Check::fail(
          kind.id, fmt::format("{} loads", printable(finding.object, kMaxPrinted)),
          printable(finding.problem, kMaxPrinted), printable(finding.fix, kMaxPrinted)));
    }
    if (count > kMaxFindings) {
      out.push_back(
          Check::fail(kind.id, "more shared objects load",
                      fmt::format("{} more findings like the above", count - kMaxFindings),
                      "fix the ones above, then run doctor again"));
    }
    if (count == 0) {
      out.push_back(Check::pass(
          kind.id, fmt::format("{} ({} shared objects read)", kind.passed, scan.objects)));
    }
  }
  return out;
}

std::string extension_warnings(const ExtensionScan& scan) {
  std::string out;
  std::size_t count = 0;
  for (const ExtensionFinding& finding : scan.findings) {
    if (++count > 2 * kMaxFindings) continue;
    out +=
        fmt::format("warning: {}\n  fix: {}\n", mark(finding), printable(finding.fix, kMaxPrinted));
  }
  if (count > 2 * kMaxFindings) {
    out += fmt::format("warning: {} more findings: see `pyshim doctor --extensions`\n",
                       count - 2 * kMaxFindings);
  }
  return out;
}

}  // namespace pyshim::cli
