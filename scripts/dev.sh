#!/usr/bin/env bash
# One entry point for set-up, build, demo, tests and benchmark.
#   scripts/dev.sh demo    install deps, build, run the demo
#   scripts/dev.sh test    install deps, build, package, run unit + integration tests, fuzz
#   scripts/dev.sh bench   install deps, build, run the launch benchmark
#   scripts/dev.sh build   install deps and build only
#   scripts/dev.sh package install deps, build, make the .deb and run lintian on it
#   scripts/dev.sh wheel   install deps, build, write the wheels (build/wheel)
# build and package take --arch arm64: the aarch64 cross build (BUILD/aarch64,
# cmake/aarch64-linux-gnu.cmake) and its .deb. `test` builds both
# architectures, then runs the platform matrix (tests/platforms/run.sh):
# Debian 11 and 13 chroots and an arm64 Debian 12 chroot under qemu-user,
# made once and cached under /var/cache/pyshim-test.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${PYSHIM_BUILD_DIR:-$ROOT/build}"
STAGE="$BUILD/stage"

# Debian packages: build tools and libraries, plus what the tests run against
# (interpreters, allocators, tools a child process may be).
PACKAGES=(
  build-essential cmake ninja-build meson pkg-config file
  help2man dpkg-dev lintian man-db
  libcli11-dev libfmt-dev libtomlplusplus-dev libspdlog-dev libgtest-dev libelf-dev
  python3.11 python3.11-venv python3.11-dev python3.11-dbg pypy3 pypy3-venv
  python3-pytest python3-pytest-xdist
  libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0
  clang clang-format libclang-rt-14-dev
  strace curl perl coreutils gdb linux-perf valgrind binutils
  python3-virtualenv tox python3-nox python3-build python3-setuptools-whl python3-wheel-whl
  g++-aarch64-linux-gnu qemu-user-static binfmt-support debootstrap pipx
)

install_deps() {
  local missing=()
  for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    echo "== installing Debian packages: ${missing[*]}"
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    apt_get $sudo update -q
    apt_get $sudo install -y -q --no-install-recommends "${missing[@]}"
  fi
}

# apt-get that waits its turn: on a fresh machine unattended upgrades (or
# another install) may hold the dpkg or apt lists lock. dpkg's frontend lock is
# waited for by apt itself (DPkg::Lock::Timeout, which prints "Waiting for cache
# lock"); the lists lock of `apt-get update` is not, so a run that failed on a
# lock is tried again. Either way the wait is bounded by APT_LOCK_WAIT seconds
# (default 600) and said while it lasts. Usage: apt_get [sudo] ARGS...
apt_get() {
  local sudo=""
  [[ "$1" == sudo ]] && { sudo=sudo; shift; }
  local limit="${APT_LOCK_WAIT:-600}" start=$SECONDS out rc
  out="$(mktemp)"
  while true; do
    local left=$((limit - (SECONDS - start)))
    ((left > 0)) || left=1
    rc=0
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout="$left" "$@" 2>&1 |
      tee "$out" || rc=$?
    ((rc == 0)) && break
    if grep -qE 'Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock' "$out" &&
      ((SECONDS - start < limit)); then
      echo "== apt-get $1: another package manager holds the lock; waiting" \
        "($((SECONDS - start)) s of at most $limit s)"
      sleep 5
      continue
    fi
    rm -f "$out"
    echo "== apt-get $1 failed (exit $rc)" >&2
    return "$rc"
  done
  rm -f "$out"
}

build() {
  echo "== building in $BUILD"
  # The ci preset (CMakePresets.json): Release, warnings as errors.
  cmake -S "$ROOT" -B "$BUILD" --preset ci >/dev/null
  cmake --build "$BUILD"
  rm -rf "$STAGE"
  cmake --install "$BUILD" --prefix "$STAGE" >/dev/null
  echo "== installed to $STAGE"
}

# qemu-user through binfmt_misc: the arm64 build runs its docs generator, and
# the arm64 tests run, under it.
enable_qemu() {
  [[ -e /proc/sys/fs/binfmt_misc/status ]] ||
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
  [[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || update-binfmts --enable qemu-aarch64 2>/dev/null || true
}

# The aarch64 cross build in BUILD/aarch64 (static executables, as on x86-64),
# staged in BUILD/aarch64/stage.
build_arm64() {
  local dir="$BUILD/aarch64"
  echo "== cross-building for aarch64 in $dir"
  enable_qemu
  cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPYSHIM_BUILD_TESTS=OFF \
    -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/aarch64-linux-gnu.cmake" >/dev/null
  cmake --build "$dir"
  rm -rf "$dir/stage"
  cmake --install "$dir" --prefix "$dir/stage" >/dev/null
  echo "== installed to $dir/stage"
}

# The .deb from CPack (settings in cmake/PackageDeb.cmake), checked by lintian;
# sets DEB to its path.
# package [arm64]: the arm64 one from the cross build; both land in
# BUILD/package as pyshim_VERSION_ARCH.deb.
package() {
  local arch="${1:-$(dpkg --print-architecture)}" config="$BUILD/CPackConfig.cmake"
  [[ $arch == "$(dpkg --print-architecture)" ]] || config="$BUILD/aarch64/CPackConfig.cmake"
  echo "== packaging ($arch)"
  mkdir -p "$BUILD/package"
  rm -f "$BUILD"/package/pyshim_*_"$arch".deb
  rm -rf "$BUILD/package/_CPack_Packages"
  cpack --config "$config" -B "$BUILD/package" >/dev/null
  local deb
  deb="$(echo "$BUILD"/package/pyshim_*_"$arch".deb)"
  echo "== lintian (errors fail; overrides with their reasons: packaging/lintian-overrides)"
  lintian --fail-on error "$deb"
  echo "== $deb"
  [[ $arch != "$(dpkg --print-architecture)" ]] || DEB="$deb"
}

# Both wheels (packaging/wheel.py) from the two staged prefixes, in
# BUILD/wheel: pyshim-VERSION-py3-none-manylinux_2_17_ARCH.manylinux2014_ARCH.whl.
wheels() {
  local version
  version="$(sed -n 's/^project(pyshim VERSION \([0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt")"
  rm -rf "$BUILD/wheel"
  python3 "$ROOT/packaging/wheel.py" --prefix "$STAGE" --arch x86_64 --version "$version" \
    --out "$BUILD/wheel" | sed 's/^/== /'
  python3 "$ROOT/packaging/wheel.py" --prefix "$BUILD/aarch64/stage" --arch aarch64 \
    --version "$version" --out "$BUILD/wheel" | sed 's/^/== /'
}

# clang-format (.clang-format at the root) over every C and C++ file git
# tracks: formatting stays out of review.
format_check() {
  echo "== clang-format check"
  (cd "$ROOT" && git ls-files -z '*.c' '*.h' '*.cpp' '*.hpp' |
    xargs -0 clang-format --dry-run --Werror)
}

run_tests() {
  echo "== layers (tests/layers/check.sh: wrong-way includes fail to compile, hot flags on the launcher only)"
  bash "$ROOT/tests/layers/check.sh" "$BUILD"
  echo "== unit tests"
  ctest --test-dir "$BUILD" --output-on-failure -j"$(nproc)"
  echo "== unit tests under ASan+UBSan (the asan preset, in $BUILD/asan)"
  cmake -S "$ROOT" -B "$BUILD/asan" --preset asan >/dev/null
  cmake --build "$BUILD/asan" --target pyshim_unit_tests
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$BUILD/asan" --output-on-failure -j"$(nproc)"
  rm -f "$BUILD/fault-injection-summary.txt"
  echo "== integration tests (real interpreters; skips are listed with their reason)"
  PYSHIM_PREFIX="$STAGE" PYSHIM_BUILD="$BUILD" PYSHIM_DEB="${DEB:-}" \
    /usr/bin/python3.11 -m pytest "$ROOT/tests/integration" \
    -n "$(nproc)" -rs -q -p no:cacheprovider
  echo "== fault injection points covered (tests/integration/test_fault_injection.py)"
  sed 's/^/  /' "$BUILD/fault-injection-summary.txt"
  echo "== fuzzing (libFuzzer, bounded time; any crash, leak or timeout fails)"
  FUZZ_SECONDS="${FUZZ_SECONDS:-60}" bash "$ROOT/tests/fuzz/run.sh" "$BUILD/fuzz"
  echo "== platforms (Debian 11/13 amd64 and Debian 12 arm64 under qemu-user; chroots cached)"
  enable_qemu
  bash "$ROOT/tests/platforms/run.sh" "$BUILD"
}

cmd="${1:-test}"
arch="$(dpkg --print-architecture)"
if [[ "${2:-}" == --arch ]]; then
  arch="${3:?--arch needs amd64 or arm64}"
  [[ $arch == amd64 || $arch == arm64 ]] || { echo "$0: --arch amd64|arm64" >&2; exit 2; }
fi
build_for() { if [[ $arch == arm64 ]]; then build_arm64; else build; fi; }
case "$cmd" in
  build) install_deps; build_for ;;
  demo) install_deps; build; PYSHIM_PREFIX="$STAGE" bash "$ROOT/scripts/demo.sh" ;;
  test) install_deps; format_check; build; build_arm64; package arm64; package; wheels; run_tests ;;
  wheel) install_deps; build; build_arm64; wheels ;;
  bench) install_deps; build; PYSHIM_PREFIX="$STAGE" bash "$ROOT/tests/bench/run.sh" ;;
  package) install_deps; build_for; package "$arch" ;;
  *) echo "usage: $0 demo|test|bench|wheel|build [--arch arm64]|package [--arch arm64]" >&2; exit 2 ;;
esac
