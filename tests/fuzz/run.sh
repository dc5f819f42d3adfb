#!/usr/bin/env bash
# Fuzz the launcher's config reader and planner, the stamp decoder, and the
# ELF and loader-cache readers of tool mode, with
# libFuzzer (clang from Debian: packages clang and libclang-rt-14-dev, plus
# libfmt-dev and libtomlplusplus-dev; scripts/dev.sh installs them all).
#
#   tests/fuzz/run.sh [BUILD_DIR]          default BUILD_DIR: /tmp/pyshim-fuzz
#
#   FUZZ_SECONDS   total fuzzing time, split evenly across the targets (default 60)
#   FUZZ_MAX_LEN   largest input libFuzzer generates, in bytes (default 16384)
#   FUZZ_TARGETS   which targets to run, e.g. "config" (default: all there are)
#   CXX            the clang++ to use (default clang++-14, else clang++)
#   FUZZ_PATCH_TOML=0  fuzz the unpatched toml++ headers. By default the fuzz
#                  build, like the project's build (cmake/Dependencies.cmake),
#                  uses a copy with the upstream fix for toml++ 3.3.0's UB on
#                  non-ASCII input (see below)
#   FUZZ_TOML_ASSERTS=1  keep toml++'s internal assertions (see below)
#
# Each target is built with -fsanitize=fuzzer,address,undefined from only the
# pure sources it needs, replays the reproducers in tests/fuzz/crashes/TARGET/
# (bugs found earlier: they must stay fixed), then fuzzes a fresh copy of its
# seed corpus tests/fuzz/corpus/TARGET/. Any crash, failed invariant, UB,
# leak, timeout (-timeout=5 per input) or out-of-memory (2048 MB) makes this
# script exit non-zero; the input that caused it is kept in
# BUILD_DIR/artifacts/TARGET/ and its path printed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FUZZ="$ROOT/tests/fuzz"
BUILD="$(mkdir -p "${1:-/tmp/pyshim-fuzz}" && cd "${1:-/tmp/pyshim-fuzz}" && pwd)"
TOTAL_SECONDS="${FUZZ_SECONDS:-60}"
MAX_LEN="${FUZZ_MAX_LEN:-16384}"

if [[ -z "${CXX:-}" ]]; then
  if command -v clang++-14 >/dev/null; then CXX=clang++-14; else CXX=clang++; fi
fi

# Targets: name, then the sources beside tests/fuzz/NAME_fuzz.cpp. Only pure
# code: no I/O, no main().
declare -A SOURCES=(
  [config]="src/core/config.cpp src/core/plan.cpp src/core/path.cpp"
  [stamp]="src/core/stamp.cpp src/core/config.cpp src/core/plan.cpp src/core/path.cpp"
  [elf]="src/core/elf.cpp src/core/extensions.cpp src/core/path.cpp"
)
TARGETS=(config stamp elf)
if [[ -n "${FUZZ_TARGETS:-}" ]]; then
  for target in $FUZZ_TARGETS; do
    if [[ -z "${SOURCES[$target]:-}" ]]; then
      echo "fuzz: no target '$target' (there are: ${TARGETS[*]})" >&2
      exit 2
    fi
  done
  read -r -a TARGETS <<<"$FUZZ_TARGETS"
fi

# ---------------------------------------------------------------- checks

missing=()
command -v "$CXX" >/dev/null || missing+=(clang)
[[ -f /usr/include/toml++/toml.h ]] || missing+=(libtomlplusplus-dev)
[[ -f /usr/include/fmt/format.h ]] || missing+=(libfmt-dev)
if ((${#missing[@]} == 0)) &&
  ! echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' |
  "$CXX" -x c++ -fsanitize=fuzzer,address,undefined - -o "$BUILD/.probe" 2>/dev/null; then
  missing+=(libclang-rt-14-dev)
fi
rm -f "$BUILD/.probe"
if ((${#missing[@]})); then
  echo "fuzz: missing Debian packages: ${missing[*]}" >&2
  echo "  hint: apt-get install ${missing[*]}  (or run scripts/dev.sh build)" >&2
  exit 2
fi

# ----------------------------------------------------------------- build

# As the main build uses them (cmake/Dependencies.cmake): fmt and toml++
# header-only, toml++ without exceptions. No spdlog: only the CLI uses it,
# and the targets are built from pure core sources.
DEFINES=(-DFMT_HEADER_ONLY=1 -DTOML_HEADER_ONLY=1 -DTOML_EXCEPTIONS=0)
# shellcheck disable=SC2054 # the commas are -fsanitize= syntax
CXXFLAGS_FUZZ=(-std=c++20 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined
  -fno-sanitize-recover=all -Wall -Wextra -I"$ROOT/src/core/include" "${DEFINES[@]}")
# The launcher is built with -DNDEBUG (Release), which compiles toml++'s
# internal assertions out (GCC has no __builtin_assume to turn them into), so
# by default they are off here too, and a failure is one the shipped binary
# has. NDEBUG itself is not defined: under clang toml++ would then turn them
# into __builtin_assume(), i.e. silent UB. FUZZ_TOML_ASSERTS=1 keeps them: it
# finds toml++ bugs that are harmless in Release (tests/fuzz/crashes/config/
# toml-assert-*, which then fail the replay).
if [[ "${FUZZ_TOML_ASSERTS:-0}" != 1 ]]; then
  CXXFLAGS_FUZZ+=("-DTOML_ASSERT(expr)=static_assert(true)")
fi

# toml++ 3.3.0 (Debian 12) reaches __builtin_unreachable() in
# is_non_ascii_horizontal_whitespace() for many non-ASCII characters (e.g. a
# bare key CAFÉ): marzer/tomlplusplus#190 and #295, fixed upstream by #305
# ("default: return false;"). The project's build applies the same fix
# (cmake/Dependencies.cmake), so by default the fuzz build does too;
# FUZZ_PATCH_TOML=0 fuzzes the headers as Debian ships them.
if [[ "${FUZZ_PATCH_TOML:-1}" == 1 ]]; then
  rm -rf "$BUILD/include"
  mkdir -p "$BUILD/include"
  cp -r /usr/include/toml++ "$BUILD/include/"
  unicode="$BUILD/include/toml++/impl/unicode_autogenerated.h"
  sed -i '/is_non_ascii_horizontal_whitespace/,/^\t}/ s/default: TOML_UNREACHABLE;/default: return false;/' \
    "$unicode"
  if ! grep -q 'default: return false;' "$unicode"; then
    echo "fuzz: FUZZ_PATCH_TOML: the toml++ headers changed; patch not applied" >&2
    exit 2
  fi
  CXXFLAGS_FUZZ=(-I"$BUILD/include" "${CXXFLAGS_FUZZ[@]}")
  echo "== fuzz: using toml++ patched for tomlplusplus#190/#295 (FUZZ_PATCH_TOML=1)"
fi

echo "== fuzz: building with $("$CXX" --version | head -n1) in $BUILD"
mkdir -p "$BUILD/obj"
objects_of() {  # target -> object paths
  local src
  for src in ${SOURCES[$1]}; do echo "$BUILD/obj/$(basename "${src%.cpp}").o"; done
}
# Each source once, in parallel (config.cpp, with toml++, is the slow one).
declare -A seen=()
pids=()
for target in "${TARGETS[@]}"; do
  for src in ${SOURCES[$target]}; do
    [[ -n "${seen[$src]:-}" ]] && continue
    seen[$src]=1
    "$CXX" "${CXXFLAGS_FUZZ[@]}" -fsanitize=fuzzer-no-link -c "$ROOT/$src" \
      -o "$BUILD/obj/$(basename "${src%.cpp}").o" &
    pids+=($!)
  done
done
for pid in "${pids[@]}"; do wait "$pid"; done
for target in "${TARGETS[@]}"; do
  mapfile -t objects < <(objects_of "$target")
  "$CXX" "${CXXFLAGS_FUZZ[@]}" -fsanitize=fuzzer "$FUZZ/${target}_fuzz.cpp" "${objects[@]}" \
    -o "$BUILD/${target}_fuzz"
done

# A dictionary of the config's keys, printed from the key table
# (tests/fuzz/config_dict.cpp), then the TOML and environment syntax the
# fuzzer would take long to guess.
"$CXX" "${CXXFLAGS_FUZZ[@]}" "$FUZZ/config_dict.cpp" "$BUILD/obj/config.o" "$BUILD/obj/path.o" \
  -o "$BUILD/config_dict"
ASAN_OPTIONS=detect_leaks=0 "$BUILD/config_dict" >"$BUILD/config.dict"
cat >>"$BUILD/config.dict" <<'EOF'
"PYTHONPATH"
"PYTHONPATH="
" = "
" = \""
" = ["
"\x0a#@env\x0a"
"@argv0="
"@restore="
"LD_PRELOAD="
"LD_LIBRARY_PATH="
"PYSHIM_ORIG_LD_PRELOAD="
"PYSHIM_ORIG_LD_PRELOAD=LD_PRELOAD="
"PYSHIM_ORIG_LD_LIBRARY_PATH="
"PYSHIM_ORIG_LD_LIBRARY_PATH=LD_LIBRARY_PATH="
"PYSHIM_STARTUP="
"/fuzz/lib/pyshim/libpyshim-restore.so"
"/usr/bin/python3.11"
"../"
"./"
"pkg.mod:func"
"\"\"\""
"'''"
"[["
"]]"
"{ "
" }"
"\\u0000"
"\\U0001F40D"
"\\n"
"\xc3\xa9"
"\xff"
"0x7f"
"1979-05-27T07:32:00Z"
"true"
"inf"
"nan"
EOF

# ------------------------------------------------------------------- run

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

per_target=$((TOTAL_SECONDS / ${#TARGETS[@]}))
((per_target >= 1)) || per_target=1
status=0
summary=()
for target in "${TARGETS[@]}"; do
  binary="$BUILD/${target}_fuzz"
  artifacts="$BUILD/artifacts/$target"
  corpus="$BUILD/corpus/$target"
  log="$BUILD/$target.log"
  rm -rf "$corpus" "$artifacts"
  mkdir -p "$corpus" "$artifacts"
  cp "$FUZZ/corpus/$target/"* "$corpus/"
  dict=()
  [[ -f "$BUILD/$target.dict" ]] && dict=(-dict="$BUILD/$target.dict")

  # Earlier findings must stay fixed.
  shopt -s nullglob
  repros=("$FUZZ/crashes/$target/"*)
  shopt -u nullglob
  if ((${#repros[@]})); then
    echo "== fuzz: $target: replaying ${#repros[@]} reproducer(s) from tests/fuzz/crashes/$target"
    if ! "$binary" -timeout=5 -rss_limit_mb=2048 "${repros[@]}" >"$BUILD/$target.replay.log" 2>&1; then
      tail -n 60 "$BUILD/$target.replay.log" >&2
      echo "fuzz: $target: a saved reproducer fails again (log: $BUILD/$target.replay.log)" >&2
      status=1
      summary+=("$target: FAILED replaying tests/fuzz/crashes/$target")
      continue
    fi
  fi

  echo "== fuzz: $target for ${per_target}s (log: $log)"
  rc=0
  "$binary" -max_total_time="$per_target" -timeout=5 -rss_limit_mb=2048 -detect_leaks=1 \
    -max_len="$MAX_LEN" -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" \
    "$corpus" >"$log" 2>&1 || rc=$?

  figure() { sed -n "s/^stat::$1: *//p" "$log" | tail -n1; }
  last="$(grep -E '^#[0-9]+' "$log" | tail -n1 || true)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
  corp="$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$last")"
  line="$target: $(figure number_of_executed_units) execs, $(figure average_exec_per_sec) exec/s,"
  line+=" $(figure new_units_added) new units, corpus ${corp:-?} (units/size),"
  line+=" cov ${cov:-?}, ft ${ft:-?}, peak RSS $(figure peak_rss_mb) MB,"
  line+=" slowest input $(figure slowest_unit_time_sec)s"
  if ((rc != 0)); then
    status=1
    grep -E -A40 '^(==[0-9]+==ERROR|\*\*\* pyshim fuzz|.*runtime error:|.*Assertion .* failed|ALARM|==[0-9]+== ERROR)' "$log" |
      head -n 80 >&2 || tail -n 60 "$log" >&2
    shopt -s nullglob
    found=("$artifacts"/*)
    shopt -u nullglob
    echo "fuzz: $target FAILED (exit $rc); log: $log" >&2
    for f in "${found[@]}"; do
      echo "  reproducer: $f  (rerun: $binary $f)" >&2
    done
    summary+=("FAILED $line")
  else
    summary+=("$line")
  fi
done

echo "== fuzz: results (${TOTAL_SECONDS}s total)"
printf '  %s\n' "${summary[@]}"
exit "$status"
