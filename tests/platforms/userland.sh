#!/usr/bin/env bash
# Creates (once) and caches a Debian userland for the platform tests.
#   tests/platforms/userland.sh NAME      prints the userland's root directory
# NAME is one of: bullseye-amd64, trixie-amd64, bookworm-arm64 (see USERLANDS).
# Userlands live outside the repository, under $PYSHIM_USERLAND_CACHE
# (default /var/cache/pyshim-test), so a fresh clone reuses them; a userland
# counts as made only once `.pyshim-ready` exists in it (a debootstrap cut short
# is started again from scratch). Exits 3, with the reason on stderr, when the
# machine cannot make one (no debootstrap, no network to the mirror, no
# qemu-user binfmt for a foreign architecture).
set -euo pipefail

CACHE="${PYSHIM_USERLAND_CACHE:-/var/cache/pyshim-test}"
MIRROR="${PYSHIM_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

# name -> "suite arch packages-for-debootstrap packages-installed-after"
# (debootstrap's own dependency resolution is partial: the -venv packages fail
# to configure when included, so apt in the new userland installs them)
declare -A USERLANDS=(
  [bullseye-amd64]="bullseye amd64 python3.9,libjemalloc2 python3.9-venv"
  [trixie-amd64]="trixie amd64 python3.13,libjemalloc2 python3.13-venv"
  [bookworm-arm64]="bookworm arm64 python3.11,libjemalloc2 python3.11-venv"
)

cannot() {
  echo "userland.sh: cannot make userland $name: $*" >&2
  exit 3
}

name="${1:?usage: userland.sh NAME}"
[[ -n "${USERLANDS[$name]:-}" ]] || { echo "userland.sh: unknown userland '$name'" >&2; exit 2; }
read -r suite arch include extra <<<"${USERLANDS[$name]}"
root="$CACHE/$name"

if [[ -e "$root/.pyshim-ready" ]]; then
  echo "$root"
  exit 0
fi

command -v debootstrap >/dev/null || cannot "debootstrap is not installed"
[[ $(id -u) -eq 0 ]] || cannot "debootstrap and chroot need root"
if [[ "$arch" != "$(dpkg --print-architecture)" ]]; then
  # A foreign userland runs under qemu-user through binfmt_misc.
  if [[ ! -e /proc/sys/fs/binfmt_misc/status ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null ||
      cannot "binfmt_misc is not mounted and cannot be mounted"
  fi
  qemu="qemu-$( [[ $arch == arm64 ]] && echo aarch64 || echo "$arch")"
  if [[ ! -e /proc/sys/fs/binfmt_misc/$qemu ]]; then
    command -v update-binfmts >/dev/null && update-binfmts --enable "$qemu" >/dev/null 2>&1 || true
  fi
  [[ -e /proc/sys/fs/binfmt_misc/$qemu ]] ||
    cannot "no binfmt_misc entry for $qemu (install qemu-user-static)"
fi

mkdir -p "$CACHE"
rm -rf "$root"
log="$CACHE/$name.log"
echo "== making userland $name (debootstrap $suite $arch, log in $log); done once, then cached" >&2
start=$SECONDS
if ! debootstrap --variant=minbase --arch="$arch" --include="$include" \
  "$suite" "$root" "$MIRROR" >"$log" 2>&1; then
  tail -n 5 "$log" >&2
  cannot "debootstrap failed (last lines above; full log $log and $root/debootstrap/debootstrap.log)"
fi
if ! DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -q --no-install-recommends \
  $extra >>"$log" 2>&1; then
  tail -n 5 "$log" >&2
  cannot "apt-get install $extra in the userland failed (full log $log)"
fi
chroot "$root" apt-get clean
touch "$root/.pyshim-ready"
echo "== userland $name made in $((SECONDS - start)) s" >&2
echo "$root"
