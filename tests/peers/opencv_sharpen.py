#!/usr/bin/env python3
"""Independent peer for Twinspect's edge enhancement (SEN): OpenCV's unsharp mask.

usage: opencv_sharpen.py PLAIN.png EDGE.png AMOUNT STANDARD.png SEN.png
PLAIN and EDGE are the same scan in black and white without and with edge enhancement of AMOUNT;
STANDARD and SEN the standard colour image and the SEN function. Prints JSON:
  gain: least-squares factor between our enhancement (EDGE - PLAIN) and OpenCV's unsharp mask of
        the same radius (a 3 x 3 box, cv2.blur) and amount (1.0: the same strength);
  rms:  RMS difference between EDGE and OpenCV's result (grey levels);
  steepness: mean gradient magnitude (cv2.Sobel) of SEN over that of STANDARD, on the bag.
"""
import json
import sys

import cv2
import numpy as np

plain_p, edge_p, amount, std_p, sen_p = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5]
plain = cv2.imread(plain_p, cv2.IMREAD_GRAYSCALE).astype(np.float64)
edge = cv2.imread(edge_p, cv2.IMREAD_GRAYSCALE).astype(np.float64)
blur = cv2.blur(plain, (3, 3), borderType=cv2.BORDER_REPLICATE)
theirs = np.clip(plain + amount * (plain - blur), 0, 255)
bag = plain < 250
ours_d, theirs_d = (edge - plain)[bag], (theirs - plain)[bag]
gain = float((ours_d * theirs_d).sum() / (theirs_d * theirs_d).sum())
rms = float(np.sqrt(((edge - theirs)[bag] ** 2).mean()))


def steep(path):
    g = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2GRAY).astype(np.float64)
    return np.hypot(cv2.Sobel(g, cv2.CV_64F, 1, 0), cv2.Sobel(g, cv2.CV_64F, 0, 1))[bag].mean()


print(json.dumps({"gain": gain, "rms": rms, "steepness": float(steep(sen_p) / steep(std_p))}))
