#!/usr/bin/env python3
"""The peer of benches/open_bag.rs: open an archived scan as a Python tool would.

Reads the two-page 16-bit TIFF (low, high) Twinspect archived, with tifffile, then runs OpenCV's
display chain of benches/opencv_peer.py on it (calibration as the identity: dark 0, air full
scale, which costs the same). Prints "open median_ms" over 15 runs.
"""
import os
import sys
import time

import numpy as np
import tifffile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opencv_peer import chain  # noqa: E402


def main(path):
    def once():
        with tifffile.TiffFile(path) as t:
            low, high = t.pages[0].asarray(), t.pages[1].asarray()
        ch = low.shape[1]
        cal = np.zeros((ch, 4), dtype=np.float32)
        cal[:, 2] = cal[:, 3] = np.log(65535.0)
        chain(low, high, cal)

    once()
    times = []
    for _ in range(15):
        t = time.perf_counter()
        once()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    print(f"open {times[len(times) // 2]:.2f}")


if __name__ == "__main__":
    main(sys.argv[1])
