#!/usr/bin/env bash
# docs/samples/gallery-bags.png: ten synthetic bags (five of the desk scanner, five of the hub's),
# and docs/samples/gallery-items.png: each threat and quarantine item of the library alone, all in
# standard colour as `twinspect render` draws them, cut to what is in the beam and labelled.
# Needs python3 with OpenCV (as the peer tests do). Usage: docs/samples/gallery.sh [TWINSPECT]
set -euo pipefail
bin=${1:-target/debug/twinspect}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
bags="desk-140:2 desk-140:3 desk-140:4 desk-140:5 desk-140:6 hub-160:11 hub-160:12 hub-160:13 hub-160:14 hub-160:15"
for b in $bags; do
  "$bin" --profile "${b%%:*}" render --synthetic "${b##*:}" --cpu --out "$dir/bag-${b%%:*}-${b##*:}.png" 2>/dev/null
done
items="knife gun scissors lighter batteries powder bulk_liquid lead_block fruit meat sausages soil_bag seeds plant_cuttings potted_plant animal_in_box laptop shoes"
for i in $items; do
  "$bin" render --synthetic 2 --item "$i" --cpu --out "$dir/item-$i.png" 2>/dev/null
done
python3 - "$dir" "$(dirname "$0")" "$bags" "$items" <<'PY'
import sys
import cv2
import numpy as np

src, out, bags, items = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()

def cut(img, margin=12):
    """What is in the beam: rows and columns with more than a thin line's worth of pixels
    darker than the belt's white (a belt lacing across the whole belt does not count), with a
    margin."""
    dark = img.min(axis=2) < 215
    rows = np.where(dark.sum(axis=1) > 16)[0]
    cols = np.where(dark.sum(axis=0) > 16)[0]
    y0, y1, x0, x1 = rows.min(), rows.max(), cols.min(), cols.max()
    h, w = img.shape[:2]
    return img[max(0, y0 - margin):min(h, y1 + margin), max(0, x0 - margin):min(w, x1 + margin)]

def label(img, text):
    bar = np.full((24, img.shape[1], 3), 40, np.uint8)
    cv2.putText(bar, text, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (235, 235, 235), 1, cv2.LINE_AA)
    return np.vstack([bar, img])

def sheet(tiles, per_row):
    rows = []
    for k in range(0, len(tiles), per_row):
        row = tiles[k:k + per_row]
        h = max(t.shape[0] for t in row)
        row = [np.vstack([t, np.full((h - t.shape[0], t.shape[1], 3), 255, np.uint8)]) for t in row]
        rows.append(np.hstack([np.hstack([t, np.full((h, 8, 3), 255, np.uint8)]) for t in row]))
    w = max(r.shape[1] for r in rows)
    rows = [np.hstack([r, np.full((r.shape[0], w - r.shape[1], 3), 255, np.uint8)]) for r in rows]
    return np.vstack([np.vstack([r, np.full((8, w, 3), 255, np.uint8)]) for r in rows])

tiles = []
for b in bags:
    prof, seed = b.split(":")
    img = cut(cv2.imread(f"{src}/bag-{prof}-{seed}.png"))
    img = cv2.resize(img, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    tiles.append(label(img, f"{prof} bag {seed}"))
cv2.imwrite(f"{out}/gallery-bags.png", sheet(tiles, 5), [cv2.IMWRITE_PNG_COMPRESSION, 9])
tiles = []
for i in items:
    img = cut(cv2.imread(f"{src}/item-{i}.png"))
    s = min(1.0, 260 / max(img.shape[:2]))
    img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    tiles.append(label(img, i.replace("_", " ")))
cv2.imwrite(f"{out}/gallery-items.png", sheet(tiles, 6), [cv2.IMWRITE_PNG_COMPRESSION, 9])
PY
echo "wrote $(dirname "$0")/gallery-bags.png and gallery-items.png"
