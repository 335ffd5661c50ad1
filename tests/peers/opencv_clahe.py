#!/usr/bin/env python3
"""Independent peer for Twinspect's CLAHE: OpenCV's createCLAHE on the same 8-bit image.

usage: opencv_clahe.py IN.u8 OUT.u8 ROWS COLS TILE CLIP
Reads ROWS x COLS uint8, writes OpenCV's CLAHE result (tile grid COLS/TILE x ROWS/TILE).
"""
import sys

import cv2
import numpy as np

src, dst, rows, cols, tile, clip = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6]), float(sys.argv[6])
img = np.fromfile(src, dtype=np.uint8).reshape(rows, cols)
clahe = cv2.createCLAHE(clipLimit=clip, tileGridSize=(cols // tile, rows // tile))
clahe.apply(img).tofile(dst)
