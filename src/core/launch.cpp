#include "pyshim/launch.hpp"

#include <elf.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "pyshim/elf.hpp"
#include "pyshim/path.hpp"
#include "pyshim/venv.hpp"

namespace pyshim {
namespace {

Error config_error(const Config& config, Origin origin, ErrorKind kind, std::string message,
                   std::string hint) {
  Error e;
  e.kind = kind;
  e.message = std::move(message);
  e.context.push_back("config: " + where(config, origin));
  e.hint = std::move(hint);
  return e;
}

}  // namespace

bool has_launcher_note(std::string_view head) {
  return head.find(std::string_view(kLauncherNote, sizeof kLauncherNote)) != std::string_view::npos;
}

bool runs_a_launcher(FileSystem& fs, std::string path) {
  // The kernel follows #! up to 4 levels (BINPRM_MAX_RECURSION) after the
  // file itself; a fifth would fail to exec anyway.
  for (int level = 0; level <= 4; ++level) {
    std::string head;
    if (fs.read_head(path, 4096, head) != 0) return false;
    if (has_launcher_note(head)) return true;
    if (!head.starts_with("#!")) return false;
    // binfmt_script: the interpreter is the first word after "#!", blanks
    // (space, tab) skipped, ending at a blank or the end of the line.
    std::size_t begin = head.find_first_not_of(" \t", 2);
    if (begin == std::string::npos) return false;
    std::size_t end = head.find_first_of(" \t\n", begin);
    if (end == std::string::npos) end = head.size();
    path = head.substr(begin, end - begin);
    if (path.empty()) return false;
  }
  return false;
}

Status check_interpreter(FileSystem& fs, const LaunchRequest& request, const Config& config) {
  const Setting& interpreter = config.interpreter;
  RulesOs os{fs};
  FileInfo info;
  rules::Verdict v = rules::check_interpreter(os, interpreter.value.c_str(), info);
  // A possible launcher: only reading it tells (general-only). A copy of
  // this very binary: its identity; a launcher of another build, or a #!
  // script run by one (the launcher runs the script, the kernel runs the
  // launcher for it): its note, through the #! lines.
  if (v.passed() && rules::same_size_as_self(info, request.self_size)) {
    FileInfo self;
    bool is_self =
        fs.stat(request.self_exe, self) == 0 && self.dev == info.dev && self.ino == info.ino;
    if (is_self || runs_a_launcher(fs, interpreter.value)) {
      v.kind = ErrorKind::kInterpreterIsLauncher;
    }
  }
  if (v.passed() && (request.thorough || rules::started_by_a_launcher(request.env)) &&
      runs_a_launcher(fs, interpreter.value)) {
    v.kind = ErrorKind::kInterpreterIsLauncher;
  }
  if (v.passed()) return Ok{};
  // The text, made only on failure: this runs in every general launch.
  std::string doctor_hint =
      fmt::format("fix 'interpreter' or run `pyshim doctor {}`", request.invoked_path);
  std::string message, hint = doctor_hint;
  switch (v.kind) {
    case ErrorKind::kInterpreterNotFound:
      message = fmt::format("interpreter not found: {}", interpreter.value);
      break;
    case ErrorKind::kInterpreterUnreadable:
      message =
          fmt::format("cannot access interpreter {}: {}", interpreter.value, std::strerror(v.err));
      break;
    case ErrorKind::kInterpreterNotExecutable:
      message = fmt::format("interpreter is not an executable file: {}", interpreter.value);
      if (S_ISREG(info.mode))
        hint = fmt::format("chmod +x {} or fix 'interpreter'", interpreter.value);
      break;
    default:
      message = fmt::format("interpreter resolves to the shim itself: {}", interpreter.value);
      hint =
          "point 'interpreter' at the real Python (e.g. the 'home' in pyvenv.cfg), not at a "
          "pyshim launcher";
  }
  return config_error(config, interpreter.origin, v.kind, std::move(message), std::move(hint));
}

Status check_preload(FileSystem& fs, const Config& config, const Setting& lib) {
  RulesOs os{fs};
  rules::Verdict v = rules::check_preload(os, lib.value.c_str(), lib.value.size(), 0);
  if (v.passed()) return Ok{};
  if (v.kind == ErrorKind::kPreloadRefused) {
    std::optional<Error> refused = loader_path_error(lib.value, true);
    refused->kind = v.kind;
    refused->context.push_back("config: " + where(config, lib.origin));
    return *std::move(refused);
  }
  return config_error(
      config, lib.origin, v.kind,
      v.kind == ErrorKind::kPreloadNotFound ? fmt::format("preload not found: {}", lib.value)
      : v.kind == ErrorKind::kPreloadUnreadable
          ? fmt::format("cannot access preload {}: {}", lib.value, std::strerror(v.err))
          : fmt::format("preload is a directory: {}", lib.value),
      "install the library or fix 'preload'; the interpreter is not started without it");
}

Status check_library_folder(const Config& config, const Setting& folder) {
  if (rules::check_library_folder(folder.value, 0).passed()) return Ok{};
  std::optional<Error> refused = loader_path_error(folder.value, false);
  refused->kind = ErrorKind::kLibraryFolderRefused;
  refused->context.push_back("config: " + where(config, folder.origin));
  return *std::move(refused);
}

InvokedSource invoked_source(const char* execfn, int argc, const char* const* argv) {
  return rules::invoked_by_argv0(execfn, argc, argv) ? InvokedSource::kArgv0
                                                     : InvokedSource::kExecFn;
}

namespace {

Error read_error(const std::string& path, int err) {
  Error e;
  e.kind = ErrorKind::kConfigUnreadable;
  e.message = err == EINVAL ? fmt::format("config {} is not a regular file", path)
              : err == EFBIG
                  ? fmt::format("config {} is larger than {} bytes", path, kMaxConfigSize)
                  : fmt::format("cannot read config {}: {}", path, std::strerror(err));
  e.hint = err == EISDIR  ? "a folder has the config's name: rename or remove it"
           : err == EFBIG ? "a pyshim.toml is a few lines; check what this file is"
                          : "fix its permissions or remove it";
  return e;
}

}  // namespace

Lookup look_up_trusted(FileSystem& fs, std::uint32_t euid, std::string_view self_exe,
                       const std::string& path) {
  RulesOs os{fs};
  std::string scratch(path.size() + 2, '\0');  // path's folder
  rules::Arena arena(scratch.data(), scratch.size());
  std::string self(self_exe);
  rules::TrustedLookup look =
      rules::look_up_trusted(os, euid, self.empty() ? nullptr : self.c_str(), path.c_str(), &arena);
  Lookup found;
  found.err = look.err;
  found.info = look.info;
  switch (look.refused) {
    case rules::Refusal::kNone:
    case rules::Refusal::kUndecided:  // not asked for: a full lookup decides
      break;
    case rules::Refusal::kLinkOwner:
      found.refused = fmt::format("a link owned by uid {}", look.uid);
      break;
    case rules::Refusal::kLinkTarget:
      found.refused = fmt::format("a link to a file owned by uid {}", look.uid);
      break;
    case rules::Refusal::kStranger:
      found.refused = fmt::format(
          "owned by uid {}, not root, the caller or the launcher's owner in a folder only they "
          "can write",
          look.uid);
      break;
  }
  return found;
}

namespace {

// A pyshim.toml found at path (info from stat): the stamp when it is the
// stamped file unchanged, else its text.
Result<FoundConfig> take(FileSystem& fs, const LaunchRequest& request, std::string path,
                         const FileInfo& info) {
  FoundConfig found;
  if (request.stamp &&
      rules::take_from_stamp(request.stamp->source, request.stamp->identity, path, info)) {
    found.path = std::move(path);
    found.source = ConfigSource::kStamp;
    return found;
  }
  FileInfo opened;
  if (int err = fs.read_file(path, found.text, &opened); err != 0) return read_error(path, err);
  if (opened.dev != info.dev || opened.ino != info.ino) {
    // Replaced between the trust check and the read: what was read was not
    // checked.
    Error e;
    e.kind = ErrorKind::kConfigReplaced;
    e.message = fmt::format("config {} was replaced while the launcher read it", path);
    e.hint = "run the command again; if this repeats, someone is swapping the file";
    return e;
  }
  found.path = std::move(path);
  return found;
}

}  // namespace

Result<FoundConfig> find_config(FileSystem& fs, const LaunchRequest& request) {
  FoundConfig found;
  std::string_view override_path = env_get(request.env, kConfigEnvVar);
  if (!request.secure && !override_path.empty()) {
    found.path = std::string(override_path);
    found.source = ConfigSource::kEnvVar;
    if (int err = fs.read_file(found.path, found.text); err != 0) {
      Error e = read_error(found.path, err);
      e.context.push_back("from: PYSHIM_CONFIG");
      e.hint = "fix or unset PYSHIM_CONFIG";
      return e;
    }
    return found;
  }

  std::vector<std::string> searched;
  std::string path = request.invoked_path;
  // A venv made from a shim venv links to the outer launcher: follow the
  // link one hop at a time. The bound guards against symlink cycles.
  for (int hop = 0; hop < 40; ++hop) {
    std::string dir = dirname(path);
    std::string room(2 * (dir.size() + kConfigName.size() + 2), '\0');
    rules::Arena arena(room.data(), room.size());
    const char* beside[2];
    int count = rules::config_candidates(arena, dir, beside);
    for (int i = 0; i < count; ++i) {
      std::string candidate = beside[i];
      if (std::find(searched.begin(), searched.end(), candidate) != searched.end()) continue;
      Lookup look = look_up_trusted(fs, request.euid, request.self_exe, candidate);
      int err = look.err;
      if (err == 0 && !look.refused.empty()) {
        searched.push_back(fmt::format("{} (skipped: {})", candidate, look.refused));
        continue;
      }
      if (err == 0) return take(fs, request, std::move(candidate), look.info);
      if (err != ENOENT && err != ENOTDIR) return read_error(candidate, err);
      searched.push_back(std::move(candidate));
    }
    std::string target;
    if (fs.readlink(path, target) != 0) break;
    path = target.starts_with('/') ? target : join(dir, target);
  }

  // A venv's base launcher (VENV/.pyshim/base/bin/, what environments
  // derived from the venv run through): the venv's own pyshim.toml, so a
  // moved or copied venv's derived environments use its config, not the
  // stamped one of where it was installed (which may still exist).
  if (std::string venv(base_launcher_venv(dirname(path))); !venv.empty()) {
    std::string candidate = join(venv, kConfigName);
    Lookup look = look_up_trusted(fs, request.euid, request.self_exe, candidate);
    if (look.err == 0 && look.refused.empty()) {
      return take(fs, request, std::move(candidate), look.info);
    }
    if (look.err == 0) {
      searched.push_back(fmt::format("{} (skipped: {})", candidate, look.refused));
    } else if (look.err != ENOENT && look.err != ENOTDIR) {
      return read_error(candidate, look.err);
    } else {
      searched.push_back(std::move(candidate));
    }
  }

  if (request.stamp_error) return *request.stamp_error;
  if (request.stamp) {
    // The stamped file changed: a hand edit takes effect at once. Gone,
    // unreadable or not trusted (a stranger may recreate a deleted origin's
    // path): the stamp alone, so a copied launcher works anywhere.
    Lookup look = look_up_trusted(fs, request.euid, request.self_exe, request.stamp->source);
    FileInfo opened;
    if (look.err == 0 && look.refused.empty() &&
        !rules::stamp_still_true(request.stamp->identity, look.info) &&
        fs.read_file(request.stamp->source, found.text, &opened) == 0 &&
        opened.dev == look.info.dev && opened.ino == look.info.ino) {
      found.path = request.stamp->source;
      return found;
    }
    found.text.clear();
    found.path = request.stamp->source;
    found.source = ConfigSource::kStamp;
    return found;
  }
  Error e;
  e.kind = ErrorKind::kConfigNotFound;
  e.message = fmt::format("no {} found for {}", kConfigName, request.invoked_path);
  for (const std::string& place : searched) e.context.push_back("searched: " + place);
  e.context.push_back("and the launcher carries no stamped config");
  e.hint = fmt::format("run `pyshim install VENV`, write a {} beside the launcher, or set {}",
                       kConfigName, kConfigEnvVar);
  return e;
}

Result<Config> load_config(const LaunchRequest& request, const FoundConfig& found) {
  if (found.source == ConfigSource::kStamp) return request.stamp->config;
  return parse_config(found.text, found.path);
}

std::string loader_refusal(std::string_view path, bool preload) {
  switch (rules::loader_refusal_of(path, preload)) {
    case rules::LoaderRefusal::kNone:
      return {};
    case rules::LoaderRefusal::kSplits:
      return fmt::format("the loader splits {} at {}", preload ? "LD_PRELOAD" : "LD_LIBRARY_PATH",
                         preload ? "' ' and ':'" : "':' and ';'");
    case rules::LoaderRefusal::kWhitespace:
      return "it contains whitespace";
    case rules::LoaderRefusal::kToken:
      return "the loader expands '$' tokens ($ORIGIN, $LIB, $PLATFORM) in it";
    case rules::LoaderRefusal::kTooLong:
      return "the loader drops LD_PRELOAD entries of 4096 bytes or more";
  }
  return {};
}

std::optional<Error> loader_path_error(std::string_view path, bool preload) {
  std::string why = loader_refusal(path, preload);
  if (why.empty()) return std::nullopt;
  Error e;
  e.message =
      fmt::format("cannot put {} in {}: {}", path, preload ? "LD_PRELOAD" : "LD_LIBRARY_PATH", why);
  e.hint = preload ? "link the library from a plain path (e.g. /opt/preload/libx.so) and give that"
                   : "link the folder from a plain path and give that (or move the venv)";
  return e;
}

std::vector<std::string> restore_library_candidates(std::string_view self_exe) {
  std::string room(3 * (self_exe.size() + kRestoreLibraryName.size() + 16), '\0');
  rules::Arena arena(room.data(), room.size());
  const char* found[3];
  int count = rules::restore_library_candidates(arena, self_exe, found);
  return {found, found + (count > 0 ? count : 0)};
}

// VENV's restore library when the venv holding self_exe was derived (with
// --copies) from the shim venv VENV: its launcher is a copy of VENV's base
// launcher, and its pyvenv.cfg's `home` names that launcher's folder
// (VENV/.pyshim/base/bin). "" otherwise.
static std::string derived_from_restore_library(FileSystem& fs, std::string_view self_exe) {
  std::string cfg;
  if (fs.read_file(join(dirname(dirname(self_exe)), "pyvenv.cfg"), cfg) != 0) return {};
  auto settings = parse_pyvenv_cfg(cfg);
  auto home = settings.find("home");
  if (home == settings.end()) return {};
  std::string venv(base_launcher_venv(home->second));
  return venv.empty() ? venv : join(join(venv, "lib/pyshim"), kRestoreLibraryName);
}

Result<std::string> find_restore_library(FileSystem& fs, std::string_view self_exe,
                                         const Stamp* stamp, std::uint32_t euid) {
  std::vector<std::string> searched;
  auto take = [&](const std::string& candidate, const char* note) {
    Lookup look = look_up_trusted(fs, euid, self_exe, candidate);
    if (look.err == 0 && look.refused.empty() && S_ISREG(look.info.mode)) return true;
    searched.push_back(fmt::format(
        "searched: {}{}{}", candidate, note,
        look.err == 0 && !look.refused.empty() ? " (skipped: " + look.refused + ")" : ""));
    return false;
  };
  for (std::string& candidate : restore_library_candidates(self_exe)) {
    if (take(candidate, "")) return std::move(candidate);
  }
  // Before the stamped path: a --copies venv derived from a shim venv that
  // has moved since uses that venv's library, as its symlinked ones do.
  if (self_exe.starts_with('/')) {
    std::string derived = derived_from_restore_library(fs, self_exe);
    if (!derived.empty() && take(derived, " (the venv this one was derived from)")) {
      return derived;
    }
  }
  // The stamped path last (a copied launcher lands without one beside it),
  // checked like the others: the venv it points into may be gone and its
  // path recreated by anyone.
  if (stamp != nullptr && take(stamp->restore_library, " (stamped)")) {
    return stamp->restore_library;
  }
  Error e;
  e.kind = ErrorKind::kRestoreLibraryNotFound;
  e.message = fmt::format("restore library {} not found", kRestoreLibraryName);
  e.context = std::move(searched);
  if (!self_exe.starts_with('/')) {
    e.context.insert(e.context.begin(),
                     "the launcher cannot tell where its binary is: /proc/self/exe is unreadable "
                     "(no /proc mounted, or a seccomp filter) and it was not started by an "
                     "absolute path; nothing is looked up relative to the current folder");
    e.hint = "mount /proc, or start the launcher by its absolute path";
  } else {
    e.hint = fmt::format("reinstall pyshim, or put {} beside {}", kRestoreLibraryName, self_exe);
  }
  return e;
}

Status check_restore_library(FileSystem& fs, const std::string& restore,
                             const std::string& interpreter) {
  std::string head;
  int err = fs.read_head(restore, 4096, head);
  auto fail = [&](std::string why) -> Status {
    Error e;
    e.kind = ErrorKind::kRestoreLibraryUnusable;
    e.message = fmt::format("restore library {} {}", restore, why);
    e.context.push_back(
        "the loader would skip it with a warning, and LD_PRELOAD would leak into every child");
    e.hint = "reinstall pyshim (or re-run `pyshim install` on the venv) to put a good copy there";
    return e;
  };
  if (err != 0) return fail(fmt::format("cannot be read: {}", std::strerror(err)));
  auto elf = parse_elf(head);
  if (!elf) return fail(fmt::format("is not an ELF file ({})", elf.error().message));
  if (elf->type != ET_DYN) return fail("is not a shared object");
  std::string interpreter_head;
  if (fs.read_head(interpreter, 4096, interpreter_head) == 0) {
    auto target = parse_elf(interpreter_head);
    // A #! script or an unreadable interpreter: its class is not known here;
    // the loader of whatever runs is the judge.
    if (target && !compatible(*elf, *target)) {
      return fail(fmt::format("is {}, the interpreter {} is {}", describe(*elf), interpreter,
                              describe(*target)));
    }
  }
  return Ok{};
}

Status check_launch(FileSystem& fs, const LaunchRequest& request, const Launch& launch) {
  const Config& config = launch.config;
  if (auto status = check_interpreter(fs, request, config); !status) return status;
  for (const Setting& lib : config.preload) {
    if (auto status = check_preload(fs, config, lib); !status) return status;
  }
  for (const Setting& folder : config.library_path) {
    if (auto status = check_library_folder(config, folder); !status) return status;
  }
  return Ok{};
}

Result<Launch> prepare_launch(FileSystem& fs, const LaunchRequest& request) {
  if (request.secure) {
    // Setuid/setgid or file capabilities: the caller controls the invoked
    // path (its own symlink, fexecve with any argv[0]) and so which config
    // is found, and that config picks the libraries preloaded into a
    // privileged process. No design of lookup makes that safe enough.
    Error e;
    e.kind = ErrorKind::kPrivileged;
    e.message = "refusing to run with elevated privileges (setuid, setgid or capabilities)";
    e.hint = "remove the setuid/setgid bit or file capabilities from the launcher";
    return e;
  }
  auto found = find_config(fs, request);
  if (!found) return found.take_error();
  auto config = load_config(request, *found);
  if (!config) return config.take_error();
  auto restore = find_restore_library(fs, request.self_exe,
                                      request.stamp ? &*request.stamp : nullptr, request.euid);
  if (!restore) return restore.take_error();

  if (auto status = check_restore_library(fs, *restore, config->interpreter.value); !status) {
    return status.take_error();
  }

  Launch launch{std::move(*config), found->source, std::move(*restore), {}, {}};
  launch.restore_preload = launch.restore_library;
  if (rules::needs_fd_preload(launch.restore_library)) {
    // The restore library closes this descriptor in the interpreter.
    int fd = -1;
    if (int err = fs.open_inherited(launch.restore_library, fd); err != 0) {
      Error e;
      e.kind = ErrorKind::kRestoreLibraryUnopenable;
      e.message = fmt::format("cannot open the restore library {}: {}", launch.restore_library,
                              std::strerror(err));
      e.hint = "check its permissions";
      return e;
    }
    char fd_path[rules::kFdPathSize];
    launch.restore_preload.assign(fd_path, rules::write_fd_path(fd_path, fd));
    // Without /proc the loader would skip this entry (with a warning) and
    // the interpreter would run without its restore library, leaking
    // LD_PRELOAD into every child.
    FileInfo through_proc;
    if (fs.stat(launch.restore_preload, through_proc) != 0) {
      Error e;
      e.kind = ErrorKind::kProcUnusable;
      e.message = fmt::format("cannot preload the restore library {} as {}: /proc is not usable",
                              launch.restore_library, launch.restore_preload);
      e.context.push_back(
          "its path holds a character the loader splits LD_PRELOAD on, so it is "
          "preloaded through /proc/self/fd");
      e.hint = "mount /proc, or move the venv to a path without spaces, ':' or '$'";
      return e;
    }
  }
  // execve refuses a string longer than MAX_ARG_STRLEN with E2BIG, which
  // would look like "cannot execute" (too_long_for_execve). The cheap checks
  // first (rules::list_too_long), then the plan's entries.
  for (const auto* list : {&launch.config.preload, &launch.config.library_path}) {
    if (std::size_t bytes = rules::list_too_long(*list); bytes != 0) {
      Error e;
      e.kind = ErrorKind::kTooLongForExecve;
      e.message =
          fmt::format("{} would be at least {} bytes; the kernel takes at most {} per variable",
                      list == &launch.config.preload ? "LD_PRELOAD" : "LD_LIBRARY_PATH", bytes,
                      kMaxArgString - 1);
      e.context.push_back("config: " + launch.config.file);
      e.hint = "shorten the config's lists";
      return e;
    }
  }
  if (auto status = check_launch(fs, request, launch); !status) return status.take_error();
  launch.plan =
      make_plan({&launch.config, request.env, request.invoked_path, launch.restore_preload});
  if (rules::Verdict v =
          rules::check_environment(launch.plan.env.data(), launch.plan.env.size() - 1);
      !v.passed()) {
    {
      std::string_view text(launch.plan.env[v.item]);
      std::size_t n = text.size();
      Error e;
      e.kind = v.kind;
      e.message = fmt::format("{} would be {} bytes; the kernel takes at most {} per variable",
                              env_name(text), n, kMaxArgString - 1);
      e.context.push_back("config: " + launch.config.file);
      e.hint = "shorten the config's lists or the caller's value of that variable";
      return e;
    }
  }
  return launch;
}

std::string printable(std::string_view text, std::size_t max) {
  std::string out;
  out.reserve(std::min(text.size(), max) + 16);
  std::size_t i = 0;
  for (; i < text.size() && out.size() < max; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    // A valid UTF-8 sequence that is not a C1 control (U+0080-U+009F) passes.
    std::size_t n = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
      continue;
    }
    bool valid = n > 0 && i + n <= text.size() &&
                 !(c == 0xc2 && static_cast<unsigned char>(text[i + 1]) < 0xa0);
    for (std::size_t k = 1; valid && k < n; ++k) {
      valid = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
    }
    if (valid) {
      out.append(text.substr(i, n));
      i += n - 1;
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (i < text.size()) out += fmt::format("... ({} more bytes)", text.size() - i);
  return out;
}

std::string format_error(const Error& error) {
  // Messages echo paths and values from files others may have written: no
  // raw control bytes reach the terminal, and no line is unbounded.
  constexpr std::size_t kMaxLine = 1024;
  std::string out = fmt::format("pyshim: error: {}\n", printable(error.message, kMaxLine));
  std::size_t shown = 0;
  for (const std::string& line : error.context) {
    if (++shown > 20) {
      out += fmt::format("  ... ({} more lines)\n", error.context.size() - 20);
      break;
    }
    out += fmt::format("  {}\n", printable(line, kMaxLine));
  }
  if (!error.hint.empty()) out += fmt::format("  hint: {}\n", printable(error.hint, kMaxLine));
  return out;
}

}  // namespace pyshim
