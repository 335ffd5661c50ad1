#!/usr/bin/env python3
"""Seed inputs for the serial_codec fuzz target, written from hardware/serial-protocol.md alone
(an independent encoder: zlib's CRC-32 and a bitwise CRC-16/CCITT-FALSE), so the fuzzer starts
from valid frames and mutates them. The first byte of every input is the fuzz target's chunk size.

usage: python3 fuzz/make_seeds.py OUT_DIR
"""
import os
import struct
import sys
import zlib

SYNC = bytes([0xA5, 0x5A, 0x3C, 0xC3])


def crc16(data: bytes) -> int:
    c = 0xFFFF
    for b in data:
        c ^= b << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
            c &= 0xFFFF
    return c


def frame(ftype: int, seq: int, payload: bytes) -> bytes:
    head = SYNC + struct.pack("<BBHII", 1, ftype, 0, seq, len(payload))
    head += struct.pack("<H", crc16(head))
    body = head + payload
    return body + struct.pack("<I", zlib.crc32(body))


def line(no: int, kind: int, low, high) -> bytes:
    return struct.pack("<IBBH", no, kind, 0, len(low)) + struct.pack(f"<{len(low)}H", *low) + struct.pack(
        f"<{len(high)}H", *high
    )


def main(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    frames = [
        frame(0x05, 0, struct.pack("<I", 1000)),
        frame(0x01, 1, line(7, 1, [1, 2, 65535], [4, 0, 6])),
        frame(0x02, 2, struct.pack("<IB", 3, 6) + b"EMS123"),
        frame(0x03, 3, struct.pack("<I", 3)),
        frame(0x04, 4, struct.pack("<HHHhHH", 3, 1400, 100, 315, 200, 300)),
        frame(0x06, 5, struct.pack("<HB", 9, 9) + b"interlock"),
        frame(0x10, 6, bytes([5])),
        frame(0x11, 7, struct.pack("<IBB", 6, 5, 0)),
    ]
    seeds = {
        "each": b"".join(frames),
        "line16": frame(0x01, 0, line(0, 2, list(range(16)), list(range(100, 116)))),
        "noise_between": b"\x00\xa5\x5a" + frames[0] + b"garbage" + frames[3],
        "truncated": frames[1][:-3] + frames[2],
    }
    for name, data in seeds.items():
        for chunk in (1, 7, 255):
            with open(os.path.join(out, f"{name}-{chunk}"), "wb") as f:
                f.write(bytes([chunk]) + data)


if __name__ == "__main__":
    main(sys.argv[1])
