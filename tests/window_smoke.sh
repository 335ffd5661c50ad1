#!/usr/bin/env bash
# Smoke test of the real workstation: start it under Xvfb on lavapipe, check that both station
# windows exist (xwininfo: Customs 海关 and Quarantine 检验检疫), let bags scroll in, take a
# screenshot of the screen, check it is not blank. The opening bench is served beside it
# (`run --web`) from the workstation's own desk and archive: a tablet logs in and sees a bag
# the screens archived, and its login is in the workstation's one audit trail.
# Writes target/screenshots/workstation.png.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/screenshots
mkdir -p "$out"
# Built together with a test target so cargo unifies dev-dependency features exactly as `cargo
# test` did: a plain `cargo build --bin` would rebuild winit, eframe and friends a second time.
cargo build --quiet --bin twinspect --test cli
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
data=$(mktemp -d)
./target/debug/twinspect run --seed 3 --data "$data" --web 127.0.0.1:0 >"$out/workstation.log" 2>&1 &
app=$!
found=""
for _ in $(seq 120); do
  if ! kill -0 "$app" 2>/dev/null; then
    echo "workstation exited early:"; cat "$out/workstation.log"; exit 1
  fi
  tree=$(xwininfo -root -tree)
  if grep -q "Twinspect Customs" <<<"$tree" && grep -q "Twinspect Quarantine" <<<"$tree"; then found=1; break; fi
  sleep 0.5
done
[ -n "$found" ] || { echo "the two station windows did not both appear"; xwininfo -root -tree | grep -i twinspect; cat "$out/workstation.log"; exit 1; }
sleep "${SMOKE_SECONDS:-12}"
kill -0 "$app" 2>/dev/null || { echo "workstation died:"; cat "$out/workstation.log"; exit 1; }
import -window root "$out/workstation.png"
# Not blank: the image must have many distinct colours (bags, not a flat fill).
colours=$(convert "$out/workstation.png" -format %k info:)
echo "both station windows found; screenshot $out/workstation.png has $colours colours"
[ "$colours" -gt 200 ] || { echo "screenshot looks blank"; exit 1; }
# Each station has its own image functions: F11 (pseudo-colour) on the quarantine window changes
# that screen only. Pseudo-colour paints air and thin items yellow (R > 200, G > 180, B < 90);
# the standard image has no such pixels. The X-RAY ON lamp (yellow and black, top right of the
# image) and any banner sit in the image's top band, so counting starts below it (the image
# begins about 105 px down under a wrapped toolbar; the band is 60 px). (The windows present one
# after the other, so a screenshot may catch them a frame apart: compare colours, not pixels.)
yellow() {
  python3 - "$1" <<'PY'
import sys, cv2
img = cv2.imread(sys.argv[1])  # BGR
h, w = img.shape[:2]
for x0 in (0, w // 2):
    half = img[170:h - 120, x0:x0 + w // 2 - 240]
    b, g, r = half[..., 0], half[..., 1], half[..., 2]
    print(int(((r > 200) & (g > 180) & (b < 90)).sum()), end=" ")
PY
}
before=$(yellow "$out/workstation.png")
q=$(xdotool search --name "Twinspect Quarantine" | head -1)
# F11 selects a preset (pressing it again changes nothing), so a key lost by a busy software
# renderer is simply pressed again.
for _ in 1 2 3; do
  xdotool windowfocus --sync "$q" key F11
  sleep 3
  import -window root "$out/workstation-quarantine-pseudo.png"
  after=$(yellow "$out/workstation-quarantine-pseudo.png")
  read -r ca qa <<<"$after"
  [ "$qa" -gt 3000 ] && break
done
echo "yellow pixels (customs, quarantine): before F11 $before, after $after"
read -r cb qb <<<"$before"
read -r ca qa <<<"$after"
[ "$cb" -lt 1000 ] && [ "$qb" -lt 1000 ] && [ "$ca" -lt 1000 ] && [ "$qa" -gt 3000 ] \
  || { echo "F11 on the quarantine screen did not change that screen alone"; exit 1; }
# The opening bench beside the screens: the workstation's desk answers it (no second writer).
base=$(sed -n 's|^opening bench on \(http://127.0.0.1:[0-9]*\)/$|\1|p' "$out/workstation.log")
[ -n "$base" ] || { echo "run --web printed no address"; cat "$out/workstation.log"; exit 1; }
jar=$(mktemp)
csrf=$(curl -sf -c "$jar" -b "$jar" "$base/login" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -1)
[ -n "$csrf" ] || { echo "no login form at $base/login"; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" \
  --data-urlencode "csrf=$csrf" --data-urlencode id=c001 --data-urlencode pin=1111 \
  --data-urlencode agency=customs "$base/login")
[ "$code" = 303 ] || { echo "web login beside the workstation answered $code"; exit 1; }
curl -sf -b "$jar" "$base/openings" >/dev/null || { echo "openings page refused"; exit 1; }
page=$(curl -sf -b "$jar" "$base/bag/1") || { echo "bag 1 (archived by the screens) not served"; exit 1; }
grep -q 'data-bag="1"' <<<"$page" || { echo "bag page without its image"; exit 1; }
ctype=$(curl -s -o "$out/web-tile.png" -w '%{content_type}' -b "$jar" "$base/bag/1/dzi/standard_files/8/0_0.png")
[ "$ctype" = image/png ] || { echo "bag 1's tile came back as '$ctype'"; exit 1; }
scsrf=$(curl -sf -b "$jar" "$base/openings" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -1)
curl -s -o /dev/null -b "$jar" --data-urlencode "csrf=$scsrf" "$base/logout"
rm -f "$jar"
echo "opening bench beside the workstation: logged in, bag 1 and a tile served"
kill -0 "$app" 2>/dev/null || { echo "workstation died serving the web:"; cat "$out/workstation.log"; exit 1; }
# Closing the window stops both; what the web did is in the workstation's one audit trail.
kill "$app"; wait "$app" 2>/dev/null || true; app=""
trail=$(./target/debug/twinspect audit list --data "$data")
grep '"c001"' <<<"$trail" | grep -q '"login"' || { echo "the web login is not in the workstation's trail"; exit 1; }
grep '"c001"' <<<"$trail" | grep -q '"logout"' || { echo "the web logout is not in the workstation's trail"; exit 1; }
# The workstation archives what it shows: bags with their scans, and a sound audit trail.
archived=$(./target/debug/twinspect bags --data "$data" | grep -c $'\tcomplete\t' || true)
echo "bags archived by the workstation: $archived"
[ "$archived" -ge 1 ] || { echo "the workstation archived no bag"; ./target/debug/twinspect bags --data "$data"; exit 1; }
./target/debug/twinspect audit verify --data "$data"
rm -rf "$data"
