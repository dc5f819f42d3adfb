#!/usr/bin/env bash
# The demo: a venv whose python is the shim, with jemalloc preloaded.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYSHIM_PREFIX="${PYSHIM_PREFIX:-$ROOT/build/stage}"
JEMALLOC=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
[[ -e $JEMALLOC ]] || JEMALLOC="$(ldconfig -p | awk '/libjemalloc.so.2 /{print $NF; exit}')"

DEMO="$(mktemp -d /tmp/pyshim-demo.XXXXXX)"
trap 'rm -rf "$DEMO"' EXIT
/usr/bin/python3.11 -m venv --without-pip "$DEMO/venv"
ln -sf "$PYSHIM_PREFIX/bin/pyshim" "$DEMO/venv/bin/python"
cat >"$DEMO/venv/pyshim.toml" <<TOML
interpreter = "/usr/bin/python3.11"
preload = ["$JEMALLOC"]
TOML

echo "\$ cat $DEMO/venv/pyshim.toml"
cat "$DEMO/venv/pyshim.toml"
echo "\$ $DEMO/venv/bin/python scripts/demo.py   # caller has LD_PRELOAD unset"
"$DEMO/venv/bin/python" "$ROOT/scripts/demo.py"
