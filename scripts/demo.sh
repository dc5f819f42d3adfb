#!/usr/bin/env bash
# The demo: a venv whose python is the shim, with jemalloc preloaded; a real
# program shows jemalloc in the parent and in spawn/forkserver workers and
# its absence in a /bin/sh child.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYSHIM="${PYSHIM_PREFIX:-$ROOT/build/stage}/bin/pyshim"

DEMO="$(mktemp -d /tmp/pyshim-demo.XXXXXX)"
trap 'rm -rf "$DEMO"' EXIT
run() { echo "\$ $*"; "$@"; }

run "$PYSHIM" init "$DEMO/venv" --python /usr/bin/python3.11 --preload jemalloc
echo
run cat "$DEMO/venv/pyshim.toml"
echo
run "$PYSHIM" doctor "$DEMO/venv/bin/python" || true
echo
echo "\$ $DEMO/venv/bin/python scripts/demo.py    # the caller's LD_PRELOAD is unset"
env -u LD_PRELOAD "$DEMO/venv/bin/python" "$ROOT/scripts/demo.py"
echo
echo "# A venv derived from the shim venv (as venv, virtualenv, tox, nox and build do):"
run "$DEMO/venv/bin/python" -m venv --without-pip "$DEMO/derived"
echo "\$ $DEMO/derived/bin/python scripts/demo.py"
env -u LD_PRELOAD "$DEMO/derived/bin/python" "$ROOT/scripts/demo.py"
