#!/usr/bin/env python3
"""OpenCV doing the equivalent of Twinspect's standard full-frame chain, on the same frames.

Reads NAME.low.u16, NAME.high.u16 (lines x channels, little-endian) and NAME.calib.f32 (per channel
dark_low, dark_high, ln_span_low, ln_span_high) written by benches/pipeline.rs, and prints
"NAME median_ms" per frame. The chain: attenuation of both energies (-log of dark-corrected
signal), low/high ratio, 3x3 box detail (unsharp), window, material colour by ratio, RGBA pack,
transposed to the display orientation. OpenCV uses all its threads (2 here).
"""
import glob
import os
import sys
import time

import cv2
import numpy as np


def chain(low, high, cal):
    dl, dh, sl, sh = (cal[:, k][None, :] for k in range(4))
    lo = np.maximum(low.astype(np.float32) - dl, 1.0)
    hi = np.maximum(high.astype(np.float32) - dh, 1.0)
    a_lo = np.clip(sl - cv2.log(lo), 0, 12)
    a_hi = np.clip(sh - cv2.log(hi), 0, 12)
    r = cv2.divide(a_lo, np.maximum(a_hi, 1e-4))
    i = cv2.exp((a_lo + a_hi) * -0.5)
    blur = cv2.blur(i, (3, 3), borderType=cv2.BORDER_REPLICATE)
    v = np.clip(i + (i - blur) * 0.0, 0, 1)
    t = np.clip((r - 1.2) / 0.6, 0, 1)
    rgb = cv2.merge([v * (1 - 0.8 * t), v * (0.58 + 0.2 * t), v * (0.1 + 0.1 * t), np.ones_like(v)])
    out = cv2.convertScaleAbs(rgb, alpha=255.0)
    return cv2.transpose(out)


def main(d):
    for low_path in sorted(glob.glob(os.path.join(d, "*.low.u16"))):
        name = os.path.basename(low_path)[: -len(".low.u16")]
        cal = np.fromfile(os.path.join(d, name + ".calib.f32"), dtype="<f4").reshape(-1, 4)
        ch = cal.shape[0]
        low = np.fromfile(low_path, dtype="<u2").reshape(-1, ch)
        high = np.fromfile(os.path.join(d, name + ".high.u16"), dtype="<u2").reshape(-1, ch)
        chain(low, high, cal)
        times = []
        for _ in range(10):
            t = time.perf_counter()
            chain(low, high, cal)
            times.append((time.perf_counter() - t) * 1e3)
        times.sort()
        print(f"{name} {times[len(times) // 2]:.2f}")


if __name__ == "__main__":
    main(sys.argv[1])
