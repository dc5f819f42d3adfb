#!/usr/bin/env bash
# Launch-overhead benchmark. Prints numbers; it is not a pass/fail test.
# Everything is measured in the same run: the target directly, a minimal
# static C wrapper that only execve()s it, pyshim, and a bash `exec -a` script.
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

# One launcher set per target: a venv-shaped layout (bin/python is a symlink
# to the installed pyshim, pyshim.toml one level up), as users install it.
setup() {  # name target
  local name=$1 target=$2 d="$W/$1"
  mkdir -p "$d/venv/bin"
  gcc -O2 -static -DTARGET="\"$target\"" -o "$d/minimal" "$ROOT/tests/bench/minimal_wrapper.c"
  ln -s "$PREFIX/bin/pyshim" "$d/venv/bin/python"
  printf 'interpreter = "%s"\n' "$target" >"$d/venv/pyshim.toml"
  printf '#!/bin/bash\nexec -a "$0" %s "$@"\n' "$target" >"$d/wrapper.sh"
  chmod +x "$d/wrapper.sh"
}
setup true /bin/true
setup python "$PY"
RESTORE="$PREFIX/lib/pyshim/libpyshim-restore.so"

report() {  # title results-file
  echo
  echo "## $1 (median of $(( ROUNDS * PER_ROUND )) launches, µs; p10-p90)"
  awk '
    { name[NR]=$1; med[$1]=$2; lo[$1]=$3; hi[$1]=$4 }
    END {
      direct = med["direct"]; minimal = med["minimal"] - direct
      for (i = 1; i <= NR; i++) {
        n = name[i]; over = med[n] - direct
        printf "  %-24s %8.1f  (%7.1f-%7.1f)  overhead %+7.1f", n, med[n], lo[n], hi[n], over
        if (n != "direct" && n != "minimal" && minimal > 0) printf "  = %.2fx minimal", over / minimal
        printf "\n"
      }
      if ("direct+restore-preload" in med) {
        in_target = med["direct+restore-preload"] - direct
        launcher = med["pyshim"] - med["direct+restore-preload"]
        printf "  pyshim overhead split: %.1f in the launcher process (%.2fx minimal) + %.1f for the\n", launcher, launcher / minimal, in_target
        printf "  restore library in the target; total %.2fx minimal\n", (launcher + in_target) / minimal
      }
    }' "$2"
}

"$W/launch_bench" "$ROUNDS" "$PER_ROUND" \
  direct -- /bin/true -- \
  direct+restore-preload -- LD_PRELOAD="$RESTORE" /bin/true -- \
  minimal -- "$W/true/minimal" -- \
  pyshim -- "$W/true/venv/bin/python" -- \
  bash-exec-a -- "$W/true/wrapper.sh" >"$W/true.txt"
report "target /bin/true: launcher overhead alone" "$W/true.txt"

PR=$(( ROUNDS / 2 > 0 ? ROUNDS / 2 : 1 ))
"$W/launch_bench" "$PR" "$PER_ROUND" \
  direct -- "$PY" -S -c pass -- \
  direct+restore-preload -- LD_PRELOAD="$RESTORE" "$PY" -S -c pass -- \
  minimal -- "$W/python/minimal" -S -c pass -- \
  pyshim -- "$W/python/venv/bin/python" -S -c pass -- \
  bash-exec-a -- "$W/python/wrapper.sh" -S -c pass >"$W/python.txt"
ROUNDS=$PR report "target $PY -S -c pass" "$W/python.txt"

# Startup hooks: a plain venv, a shim venv without hooks and one with a
# trivial hook (os:getpid), all running `-c pass` with site enabled.
"$PY" -m venv --without-pip "$W/plainvenv"
"$PREFIX/bin/pyshim" init "$W/nohooks" --python "$PY" >/dev/null
"$PREFIX/bin/pyshim" init "$W/hooks" --python "$PY" --startup os:getpid >/dev/null
"$W/launch_bench" "$PR" "$PER_ROUND" \
  direct -- "$W/plainvenv/bin/python" -c pass -- \
  minimal -- "$W/python/minimal" -c pass -- \
  shim-no-hooks -- "$W/nohooks/bin/python" -c pass -- \
  shim-one-hook -- "$W/hooks/bin/python" -c pass >"$W/hooks.txt"
echo
echo "## startup hooks: venv python -c pass (median of $(( PR * PER_ROUND )) launches, µs)"
awk '{ med[$1]=$2 }
  END {
    printf "  plain venv %.1f, shim without hooks %.1f (%+.1f), shim with one hook %.1f (%+.1f over no hooks)\n",
      med["direct"], med["shim-no-hooks"], med["shim-no-hooks"] - med["direct"],
      med["shim-one-hook"], med["shim-one-hook"] - med["shim-no-hooks"]
  }' "$W/hooks.txt"

# Syscalls before the exec of the target, counted the same way for both
# launchers: from the launcher's own execve up to (not including) the one
# that starts the target.
count_before_exec() {
  strace -qq -o "$W/trace" "$@" >/dev/null
  awk '/^execve\(/ { n++; if (n == 2) exit } { c++ } END { print c }' "$W/trace"
}
echo
echo "## syscalls before execve of the target (strace; the launcher's own execve counts)"
echo "  minimal wrapper: $(count_before_exec "$W/true/minimal")"
echo "  pyshim:          $(count_before_exec "$W/true/venv/bin/python")"
strace -qq -o "$W/trace" "$W/true/venv/bin/python"
echo "  pyshim's syscalls:"
awk '/^execve\(/ { n++; if (n == 2) exit } { sub(/\(.*/, ""); printf "    %s\n", $0 }' "$W/trace" |
  sort | uniq -c | sort -rn
echo
echo "## size"
ls -l "$PREFIX/bin/pyshim" "$W/true/minimal" | awk '{ printf "  %-40s %9d bytes\n", $NF, $5 }'
file -L "$PREFIX/bin/pyshim" | sed 's/^/  /'
