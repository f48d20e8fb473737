"""Hostile uploads, made byte by byte: tiny files whose pixels would cost hundreds of MB, huge frames hidden after
a small first one, and formats Pillow reads but the app does not open."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image

# Pillow writes each of these; none is a format the app opens (PSD, which it cannot write, is made by hand below)
OTHER_FORMATS = {"PPM": "ppm", "PCX": "pcx", "TGA": "tga", "SGI": "sgi", "IM": "im", "DDS": "dds", "QOI": "qoi",
                 "XBM": "xbm", "JPEG2000": "jp2", "EPS": "eps", "ICO": "ico", "SPIDER": "spi"}


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_of_zeros(width: int, height: int) -> bytes:
    """An RGBA PNG of zeros, compressed row by row (13000 x 13000: 676 MB of pixels in ~650 KB)."""
    compressor, row = zlib.compressobj(9), bytes(1 + 4 * width)  # filter byte + the row
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def ico_bomb(path: Path, side: int = 13000) -> Path:
    """An ICO whose one entry is a side x side PNG of zeros: Pillow's ICO plugin decodes it inside Image.open."""
    png = png_of_zeros(side, side)
    entry = struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(png), 6 + 16)  # 0 x 0 means 256: the PNG says more
    path.write_bytes(struct.pack("<HHH", 0, 1, 1) + entry + png)
    return path


def psd(path: Path, width: int = 200, height: int = 200) -> Path:
    """A flat 8-bit RGB Photoshop file, raw pixels."""
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, height, width, 8, 3)
    path.write_bytes(header + struct.pack(">III", 0, 0, 0) + struct.pack(">H", 0) + bytes(3 * width * height))
    return path


def _gif_descriptors(data: bytes) -> list[int]:
    """Offsets of every image descriptor of a GIF."""
    flags = data[10]
    position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    found = []
    while data[position] != 0x3B:  # the trailer
        if data[position] == 0x21:  # an extension: label, then sub-blocks
            position += 2
        else:
            found.append(position)
            local = data[position + 9]
            position += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0) + 1  # descriptor, palette, LZW size
        while data[position]:
            position += data[position] + 1
        position += 1
    return found


def gif_with_huge_later_frame(path: Path, side: int = 16000) -> Path:
    """A 200 x 200 animated GIF whose second frame claims side x side."""
    buffer = io.BytesIO()
    first, second = Image.new("RGB", (200, 200), "gray"), Image.new("RGB", (200, 200), "blue")
    first.save(buffer, "GIF", save_all=True, append_images=[second])
    data = bytearray(buffer.getvalue())
    later = _gif_descriptors(data)[1]
    data[later + 5 : later + 9] = struct.pack("<HH", side, side)
    path.write_bytes(bytes(data))
    return path


def tiff_with_huge_later_page(path: Path, side: int = 16000) -> Path:
    """A 200 x 200 TIFF whose second page claims side x side."""
    buffer = io.BytesIO()
    Image.new("RGB", (200, 200), "gray").save(buffer, "TIFF", save_all=True, append_images=[Image.new("RGB", (200, 200))])
    data = bytearray(buffer.getvalue())
    page = struct.unpack_from("<I", data, 4)[0]
    page = struct.unpack_from("<I", data, page + 2 + 12 * struct.unpack_from("<H", data, page)[0])[0]  # the second IFD
    for entry in range(page + 2, page + 2 + 12 * struct.unpack_from("<H", data, page)[0], 12):
        if struct.unpack_from("<H", data, entry)[0] in (256, 257):  # ImageWidth, ImageLength: one LONG each
            struct.pack_into("<HII", data, entry + 2, 4, 1, side)
    path.write_bytes(bytes(data))
    return path


def webp_of_zeros(path: Path, side: int = 7000) -> Path:
    """A lossless WebP of side x side black pixels: a few KB."""
    Image.new("L", (side, side)).save(path, "WEBP", lossless=True)
    return path


def other_formats(folder: Path) -> dict[str, Path]:
    """One 200 x 200 image in each of OTHER_FORMATS and PSD, by Pillow format name."""
    image = Image.new("RGB", (200, 200), (120, 110, 100))
    files = {"PSD": psd(folder / "photo.psd")}
    for name, suffix in OTHER_FORMATS.items():
        files[name] = folder / f"photo.{suffix}"
        image.convert({"XBM": "1", "SPIDER": "F"}.get(name, "RGB")).save(files[name], name)
    return files
