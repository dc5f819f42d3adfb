#include "pyshim/explain.hpp"

#include <algorithm>
#include <cstdint>
#include <sstream>

#include <fmt/format.h>

#include <toml++/toml.h>

namespace pyshim {
namespace {

EnvView planned_env(const Plan& plan) {
  std::size_t size = plan.env.size();
  if (size > 0 && plan.env.back() == nullptr) --size;  // execve's terminator
  return EnvView(plan.env.data(), size);
}

std::optional<std::string> value_of(EnvView env, std::string_view name) {
  std::string_view value = env_get(env, name);
  if (value.data() == nullptr) return std::nullopt;
  return std::string(value);
}

// Whether the caller's list adds anything to what the config put first, so
// "caller's environment" is named as an origin only when it contributed.
bool caller_contributes(std::vector<std::string_view> configured, EnvView caller,
                        std::string_view var, std::string_view separators) {
  std::size_t before = configured.size();
  append_unique(configured, env_get(caller, var), separators);
  return configured.size() > before;
}

std::string position_name(Position position) {
  return position == Position::kAppend ? "append" : "prepend";
}

std::string describe_before(const std::optional<std::string>& before) {
  if (!before) return "unset";
  if (before->empty()) return "empty";
  return fmt::format("{:?}", *before);
}

}  // namespace

std::vector<EnvChange> env_changes(const Launch& launch, EnvView caller) {
  const Config& config = launch.config;
  EnvView planned = planned_env(launch.plan);
  std::vector<EnvChange> out;
  auto consider = [&](std::string_view name, std::vector<std::string> origin, bool restored) {
    std::string_view after = env_get(planned, name);
    if (after.data() == nullptr) return;
    std::optional<std::string> before = value_of(caller, name);
    if (before && *before == after) return;
    EnvChange change;
    change.name = std::string(name);
    change.added = !before;
    change.value = std::string(after);
    change.before = std::move(before);
    change.origin = std::move(origin);
    change.restored_before_main = restored;
    out.push_back(std::move(change));
  };

  std::vector<std::string> origin;
  std::vector<std::string_view> configured;
  for (const Setting& lib : config.preload) {
    origin.push_back(where(config, lib.origin));
    configured.push_back(lib.value);
  }
  origin.emplace_back(kOriginRestoreLibrary);
  configured.push_back(launch.restore_preload);
  if (caller_contributes(configured, caller, kPreloadVar, kPreloadSeparators)) {
    origin.emplace_back(kOriginCaller);
  }
  consider(kPreloadVar, std::move(origin), true);

  origin.clear();
  configured.clear();
  for (const Setting& dir : config.library_path) {
    origin.push_back(where(config, dir.origin));
    configured.push_back(dir.value);
  }
  if (caller_contributes(configured, caller, kLibraryPathVar, kLibraryPathSeparators)) {
    origin.emplace_back(kOriginCaller);
  }
  consider(kLibraryPathVar, std::move(origin), true);

  // By position in the file: the config keeps [env] in key order.
  std::vector<const EnvSetting*> vars;
  for (const EnvSetting& var : config.env) vars.push_back(&var);
  std::stable_sort(vars.begin(), vars.end(), [](const EnvSetting* a, const EnvSetting* b) {
    return std::pair(a->origin.line, a->origin.column) <
           std::pair(b->origin.line, b->origin.column);
  });
  for (const EnvSetting* var : vars) {
    std::vector<std::string> from = {where(config, var->origin)};
    std::optional<std::string> kept;
    if (var->mode != EnvMode::kSet) {
      // What plan_env reads: the caller's last entry of the name; an empty
      // one contributes nothing.
      std::string_view value;
      for (const char* entry : caller) {
        if (env_name(entry) == var->name)
          value = std::string_view(entry).substr(var->name.size() + 1);
      }
      if (!value.empty()) {
        kept = std::string(value);
        from.emplace_back(kOriginCaller);
      }
    }
    std::size_t count = out.size();
    consider(var->name, std::move(from), false);
    if (out.size() > count) {
      out.back().mode = var->mode;
      out.back().caller_part = std::move(kept);
    }
  }

  origin.clear();
  for (const Setting& hook : config.startup) origin.push_back(where(config, hook.origin));
  for (const Setting& dir : config.python_path) origin.push_back(where(config, dir.origin));
  consider(kStartupVar, std::move(origin), true);

  consider(kOrigPreloadVar, {std::string(kOriginBookkeeping)}, true);
  consider(kOrigLibraryPathVar, {std::string(kOriginBookkeeping)}, true);
  consider(kTargetVar, {std::string(kOriginBookkeeping)}, true);

  // Anything a later version of the plan sets that is not named above, so
  // that show never hides a change.
  for (const char* entry : planned) {
    std::string_view text(entry);
    std::string_view name = env_name(text);
    bool listed = false;
    for (const EnvChange& change : out) listed = listed || change.name == name;
    if (!listed) consider(name, {std::string(kOriginPlan)}, false);
  }
  return out;
}

std::string_view source_name(ConfigSource source) {
  switch (source) {
    case ConfigSource::kEnvVar:
      return "PYSHIM_CONFIG";
    case ConfigSource::kStamp:
      return "stamp";
    case ConfigSource::kFile:
      break;
  }
  return "file";
}

std::string_view source_note(ConfigSource source) {
  switch (source) {
    case ConfigSource::kEnvVar:
      return "  (from PYSHIM_CONFIG)";
    case ConfigSource::kStamp:
      return "  (stamped in the launcher: not parsed at launch)";
    case ConfigSource::kFile:
      break;
  }
  return "  (parsed at launch)";
}

std::string show_text(const LaunchRequest& request, const Launch& launch) {
  const Config& config = launch.config;
  std::string out;
  // Paths and values from files others may write, and the caller's
  // variables, are shown with control bytes escaped (printable), in full.
  auto shown = [](std::string_view text) { return printable(text, SIZE_MAX); };
  auto line = [&out, &shown](std::string_view label, std::string_view text) {
    out += fmt::format("{:<17}{}\n", label, shown(text));
  };
  line("launcher:", request.invoked_path);
  // A stamp made with no file (`pyshim launcher` without --config) names
  // where a pyshim.toml would take over; say there is none.
  bool no_file = launch.source == ConfigSource::kStamp && request.stamp &&
                 request.stamp->identity == FileIdentity{};
  line("config:", fmt::format("{}{}", config.file,
                              no_file ? "  (none: the launcher's stamp is its whole config)"
                                      : source_note(launch.source)));
  line("interpreter:",
       fmt::format("{}  ({})", launch.plan.interpreter, where(config, config.interpreter.origin)));
  line("argv[0]:", launch.plan.argv0);
  line("restore library:", launch.restore_library);
  // The other top-level keys, from the key table (in its order): a new key
  // of a kind shown here appears without an edit. Sections show through the
  // environment below ([env], [python]) or not at all ([dynlib]).
  for (const ConfigKey& key : config_keys()) {
    if (!key.section.empty()) continue;
    std::string label = fmt::format("{}:", key.name);
    switch (key.kind) {
      case KeyKind::kPath:  // the interpreter, above, as the plan resolved it
      case KeyKind::kEnv:
        break;
      case KeyKind::kPaths:
      case KeyKind::kPreloads:
      case KeyKind::kStrings:
      case KeyKind::kHooks: {
        const std::vector<Setting>& items = config.*key.many;
        if (items.empty()) line(label, "(none)");
        for (std::size_t i = 0; i < items.size(); ++i) {
          line(i == 0 ? label : "",
               fmt::format("{}  ({})", items[i].value, where(config, items[i].origin)));
        }
        break;
      }
      case KeyKind::kPosition:
        // Says where library_path goes: nothing to say without one.
        if (!config.library_path.empty()) {
          Origin position = config.library_path_position_origin;
          line("", fmt::format("{}ed to the caller's LD_LIBRARY_PATH  ({})",
                               position_name(config.library_path_position),
                               position.line == 0 ? "default" : where(config, position)));
        }
        break;
    }
  }

  std::vector<EnvChange> changes = env_changes(launch, request.env);
  out += "\nenvironment of the interpreter, compared with this one:\n";
  if (changes.empty()) out += "  (no changes)\n";
  for (const EnvChange& change : changes) {
    out += fmt::format("  {}={}\n", shown(change.name), shown(change.value));
    out += fmt::format("    {}, before: {}\n", change.added ? "added" : "changed",
                       shown(describe_before(change.before)));
    out += fmt::format("    from: {}\n", shown(fmt::format("{}", fmt::join(change.origin, ", "))));
    if (change.name == kPreloadVar || change.name == kLibraryPathVar) {
      out += fmt::format("    restored to {} by the restore library before main()\n",
                         change.before ? "the caller's value" : "unset");
    } else if (change.name == kStartupVar) {
      out +=
          "    removed by the restore library before main(); the startup hooks read it from\n"
          "    /proc/self/environ\n";
    } else if (!change.restored_before_main) {
      if (change.mode && *change.mode != EnvMode::kSet) {
        out += fmt::format("    {}: {}\n", env_mode_name(*change.mode),
                           change.caller_part
                               ? fmt::format("the caller's part is {}",
                                             shown(fmt::format("{:?}", *change.caller_part)))
                               : std::string("the caller had none"));
      }
      out += "    kept: inherited by every child\n";
    }
  }
  out +=
      "\nLD_PRELOAD and LD_LIBRARY_PATH are restored to the caller's values inside the\n"
      "interpreter before main(), so children not started through the launcher (/bin/sh,\n"
      "git, compilers) get the caller's values; Python children started through\n"
      "sys.executable go through the launcher again and get the same plan.\n";
  return out;
}

std::string show_json(const LaunchRequest& request, const Launch& launch) {
  const Config& config = launch.config;
  auto settings = [&config](const std::vector<Setting>& list) {
    toml::array out;
    for (const Setting& s : list) {
      out.push_back(toml::table{{"path", s.value}, {"origin", where(config, s.origin)}});
    }
    return out;
  };

  toml::array env;
  for (const EnvChange& change : env_changes(launch, request.env)) {
    toml::array origin;
    for (const std::string& o : change.origin) origin.push_back(o);
    toml::table entry{{"name", change.name},
                      {"action", change.added ? "added" : "changed"},
                      {"value", change.value},
                      {"origin", std::move(origin)},
                      {"restored_before_main", change.restored_before_main}};
    if (change.before) entry.insert("before", *change.before);
    // Only for the adding forms: a set entry keeps schema 1's keys.
    if (change.mode && *change.mode != EnvMode::kSet) {
      entry.insert("mode", env_mode_name(*change.mode));
    }
    if (change.caller_part) entry.insert("caller_part", *change.caller_part);
    env.push_back(std::move(entry));
  }

  toml::table root{
      {"schema", kShowSchemaVersion},
      {"launcher", request.invoked_path},
      {"config", config.file},
      {"config_source", source_name(launch.source)},
      {"interpreter", toml::table{{"path", launch.plan.interpreter},
                                  {"origin", where(config, config.interpreter.origin)}}},
      {"argv0", launch.plan.argv0},
      {"restore_library", launch.restore_library},
      {"env", std::move(env)},
  };
  // The other top-level keys, from the key table, as show_text lists them.
  for (const ConfigKey& key : config_keys()) {
    if (!key.section.empty()) continue;
    switch (key.kind) {
      case KeyKind::kPath:
      case KeyKind::kEnv:
        break;
      case KeyKind::kPaths:
      case KeyKind::kPreloads:
      case KeyKind::kStrings:
      case KeyKind::kHooks:
        root.insert(key.name, settings(config.*key.many));
        break;
      case KeyKind::kPosition:
        root.insert(key.name, position_name(config.library_path_position));
        break;
    }
  }
  std::ostringstream stream;
  stream << toml::json_formatter{root} << '\n';
  return std::move(stream).str();
}

// ---------------------------------------------------------------- doctor

std::string format_check(const Check& check) {
  // As format_error: paths and values from files others may write reach the
  // terminal escaped and bounded.
  constexpr std::size_t kMaxLine = 1024;
  auto shown = [](const std::string& text) { return printable(text, kMaxLine); };
  std::string out;
  switch (check.state) {
    case Check::State::kPass:
      out = fmt::format("✓ {}\n", shown(check.what));
      break;
    case Check::State::kSkip:
      out = fmt::format("- {}: skipped ({})\n", shown(check.what), shown(check.reason));
      break;
    case Check::State::kFail:
      out = fmt::format("✗ {}: {}\n", shown(check.what), shown(check.reason));
      break;
  }
  for (const std::string& line : check.context) out += fmt::format("  {}\n", shown(line));
  if (!check.fix.empty()) out += fmt::format("  fix: {}\n", shown(check.fix));
  return out;
}

namespace {

std::string check_message(const Check& check) {
  std::string out;
  switch (check.state) {
    case Check::State::kPass:
      out = check.what;
      break;
    case Check::State::kSkip:
      out = fmt::format("{}: skipped ({})", check.what, check.reason);
      break;
    case Check::State::kFail:
      out = fmt::format("{}: {}", check.what, check.reason);
      break;
  }
  for (const std::string& line : check.context) out += fmt::format("\n{}", line);
  return out;
}

std::string to_json(const toml::table& root) {
  std::ostringstream stream;
  stream << toml::json_formatter{root} << '\n';
  return std::move(stream).str();
}

}  // namespace

std::string doctor_json(std::string_view launcher, bool ok, const std::vector<Check>& checks) {
  toml::array list;
  for (const Check& check : checks) {
    list.push_back(toml::table{{"id", check.id},
                               {"ok", check.state == Check::State::kPass},
                               {"message", check_message(check)},
                               {"fix", check.fix}});
  }
  return to_json(toml::table{{"schema", kDoctorSchemaVersion},
                             {"launcher", launcher},
                             {"ok", ok},
                             {"checks", std::move(list)}});
}

std::string error_json(const Error& error) {
  toml::array context;
  for (const std::string& line : error.context) context.push_back(line);
  return to_json(toml::table{{"schema", 1},
                             {"error", toml::table{{"message", error.message},
                                                   {"context", std::move(context)},
                                                   {"hint", error.hint},
                                                   {"exit_code", error.exit_code()}}}});
}

ProbeOutput ProbeOutput::parse(std::string_view text) {
  ProbeOutput probe;
  while (!text.empty()) {
    std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;  // not the probe's: e.g. a stray print
    std::string value;
    value.reserve(line.size() - eq - 1);
    for (std::size_t i = eq + 1; i < line.size(); ++i) {
      if (line[i] == '\\' && i + 1 < line.size()) {
        ++i;
        value.push_back(line[i] == 'n' ? '\n' : line[i]);
      } else {
        value.push_back(line[i]);
      }
    }
    probe.entries_.emplace_back(std::string(line.substr(0, eq)), std::move(value));
  }
  return probe;
}

bool ProbeOutput::has(std::string_view key) const {
  return get(key).has_value();
}

std::optional<std::string> ProbeOutput::get(std::string_view key) const {
  for (const auto& [k, v] : entries_) {
    if (k == key) return v;
  }
  return std::nullopt;
}

std::vector<std::string> ProbeOutput::all(std::string_view key) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : entries_) {
    if (k == key) out.push_back(v);
  }
  return out;
}

namespace {

// The mapped file (from a *.map line of the probe) that is this library:
// the same real path, else the same file name, since /proc/PID/maps shows
// the path the loader opened after symlinks were resolved.
std::optional<std::string> mapped_as(const Library& lib, const std::vector<std::string>& maps) {
  for (const std::string& m : maps) {
    if (m == lib.path || (!lib.real.empty() && m == lib.real)) return m;
  }
  for (const std::string& m : maps) {
    std::string_view name = basename(m);
    if (name == basename(lib.path) || (!lib.real.empty() && name == basename(lib.real))) {
      return m;
    }
  }
  return std::nullopt;
}

constexpr std::string_view kStderrPrefix = "stderr: ";

std::string describe_value(const std::optional<std::string>& value) {
  if (!value) return "unset";
  if (value->empty()) return "set to empty";
  return fmt::format("{:?}", *value);
}

// The last distinct lines of the launcher's stderr, as context for a failed
// check (the loader repeats its complaint in every process it starts).
std::vector<std::string> stderr_context(std::string_view err, std::size_t max_lines = 6) {
  std::vector<std::string_view> lines;
  while (!err.empty()) {
    std::size_t end = err.find('\n');
    std::string_view line = err.substr(0, end);
    err.remove_prefix(end == std::string_view::npos ? err.size() : end + 1);
    if (!line.empty() && std::find(lines.begin(), lines.end(), line) == lines.end()) {
      lines.push_back(line);
    }
  }
  std::vector<std::string> out;
  std::size_t first = lines.size() > max_lines ? lines.size() - max_lines : 0;
  for (std::size_t i = first; i < lines.size(); ++i) {
    out.push_back(fmt::format("{}{}", kStderrPrefix, lines[i]));
  }
  return out;
}

void check_mapped(std::vector<Check>& out, const RoundTrip& trip, const ProbeOutput& probe,
                  std::string_view id, std::string_view where, std::string_view key) {
  std::vector<std::string> maps = probe.all(key);
  for (const Library& lib : trip.preloads) {
    std::string what = fmt::format("preload mapped in {}: {}", where, lib.path);
    if (auto mapped = mapped_as(lib, maps)) {
      out.push_back(Check::pass(std::string(id), *mapped == lib.path || *mapped == lib.real
                                                     ? what
                                                     : fmt::format("{} (as {})", what, *mapped)));
    } else {
      out.push_back(Check::fail(
          std::string(id), std::move(what), "not in /proc/self/maps",
          "the loader skipped it; its reason is in an \"ld.so\" line of the launcher's stderr "
          "(wrong ELF class or machine, a statically linked interpreter, an unreadable file)",
          stderr_context(trip.err)));
    }
  }
}

std::vector<Check> all_round_trip_checks(const RoundTrip& trip) {
  std::vector<Check> out;
  std::string rerun = fmt::format(
      "run `PYSHIM_LOG=debug {} -c pass` to see what the launcher and the interpreter do",
      trip.launcher);
  if (trip.timed_out) {
    out.push_back(Check::fail("round_trip", "live round trip",
                              fmt::format("no answer within {} s", trip.timeout_seconds), rerun,
                              stderr_context(trip.err)));
    return out;
  }
  ProbeOutput probe = ProbeOutput::parse(trip.out);
  if (!probe.has("done")) {
    out.push_back(
        Check::fail("round_trip", "live round trip",
                    fmt::format("`{} -c <probe>` did not run the probe to the end ({}{})",
                                trip.launcher, trip.status, probe.empty() ? ", no output" : ""),
                    rerun, stderr_context(trip.err)));
    return out;
  }

  std::string executable = probe.get("executable").value_or("");
  std::string expected = lexically_normal(trip.launcher);
  if (lexically_normal(executable) == expected) {
    out.push_back(Check::pass("sys_executable",
                              fmt::format("sys.executable is the launcher: {}", trip.launcher)));
  } else {
    out.push_back(Check::fail(
        "sys_executable", "sys.executable is the launcher",
        fmt::format("it is {:?}, not {}", executable, trip.launcher),
        "children started through sys.executable would bypass the launcher: point 'interpreter' "
        "at a CPython or PyPy binary that takes sys.executable from argv[0]"));
  }

  check_mapped(out, trip, probe, "preload_mapped", "the interpreter", "parent.map");

  if (auto error = probe.get("spawn.error")) {
    out.push_back(Check::fail("spawn_worker", "a multiprocessing spawn worker starts", *error,
                              "run a spawn worker by hand through the launcher to see the error",
                              stderr_context(trip.err)));
  } else {
    check_mapped(out, trip, probe, "spawn_preload_mapped", "a spawn worker", "spawn.map");
  }

  if (auto error = probe.get("sh.error")) {
    out.push_back(Check::fail("sh_child", "a /bin/sh child starts", *error,
                              "check that /bin/sh runs in this environment",
                              stderr_context(trip.err)));
    return out;
  }
  std::string restore_fix =
      "the restore library did not run before main(): check that it is in LD_PRELOAD (`pyshim "
      "show`) and that the interpreter is dynamically linked";
  auto env_check = [&](std::string id, std::string_view var, std::string_view key,
                       const std::optional<std::string>& caller) {
    std::optional<std::string> child = probe.get(key);
    std::string what =
        fmt::format("/bin/sh child gets the caller's {} ({})", var, describe_value(caller));
    if (child == caller) {
      out.push_back(Check::pass(std::move(id), std::move(what)));
    } else {
      out.push_back(Check::fail(std::move(id), std::move(what),
                                fmt::format("it got {}", describe_value(child)), restore_fix));
    }
  };
  env_check("sh_ld_preload", kPreloadVar, "sh.ld_preload", trip.caller_preload);
  env_check("sh_ld_library_path", kLibraryPathVar, "sh.ld_library_path", trip.caller_library_path);

  // A library the caller preloads itself is rightly mapped in the child too.
  std::vector<std::string_view> callers_own;
  if (trip.caller_preload) append_unique(callers_own, *trip.caller_preload, kPreloadSeparators);
  std::vector<std::string> leaked;
  std::vector<std::string> maps = probe.all("sh.map");
  std::vector<Library> ours = trip.preloads;
  ours.push_back(trip.restore_library);
  for (const Library& lib : ours) {
    bool callers = false;
    for (std::string_view c : callers_own) callers = callers || c == lib.path || c == lib.real;
    if (callers) continue;
    if (auto mapped = mapped_as(lib, maps)) leaked.push_back(*mapped);
  }
  std::string what = "/bin/sh child has no preload or restore library mapped";
  if (leaked.empty()) {
    out.push_back(Check::pass("sh_nothing_mapped", what));
  } else {
    out.push_back(Check::fail("sh_nothing_mapped", what,
                              fmt::format("mapped: {}", fmt::join(leaked, ", ")), restore_fix));
  }

  std::vector<std::string> bookkeeping = probe.all("sh.bookkeeping");
  what = "/bin/sh child has no PYSHIM_ORIG_* variables";
  if (bookkeeping.empty()) {
    out.push_back(Check::pass("sh_no_bookkeeping", what));
  } else {
    out.push_back(Check::fail("sh_no_bookkeeping", what,
                              fmt::format("it has {}", fmt::join(bookkeeping, ", ")), restore_fix));
  }
  return out;
}

}  // namespace

std::vector<Check> import_checks(const ImportTrip& trip) {
  std::vector<Check> out;
  auto verdict = [&trip](const ImportRun& run) {
    std::vector<std::string> context;
    if (!trip.run_as.empty()) context.push_back(fmt::format("run as {}", trip.run_as));
    for (std::string& line : stderr_context(run.err, 10)) context.push_back(std::move(line));
    std::string reason = run.timed_out
                             ? fmt::format("it did not finish within {} s", run.timeout_seconds)
                             : fmt::format("it could not import it ({})", run.status);
    return std::pair(std::move(reason), std::move(context));
  };

  std::string what = fmt::format("{} imports in the interpreter", trip.module);
  if (trip.interpreter.ok) {
    out.push_back(Check::pass("import", what));
  } else {
    auto [reason, context] = verdict(trip.interpreter);
    out.push_back(Check::fail(
        "import", what, std::move(reason),
        fmt::format("make {} importable by the launcher's interpreter: install it into the venv, "
                    "or add its folder to pyshim.toml ([env] PYTHONPATH = {{ prepend = \"DIR\" }} "
                    "or [python] path)",
                    trip.module),
        std::move(context)));
  }

  what = fmt::format("{} imports in a spawn worker", trip.module);
  if (!trip.worker.ran) {
    out.push_back(Check::skip("import_spawn", what, "the interpreter cannot import it"));
  } else if (trip.worker.ok) {
    out.push_back(Check::pass("import_spawn", what));
  } else {
    auto [reason, context] = verdict(trip.worker);
    out.push_back(Check::fail(
        "import_spawn", what, std::move(reason),
        "a spawn worker starts afresh through sys.executable (the launcher) with the parent's "
        "environment: give what the module needs through pyshim.toml (preload, [env], "
        "[python] path) rather than setting it in the parent at run time",
        std::move(context)));
  }
  return out;
}

std::vector<Check> round_trip_checks(const RoundTrip& trip) {
  std::vector<Check> checks = all_round_trip_checks(trip);
  // The launcher's stderr once, under the first failure that quotes it.
  bool shown = false;
  for (Check& check : checks) {
    auto is_stderr = [](const std::string& line) { return line.starts_with(kStderrPrefix); };
    if (std::none_of(check.context.begin(), check.context.end(), is_stderr)) continue;
    if (shown) std::erase_if(check.context, is_stderr);
    shown = true;
  }
  return checks;
}

}  // namespace pyshim
