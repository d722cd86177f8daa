"""Draw the app icons (a white shield on blue) as PNGs without any imaging library."""

import struct
import zlib
from pathlib import Path


def png(size: int) -> bytes:
    blue, white = (11, 61, 145), (255, 255, 255)
    rows = []
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            u, v = x / size, y / size
            # Shield: straight sides to 55 % height, then tapering to a point at 85 %.
            half = 0.3 if v < 0.55 else 0.3 * max(0.0, (0.85 - v) / 0.30)
            inside = 0.18 <= v <= 0.85 and abs(u - 0.5) <= half
            row += bytes(white if inside else blue)
        rows.append(bytes(row))
    raw = zlib.compress(b"".join(rows), 9)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


if __name__ == "__main__":
    out = Path(__file__).resolve().parent.parent / "static" / "icons"
    out.mkdir(parents=True, exist_ok=True)
    for size in (192, 512):
        (out / f"icon-{size}.png").write_bytes(png(size))
