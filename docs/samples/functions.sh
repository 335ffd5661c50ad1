#!/usr/bin/env bash
# docs/samples/functions.png: every console function (F1-F12) on bag 4 of the desk scanner, as
# `twinspect render` draws it with the screens' GPU pipeline, cut to the bag and labelled.
# Needs python3 with OpenCV (as the peer tests do). Usage: docs/samples/functions.sh [TWINSPECT]
set -euo pipefail
bin=${1:-target/debug/twinspect}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
presets="standard hp lp os is metal edge local negative bw pseudo vde"
for p in $presets; do
  "$bin" render --synthetic 4 --preset "$p" --out "$dir/$p.png" 2>/dev/null
done
python3 - "$dir" "$(dirname "$0")/functions.png" $presets <<'PY'
import sys
import cv2
import numpy as np

src, out, presets = sys.argv[1], sys.argv[2], sys.argv[3:]
names = {"standard": "F1 standard", "hp": "F2 HP", "lp": "F3 LP", "os": "F4 OS organic",
         "is": "F5 IS inorganic", "metal": "F6 metal", "edge": "F7 SEN", "local": "F8 local contrast",
         "negative": "F9 negative", "bw": "F10 B/W", "pseudo": "F11 pseudo", "vde": "F12 VDE"}
# The bag's extent on the standard image: rows and columns with more than a line's worth of
# pixels darker than the belt's white, and a margin.
std = cv2.imread(f"{src}/standard.png")
dark = std.min(axis=2) < 215
rows, cols = np.where(dark.sum(axis=1) > 16)[0], np.where(dark.sum(axis=0) > 16)[0]
y0, y1, x0, x1 = max(rows.min() - 12, 0), rows.max() + 12, max(cols.min() - 12, 0), cols.max() + 12
tiles = []
for p in presets:
    img = cv2.imread(f"{src}/{p}.png")[y0:y1, x0:x1]
    img = cv2.resize(img, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    label = np.full((26, img.shape[1], 3), 40, np.uint8)
    cv2.putText(label, names[p], (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (235, 235, 235), 1, cv2.LINE_AA)
    tiles.append(np.vstack([label, img]))
rows = [np.hstack(tiles[k:k + 4]) for k in range(0, len(tiles), 4)]
cv2.imwrite(out, np.vstack(rows), [cv2.IMWRITE_PNG_COMPRESSION, 9])
PY
echo "wrote $(dirname "$0")/functions.png"
