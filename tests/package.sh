#!/usr/bin/env bash
# The desk PC's Debian package: built with cargo-deb (release binary, man pages, bash completion,
# desktop entry, the site file as a conffile in /etc/twinspect/), installed on this machine with
# dpkg, run from where it was installed (`--version`, a `render` on the GPU, `man`), then removed.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version 3.8.0 --quiet
cargo build --release --quiet --bin twinspect
rm -rf target/pkg && mkdir -p target/pkg
target/release/twinspect manpage --out target/pkg/man >/dev/null
target/release/twinspect completions bash > target/pkg/twinspect.bash
deb=$(cargo deb --no-build --quiet | tail -1)
[ -f "$deb" ] || { echo "cargo deb made no package ($deb)"; exit 1; }
echo "package: $deb ($(du -h "$deb" | cut -f1))"
dpkg-deb --info "$deb" | grep -E "Package|Version|Depends"
if dpkg -s twinspect >/dev/null 2>&1; then echo "twinspect is already installed here: not touching it"; exit 1; fi
out=$(mktemp -d)
cleanup() { $SUDO dpkg --purge twinspect >/dev/null 2>&1 || true; rm -rf "$out"; }
trap cleanup EXIT
$SUDO dpkg -i "$deb" >/dev/null
# From where the package put it, not from the build tree.
[ "$(command -v twinspect)" = /usr/bin/twinspect ] || { echo "twinspect is not /usr/bin/twinspect"; exit 1; }
/usr/bin/twinspect --version
(cd "$out" && WGPU_BACKEND="${WGPU_BACKEND:-vulkan}" /usr/bin/twinspect render --synthetic 3 --out bag.png)
python3 -c "import cv2, sys; i = cv2.imread(sys.argv[1]); assert i is not None and i.shape[0] > 100 and len(set(map(tuple, i.reshape(-1, 3)[::97].tolist()))) > 50, 'a blank render'" "$out/bag.png"
man -w twinspect-capture >/dev/null || { echo "man twinspect-capture: no page installed"; exit 1; }
[ -f /etc/twinspect/site.toml ] && dpkg-query -W -f='${Conffiles}\n' twinspect | grep -q /etc/twinspect/site.toml \
  || { echo "/etc/twinspect/site.toml is not the package's conffile"; exit 1; }
grep -q "^Exec=twinspect run --site /etc/twinspect/site.toml" /usr/share/applications/twinspect.desktop
bash -c 'source /usr/share/bash-completion/completions/twinspect && complete -p twinspect' >/dev/null
echo "package installed, run (--version, render, man, conffile, desktop entry, completion) and removed"
