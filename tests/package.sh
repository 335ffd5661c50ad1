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
# The package makes a system user and /var/lib/twinspect, which a purge leaves (Debian's way):
# this test removes them again when it made them.
had_user=$(getent passwd twinspect >/dev/null && echo yes || echo no)
had_state=$([ -e /var/lib/twinspect ] && echo yes || echo no)
cleanup() {
  $SUDO pkill -u twinspect 2>/dev/null || true
  $SUDO dpkg --purge twinspect >/dev/null 2>&1 || true
  [ "$had_user" = no ] && { $SUDO deluser --system --quiet twinspect >/dev/null 2>&1 || true; }
  [ "$had_state" = no ] && $SUDO rm -rf /var/lib/twinspect
  rm -rf "$out"
}
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
# The services: units systemd accepts, their settings as conffiles, their user and state.
for u in twinspect-node twinspect-web; do
  systemd-analyze verify "/lib/systemd/system/$u.service" || { echo "systemd-analyze refuses $u.service"; exit 1; }
done
for f in node.env web.env; do
  dpkg-query -W -f='${Conffiles}\n' twinspect | grep -q "/etc/twinspect/$f" || { echo "/etc/twinspect/$f is not a conffile"; exit 1; }
done
getent passwd twinspect >/dev/null || { echo "the package made no user twinspect"; exit 1; }
[ "$(stat -c %U /var/lib/twinspect)" = twinspect ] || { echo "/var/lib/twinspect is not twinspect's"; exit 1; }
# Each unit's command line as systemd runs it: its settings file, its user ("${X}" one word,
# $X split on spaces), with a few settings changed for the test.
unit_run() {  # UNIT EXTRA-ASSIGNMENTS...
  local unit=$1; shift
  local line env
  line=$(sed -n 's/^ExecStart=//p' "/lib/systemd/system/$unit.service" | sed 's/\${\([A-Z_]*\)}/"${\1}"/g')
  env=$(sed -n 's/^EnvironmentFile=//p' "/lib/systemd/system/$unit.service")
  runuser -u twinspect -- bash -c "set -a; . $env; $*; set +a; exec $line"
}
# The node: the emulator's one bag captured into its archive; no hub there, so it waits.
said=$(cd / && unit_run twinspect-node 'TWINSPECT_HUB=nats://127.0.0.1:1' 'TWINSPECT_NODE_ARGS="--bags 1 --drain-seconds 1"')
grep -q "^waiting in the archive: 1$" <<<"$said" || { echo "the node unit's command: $said"; exit 1; }
# The web server: serves its login page.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(cd / && unit_run twinspect-web "TWINSPECT_LISTEN=127.0.0.1:$port" >"$out/web.log" 2>&1) &
web=$!
python3 - "$port" <<'PY' || { pkill -u twinspect; cat "$out/web.log"; exit 1; }
import sys, time, urllib.request
for _ in range(100):
    try:
        page = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/login", timeout=2).read().decode()
        assert "<form" in page, page[:200]
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("the web unit's command did not serve /login")
PY
pkill -u twinspect; wait $web 2>/dev/null || true
echo "package installed, run (--version, render, man, conffile, desktop entry, completion, node and web units) and removed"
