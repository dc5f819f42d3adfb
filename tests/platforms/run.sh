#!/usr/bin/env bash
# The platform matrix (README.md, "Supported platforms"): the built pyshim
# tested in other Debian userlands, each a debootstrap chroot made once and
# cached by tests/platforms/userland.sh:
#   bullseye-amd64  Debian 11, glibc 2.31, python3.9   (the amd64 build)
#   trixie-amd64    Debian 13, python3.13               (the amd64 build)
#   bookworm-arm64  Debian 12 arm64 under qemu-user     (the aarch64 cross build)
# Inside each, test_userland.py (beside this script) runs the product's checks
# with that userland's python3, and installs and uses the .deb and the wheel of
# that architecture when BUILD/package and BUILD/wheel hold them.
#   tests/platforms/run.sh BUILD [USERLAND...]
# BUILD is the build folder: BUILD/stage (amd64) and BUILD/aarch64/stage
# (arm64). A userland the machine cannot make is skipped with the reason
# printed; any failed check fails the run.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="$(cd "${1:?usage: run.sh BUILD [USERLAND...]}" && pwd)"
shift
userlands=("$@")
((${#userlands[@]})) || userlands=(bullseye-amd64 trixie-amd64 bookworm-arm64)

declare -A PYTHON=([bullseye-amd64]=python3.9 [trixie-amd64]=python3.13 [bookworm-arm64]=python3.11)
declare -A PREFIX=([bullseye-amd64]="$BUILD/stage" [trixie-amd64]="$BUILD/stage"
                   [bookworm-arm64]="$BUILD/aarch64/stage")

# Userlands not yet cached are made side by side (the amd64 ones mostly wait
# on the network while the arm64 one keeps a core busy under qemu).
made="$(mktemp -d)"
trap 'rm -rf "$made"' EXIT
for name in "${userlands[@]}"; do
  (
    rc=0
    "$HERE/userland.sh" "$name" >"$made/$name.root" || rc=$?
    echo "$rc" >"$made/$name.rc"
  ) &
done
wait

failed=()
skipped=()
passed=()
for name in "${userlands[@]}"; do
  echo "== platform $name"
  rc="$(cat "$made/$name.rc")"
  root="$(cat "$made/$name.root")"
  if ((rc == 3)); then
    skipped+=("$name")
    echo "== SKIPPED platform $name: the machine cannot make this userland (reason above)"
    continue
  elif ((rc != 0)); then
    failed+=("$name")
    continue
  fi
  prefix="${PREFIX[$name]}"
  if [[ ! -x "$prefix/bin/pyshim" ]]; then
    echo "== $name: no build at $prefix (scripts/dev.sh builds it)" >&2
    failed+=("$name")
    continue
  fi
  rm -rf "$root/opt/pyshim" "$root/opt/pyshim-test"
  mkdir -p "$root/opt/pyshim-test"
  cp -a "$prefix/." "$root/opt/pyshim/"
  cp "$HERE/test_userland.py" "$HERE/../integration/elf_and_maps.py" "$root/opt/pyshim-test/"
  # The .deb of the userland's architecture, when built (scripts/dev.sh test
  # packages both): installed and used there too.
  deb_arch="${name##*-}"
  debs=("$BUILD"/package/pyshim_*_"$deb_arch".deb)
  in_deb=""
  if [[ -f "${debs[0]}" ]]; then
    cp "${debs[0]}" "$root/opt/pyshim-test/"
    in_deb="/opt/pyshim-test/$(basename "${debs[0]}")"
  fi
  wheel_arch=x86_64
  [[ $deb_arch == arm64 ]] && wheel_arch=aarch64
  wheels=("$BUILD"/wheel/pyshim-*_"$wheel_arch".whl)
  in_wheel=""
  if [[ -f "${wheels[0]}" ]]; then
    cp "${wheels[0]}" "$root/opt/pyshim-test/"
    in_wheel="/opt/pyshim-test/$(basename "${wheels[0]}")"
  fi
  trace=0
  if [[ $name == *-arm64 ]]; then
    trace=1
    # As tests/integration/test_hot_path.py checks on x86-64: the hot code
    # calls nothing outside its section (a call into glibc, such as an IFUNC
    # memset, would jump through an unresolved slot before _start).
    if ! python3 "$HERE/hot_calls.py" aarch64-linux-gnu-objdump "$BUILD/aarch64/pyshim-launcher"; then
      failed+=("$name")
      continue
    fi
  fi
  # A private mount namespace: /proc and /dev/shm (multiprocessing's
  # semaphores) for the chroot, gone when it ends.
  if ! unshare --mount --propagation private /bin/sh -c '
      mount -t proc proc "$1/proc" && mount -t tmpfs tmpfs "$1/dev/shm" &&
      exec chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        PYSHIM_PREFIX=/opt/pyshim PYTHON="/usr/bin/$2" HOT_PATH_TRACE="$3" PYSHIM_DEB="$4" PYSHIM_WHEEL="$5" \
        "/usr/bin/$2" /opt/pyshim-test/test_userland.py' sh "$root" "${PYTHON[$name]}" "$trace" "$in_deb" "$in_wheel"
  then
    failed+=("$name")
  else
    passed+=("$name")
  fi
done

((${#skipped[@]})) && echo "== platforms skipped (the machine cannot make them): ${skipped[*]}"
if ((${#failed[@]})); then
  echo "== platforms FAILED: ${failed[*]}"
  exit 1
fi
echo "== platforms passed: ${passed[*]:-none}"
