#!/usr/bin/env bash
# Launch-overhead benchmark. Prints numbers; it is not a pass/fail test (the
# facts that must hold are checked by tests/integration/test_hot_path.py).
# Everything is measured in one run, interleaved (tests/bench/launch_bench.c):
# the target directly, a minimal static C wrapper that only execve()s it,
# pyshim on its hot path (a stamped venv launcher, config unchanged), pyshim
# on its parse path (the venv's pyshim.toml edited by hand), and a bash
# `exec -a` script.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PREFIX="${PYSHIM_PREFIX:-$ROOT/build/stage}"
ROUNDS="${BENCH_ROUNDS:-20}"
PER_ROUND="${BENCH_PER_ROUND:-25}"
PY=/usr/bin/python3.11

W="$(mktemp -d /tmp/pyshim-bench.XXXXXX)"
trap 'rm -rf "$W"' EXIT
gcc -O2 -o "$W/launch_bench" "$ROOT/tests/bench/launch_bench.c"
# A fresh copy of the installed prefix, written now like the minimal wrapper
# is: measured here, the same bytes exec'd from an older inode (one that
# strace/perf/valgrind had run) were 60-70 µs slower, which is not the code.
mkdir -p "$W/prefix"
cp -r "$PREFIX/." "$W/prefix/"
PREFIX="$W/prefix"
LAUNCHER="$PREFIX/lib/pyshim/pyshim-launcher"

# A static program that only exits: the target that shows the launcher's own
# cost (time, page faults) with nothing of the target's on top.
printf 'void _start(void) { __asm__ volatile("mov $60, %%eax; xor %%edi, %%edi; syscall"); }\n' \
  >"$W/exit-only.c"
gcc -O2 -static -nostdlib -o "$W/exit-only" "$W/exit-only.c"

# One set of launchers per target, in the 0.2 layout, as users make them:
#   plain/   `python3.11 -m venv` with the minimal wrapper and the bash script
#            in its bin/ (so the interpreter finds the same pyvenv.cfg from
#            argv[0] whichever launcher started it)
#   hot/     the same venv + `pyshim install --python TARGET`: bin/python is
#            a link to the stamped launcher copy bin/python3.11
#   edited/  the same, with pyshim.toml then edited by hand: parsed at launch
setup() {  # name target
  local d="$W/$1" target=$2
  mkdir -p "$d"
  "$PY" -m venv --without-pip "$d/plain"
  gcc -O2 -static -DTARGET="\"$target\"" -o "$d/plain/bin/minimal" \
    "$ROOT/tests/bench/minimal_wrapper.c"
  gcc -O2 -static -nostdlib -fno-stack-protector -DTARGET="\"$target\"" \
    -o "$d/plain/bin/exec-only" "$ROOT/tests/bench/exec_only.c"
  printf '#!/bin/bash\nexec -a "$0" %s "$@"\n' "$target" >"$d/plain/bin/wrapper.sh"
  chmod +x "$d/plain/bin/wrapper.sh"
  for v in hot edited; do
    "$PY" -m venv --without-pip "$d/$v"
    "$PREFIX/bin/pyshim" install "$d/$v" --python "$target" >/dev/null
  done
  printf '\n# edited by hand\n' >>"$d/edited/pyshim.toml"
}
setup true /bin/true
setup python "$PY"
setup exit0 "$W/exit-only"
RESTORE="$W/true/hot/lib/pyshim/libpyshim-restore.so"

# What a user pays: `python -c pass` through a plain venv and through a shim
# venv (`pyshim init`, no preload), and the split of the difference, each
# part added on top of the previous one, all interleaved one launch at a time:
#   plain                 python3.11 -m venv
#   +restore              the same with the restore library preloaded
#   +pth                  the same with the shim venv's site-packages .pth
#                         files copied in (what site.py reads at start-up;
#                         none in a 3.11+ venv: the README, "Why a `.pth`")
#   +exec                 the same started by exec-only (tests/bench/
#                         exec_only.c: static, no libc, one execve): the
#                         floor of any exec-based launcher process
#   shim                  the shim venv: adds the rest of the launcher
#                         process (pyshim's own work above that floor)
#   shim-0.3              the shim venv in 0.3's layout (bin/python3.11 a
#                         launcher copy, pyshim-base-executable.pth), against
#                         shim: before and after in one run
#   shim+hook             a shim venv with one trivial hook (os:getpid, a
#                         module already imported: the hook machinery only),
#                         against shim
# BENCH_PY_LAUNCHES (default 1000) launches of each; medians in µs, the
# fewest page faults of one launch (launcher + interpreter), and the
# syscalls of one launch (strace -f, every process).
LAUNCHES="${BENCH_PY_LAUNCHES:-1000}"
S="$W/split"
mkdir -p "$S"
"$PY" -m venv --without-pip "$S/plain"
"$PY" -m venv --without-pip "$S/pth"
"$PREFIX/bin/pyshim" init "$S/shim" --python "$PY" >/dev/null
"$PREFIX/bin/pyshim" init "$S/hook" --python "$PY" --startup os:getpid >/dev/null
"$PREFIX/bin/pyshim" init "$S/old" --python "$PY" >/dev/null
SP=lib/python3.11/site-packages
# 0.3's layout, made in place (the stamps stay valid: pyshim.toml is not
# touched): bin/python3.11 a copy of the stamped launcher, the .pth.
if [[ -L $S/old/bin/python3.11 ]]; then
  rm "$S/old/bin/python3.11" "$S/old/.pyshim/base/lib"
  cp "$S/old/.pyshim/base/bin/python3.11" "$S/old/bin/python3.11"
  printf "import sys;sys._base_executable=sys.prefix+'/.pyshim/base/bin/python3.11'\n" \
    >"$S/old/$SP/pyshim-base-executable.pth"
fi
gcc -O2 -static -nostdlib -fno-stack-protector -DTARGET="\"$PY\"" -o "$S/pth/bin/exec-only" \
  "$ROOT/tests/bench/exec_only.c"
for f in "$S/shim/$SP"/*.pth; do [[ -e $f ]] && cp "$f" "$S/pth/$SP/"; done
# The copied .pth files point into the shim venv's layout (its base
# launcher): give the copy the same so they run the same code.
[[ -d $S/shim/.pyshim ]] && cp -r "$S/shim/.pyshim" "$S/pth/"
SPLIT_RESTORE="$S/shim/lib/pyshim/libpyshim-restore.so"
split_cmds=(
  plain -- "$S/plain/bin/python" -c pass --
  +restore -- LD_PRELOAD="$SPLIT_RESTORE" "$S/plain/bin/python" -c pass --
  +pth -- LD_PRELOAD="$SPLIT_RESTORE" "$S/pth/bin/python" -c pass --
  +exec -- LD_PRELOAD="$SPLIT_RESTORE" "$S/pth/bin/exec-only" -c pass --
  shim -- "$S/shim/bin/python" -c pass --
  shim-0.3 -- "$S/old/bin/python" -c pass --
  shim+hook -- "$S/hook/bin/python" -c pass
)
"$W/launch_bench" "$LAUNCHES" 1 "${split_cmds[@]}" >"$W/split.txt"
syscalls() {  # every syscall of one launch, all processes
  env "$@" >/dev/null 2>&1 || true
  strace -f -qq -o "$W/split.trace" env "$@" >/dev/null
  # env's own start-up (execve of env up to its execve of the command) is
  # not the launch's: count from the second execve on.
  awk '/execve\(/ { n++ } n >= 2 && !/exited with|killed by|resumed>/ { c++ } END { print c + 0 }' \
    "$W/split.trace"
}
count_all() { strace -qq -o "$W/split.trace" env "$@" >/dev/null; awk '/execve\(/ { n++ } n >= 2 { c++ } END { print c + 0 }' "$W/split.trace"; }
echo
echo "## python -c pass: plain venv vs shim venv and the split (median of $LAUNCHES alternating"
echo "## launches each, µs; faults: fewest of one launch; syscalls: strace -f of one launch)"
declare -A SC
SC[plain]=$(syscalls "$S/plain/bin/python" -c pass)
SC[+restore]=$(syscalls LD_PRELOAD="$SPLIT_RESTORE" "$S/plain/bin/python" -c pass)
SC[+pth]=$(syscalls LD_PRELOAD="$SPLIT_RESTORE" "$S/pth/bin/python" -c pass)
SC[+exec]=$(syscalls LD_PRELOAD="$SPLIT_RESTORE" "$S/pth/bin/exec-only" -c pass)
SC[shim]=$(syscalls "$S/shim/bin/python" -c pass)
SC[shim-0.3]=$(syscalls "$S/old/bin/python" -c pass)
SC[shim+hook]=$(syscalls "$S/hook/bin/python" -c pass)
for n in plain +restore +pth +exec shim shim-0.3 shim+hook; do echo "$n ${SC[$n]}"; done \
  >"$W/split-sc.txt"
awk 'FNR == NR { sc[$1] = $2; next }
  { name[++k] = $1; med[$1] = $2; lo[$1] = $3; hi[$1] = $4; f[$1] = $5 }
  END {
    part["+restore"] = "restore library loaded"; part["+pth"] = "the .pth files (site)"
    part["+exec"] = "one more execve (exec-only: the floor)"
    part["shim"] = "pyshim above that floor"
    part["shim-0.3"] = "0.3 layout (copy + .pth) over shim"
    part["shim+hook"] = "one startup hook over shim"
    against["shim-0.3"] = "shim"; against["shim+hook"] = "shim"
    printf "  %-10s %8s %17s %7s %8s   %s\n", "", "median", "p10-p90", "faults", "syscalls", "this part adds"
    for (i = 1; i <= k; i++) {
      n = name[i]; printf "  %-10s %8.1f  (%6.1f-%7.1f) %7d %8d", n, med[n], lo[n], hi[n], f[n], sc[n]
      if (i > 1) {
        p = (n in against) ? against[n] : name[i - 1]
        printf "   %+7.1f µs %+4d faults %+4d syscalls  %s", med[n] - med[p], f[n] - f[p], sc[n] - sc[p], part[n]
      }
      printf "\n"
    }
    for (j = 0; j < 2; j++) {
      s = j ? "shim-0.3" : "shim"; d = med[s] - med["plain"]
      printf "  %-8s venv vs plain venv: %+.1f µs = %+.2f%% (goal: within 1%%)\n", s, d, 100 * d / med["plain"]
    }
    printf "  the launcher process: %+.1f µs, of which one more execve (the floor) %+.1f µs and\n", med["shim"] - med["+pth"], med["+exec"] - med["+pth"]
    printf "  pyshim'"'"'s own work %+.1f µs\n", med["shim"] - med["+exec"]
  }' "$W/split-sc.txt" "$W/split.txt"
if command -v perf >/dev/null && perf stat -e page-faults true >/dev/null 2>&1; then
  pfs() { perf stat -x, -e page-faults env "$@" 2>&1 >/dev/null | awk -F, '/page-faults/ { print $1 }'; }
  echo "  perf stat -e page-faults (all processes, with env's own): plain $(pfs "$S/plain/bin/python" -c pass)," \
    "+restore $(pfs LD_PRELOAD="$SPLIT_RESTORE" "$S/plain/bin/python" -c pass)," \
    "+pth $(pfs LD_PRELOAD="$SPLIT_RESTORE" "$S/pth/bin/python" -c pass)," \
    "+exec $(pfs LD_PRELOAD="$SPLIT_RESTORE" "$S/pth/bin/exec-only" -c pass)," \
    "shim $(pfs "$S/shim/bin/python" -c pass), shim-0.3 $(pfs "$S/old/bin/python" -c pass)," \
    "shim+hook $(pfs "$S/hook/bin/python" -c pass)"
fi
echo "  restore library: $(stat -c %s "$SPLIT_RESTORE") bytes;" \
  "$(readelf -lW "$SPLIT_RESTORE" | grep -c ' LOAD ') LOAD segments;" \
  "$(readelf -rW "$SPLIT_RESTORE" | grep -c '^[0-9a-f]\{16\} ') relocations;" \
  "$(readelf -dW "$SPLIT_RESTORE" | grep -c NEEDED) DT_NEEDED;" \
  "loader + library syscalls in the interpreter: $(count_all LD_PRELOAD="$SPLIT_RESTORE" \
    "$S/plain/bin/python" -S -c pass) vs $(count_all "$S/plain/bin/python" -S -c pass) without it (-S)"
[[ ${BENCH_ONLY_SPLIT:-} ]] && exit 0


# report.awk: one table from launch_bench's output (name median p10 p90 faults).
cat >"$W/report.awk" <<'EOF'
{ name[NR] = $1; med[$1] = $2; lo[$1] = $3; hi[$1] = $4; faults[$1] = $5 }
END {
  direct = med["direct"]; minimal = med["minimal"] - direct
  for (i = 1; i <= NR; i++) {
    n = name[i]; over = med[n] - direct
    printf "  %-24s %8.1f  (%7.1f-%7.1f)  overhead %+7.1f", n, med[n], lo[n], hi[n], over
    if (n != "direct" && n != "minimal" && minimal > 0) printf "  = %.2fx minimal", over / minimal
    printf "\n"
  }
  if ("direct+restore-preload" in med && "pyshim" in med) {
    in_target = med["direct+restore-preload"] - direct
    launcher = med["pyshim"] - med["direct+restore-preload"]
    printf "  pyshim overhead split: %.1f in the launcher process (%.2fx minimal) + %.1f for the\n", launcher, launcher / minimal, in_target
    printf "  restore library in the target; total %.2fx minimal (goal: <= 1.10x)\n", (launcher + in_target) / minimal
  }
}
EOF
report() {  # title rounds results-file
  echo
  echo "## $1 (median of $(($2 * PER_ROUND)) launches, µs; p10-p90)"
  awk -f "$W/report.awk" "$3"
}

"$W/launch_bench" "$ROUNDS" "$PER_ROUND" \
  direct -- /bin/true -- \
  direct+restore-preload -- LD_PRELOAD="$RESTORE" /bin/true -- \
  minimal -- "$W/true/plain/bin/minimal" -- \
  pyshim -- "$W/true/hot/bin/python" -- \
  pyshim-parse-path -- "$W/true/edited/bin/python" -- \
  bash-exec-a -- "$W/true/plain/bin/wrapper.sh" >"$W/true.txt"
report "target /bin/true: launcher overhead alone" "$ROUNDS" "$W/true.txt"

PR=$((ROUNDS / 2 > 0 ? ROUNDS / 2 : 1))
"$W/launch_bench" "$PR" "$PER_ROUND" \
  direct -- "$W/python/plain/bin/python" -S -c pass -- \
  direct+restore-preload -- LD_PRELOAD="$RESTORE" "$W/python/plain/bin/python" -S -c pass -- \
  minimal -- "$W/python/plain/bin/minimal" -S -c pass -- \
  pyshim -- "$W/python/hot/bin/python" -S -c pass -- \
  pyshim-parse-path -- "$W/python/edited/bin/python" -S -c pass -- \
  bash-exec-a -- "$W/python/plain/bin/wrapper.sh" -S -c pass >"$W/python.txt"
report "target $PY -S -c pass, argv[0] in a venv" "$PR" "$W/python.txt"

# The launcher process alone: its target only exits (it is static, so no
# loader runs and the restore library is not loaded either).
"$W/launch_bench" "$ROUNDS" "$PER_ROUND" \
  direct -- "$W/exit-only" -- \
  minimal -- "$W/exit0/plain/bin/minimal" -- \
  exec-only -- "$W/exit0/plain/bin/exec-only" -- \
  pyshim -- "$W/exit0/hot/bin/python" -- \
  pyshim-parse-path -- "$W/exit0/edited/bin/python" -- \
  bash-exec-a -- "$W/exit0/plain/bin/wrapper.sh" >"$W/exit0.txt"
report "target: a static program that only exits: the launcher process alone" "$ROUNDS" \
  "$W/exit0.txt"
echo
echo "## page faults of the launcher process (fewest of one launch, minus the exit-only target's own)"
awk '{ f[$1] = $5; order[NR] = $1 }
  END {
    for (i = 2; i <= NR; i++) {
      n = order[i]; own = f[n] - f["direct"]
      printf "  %-24s %4d", n, own
      if (n != "minimal" && f["minimal"] > f["direct"]) printf "  = %.2fx minimal", own / (f["minimal"] - f["direct"])
      printf "\n"
    }
  }' "$W/exit0.txt"
if command -v perf >/dev/null && perf stat -e page-faults true >/dev/null 2>&1; then
  pf() { perf stat -x, -e page-faults "$@" 2>&1 >/dev/null | awk -F, '/page-faults/ { print $1 }'; }
  echo "  perf stat -e page-faults (whole process): exit-only $(pf "$W/exit-only"), minimal" \
    "$(pf "$W/exit0/plain/bin/minimal"), pyshim $(pf "$W/exit0/hot/bin/python"), parse path" \
    "$(pf "$W/exit0/edited/bin/python")"
fi

# Startup hooks: a plain venv, a shim venv without hooks and one with a
# trivial hook (os:getpid), all running `-c pass` with site enabled.
"$PREFIX/bin/pyshim" init "$W/nohooks" --python "$PY" >/dev/null
"$PREFIX/bin/pyshim" init "$W/hooks" --python "$PY" --startup os:getpid >/dev/null
"$W/launch_bench" "$PR" "$PER_ROUND" \
  direct -- "$W/python/plain/bin/python" -c pass -- \
  minimal -- "$W/python/plain/bin/minimal" -c pass -- \
  shim-no-hooks -- "$W/nohooks/bin/python" -c pass -- \
  shim-one-hook -- "$W/hooks/bin/python" -c pass >"$W/hooks.txt"
echo
echo "## startup hooks: venv python -c pass (median of $((PR * PER_ROUND)) launches, µs)"
awk '{ med[$1]=$2 }
  END {
    printf "  plain venv %.1f, shim without hooks %.1f (%+.1f), shim with one hook %.1f (%+.1f over no hooks)\n",
      med["direct"], med["shim-no-hooks"], med["shim-no-hooks"] - med["direct"],
      med["shim-one-hook"], med["shim-one-hook"] - med["shim-no-hooks"]
  }' "$W/hooks.txt"

# Syscalls before the exec of the target, counted the same way for every
# launcher: from the launcher's own execve up to (not including) the one that
# starts the target.
trace() { strace -qq -o "$W/trace" "$@" >/dev/null; }
count_before_exec() {
  trace "$@"
  awk '/^execve\(/ { n++; if (n == 2) exit } { c++ } END { print c }' "$W/trace"
}
list_before_exec() {
  trace "$@"
  awk '/^execve\(/ { n++; if (n == 2) exit } { sub(/\(.*/, ""); print }' "$W/trace" |
    sort | uniq -c | sort -rn | awk '{ printf "%s%s x%d", (NR > 1 ? ", " : ""), $2, $1 } END { print "" }'
}
echo
echo "## syscalls before execve of the target (strace; the launcher's own execve counts)"
echo "  minimal wrapper:   $(count_before_exec "$W/exit0/plain/bin/minimal")  ($(list_before_exec "$W/exit0/plain/bin/minimal"))"
echo "  pyshim:            $(count_before_exec "$W/exit0/hot/bin/python")  ($(list_before_exec "$W/exit0/hot/bin/python"))"
echo "  pyshim parse path: $(count_before_exec "$W/exit0/edited/bin/python")  ($(list_before_exec "$W/exit0/edited/bin/python"))"
echo "  pyshim's, in order:"
trace "$W/exit0/hot/bin/python"
awk '/^execve\(/ { n++; if (n == 2) exit } { printf "    %s\n", $0 }' "$W/trace"

echo
echo "## the TOML parser (PYSHIM_LOG=debug's config line; strace: is pyshim.toml read?)"
for v in hot edited; do
  line=$(PYSHIM_LOG=debug "$W/exit0/$v/bin/python" 2>&1 | grep -m1 '^pyshim: debug: config ' || true)
  trace "$W/exit0/$v/bin/python"
  if grep -q 'open.*pyshim\.toml' "$W/trace"; then opened="read"; else opened="not read"; fi
  case "$line" in
    *"not parsed"*) parsed="no" ;;
    *) parsed="yes" ;;
  esac
  printf '  %-7s parsed: %-3s  (%s; strace: pyshim.toml %s)\n' "$v" "$parsed" "${line#pyshim: debug: }" "$opened"
done

echo
echo "## size"
strip -o "$W/minimal.stripped" "$W/true/plain/bin/minimal"
ls -l "$LAUNCHER" "$W/true/hot/.pyshim/base/bin/python3.11" "$W/true/plain/bin/minimal" "$W/minimal.stripped" \
  "$PREFIX/lib/pyshim/libpyshim-restore.so" | awk '{ printf "  %-60s %9d bytes\n", $NF, $5 }'
file -L "$LAUNCHER" | sed 's/^/  /'
