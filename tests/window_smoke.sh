#!/usr/bin/env bash
# Smoke test of the real workstation window: start it under Xvfb on lavapipe, check that the
# window exists (xwininfo), let bags scroll in, take a screenshot, check it is not blank.
# Writes target/screenshots/workstation.png.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/screenshots
mkdir -p "$out"
cargo build --quiet --bin twinspect
display=":$((90 + RANDOM % 9))"
Xvfb "$display" -screen 0 1920x1080x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
app=""
cleanup() {
  [ -n "$app" ] && kill "$app" 2>/dev/null || true
  kill "$xvfb" 2>/dev/null || true
}
trap cleanup EXIT
export DISPLAY="$display"
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then XDG_RUNTIME_DIR=$(mktemp -d); export XDG_RUNTIME_DIR; fi
for _ in $(seq 50); do xwininfo -root >/dev/null 2>&1 && break; sleep 0.1; done
./target/debug/twinspect run --seed 3 >"$out/workstation.log" 2>&1 &
app=$!
found=""
for _ in $(seq 120); do
  if ! kill -0 "$app" 2>/dev/null; then
    echo "workstation exited early:"; cat "$out/workstation.log"; exit 1
  fi
  if xwininfo -root -tree | grep -q "Twinspect"; then found=1; break; fi
  sleep 0.5
done
[ -n "$found" ] || { echo "no Twinspect window appeared"; xwininfo -root -tree; exit 1; }
sleep "${SMOKE_SECONDS:-12}"
kill -0 "$app" 2>/dev/null || { echo "workstation died:"; cat "$out/workstation.log"; exit 1; }
import -window root "$out/workstation.png"
# Not blank: the image must have many distinct colours (bags, not a flat fill).
colours=$(convert "$out/workstation.png" -format %k info:)
echo "window found; screenshot $out/workstation.png has $colours colours"
[ "$colours" -gt 200 ] || { echo "screenshot looks blank"; exit 1; }
