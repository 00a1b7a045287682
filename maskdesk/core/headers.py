"""Image size and EXIF orientation from the first bytes of ordinary JPEG and PNG files.

`quick_size` answers exactly what `images.read_size` answers through Pillow, or None. Pillow
parses every marker or chunk up to the pixel data and, for JPEG, the EXIF block too; that
costs most of the time of a first folder scan. This reader follows the same steps in plain
Python, but it accepts only files whose every step is unambiguous and gives up (None: the
caller asks Pillow) at the first thing that is unusual, damaged, or where Pillow's answer
would depend on details not modelled here: MPO, lossless or arithmetic JPEG, repeated
SOF or EXIF segments, compressed or metadata-bearing PNG text, APNG, bad CRCs, any EXIF
entry that is not well formed. A wrong size would misplace every mask of the image.
"""

from __future__ import annotations

import os
import re
import stat
import struct
import zlib

# (upright width, upright height, EXIF orientation 1-8)
QuickSize = tuple[int, int, int]

_CHUNK = 4096  # the first read; covers the header of small files and of most PNGs
_MAX_HEADER = 16 * 1024 * 1024  # a header longer than this is left to Pillow
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_EXIF_PREFIX = b"Exif\x00\x00"
_XMP_PREFIX = b"http://ns.adobe.com/xap/1.0/\x00"
# Pillow's own pattern (Image.getexif) for the XMP fallback when EXIF has no orientation.
_XMP_ORIENTATION = re.compile(rb'tiff:Orientation(="|>)([0-9])')

_ORIENTATION = 0x0112
_RESOLUTION_UNIT = 0x0128
_X_RESOLUTION = 0x011A
# TIFF field types Pillow decodes, with their unit sizes; other types it skips (we give up).
_TIFF_UNIT = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
# Tags Pillow reads while opening a JPEG or orienting it: (type, count) accepted for each.
# Others would be decoded with warnings or odd types; those files go to Pillow.
_READ_TAGS = {_ORIENTATION: (3, 1), _RESOLUTION_UNIT: (3, 1), _X_RESOLUTION: (5, 1)}

# SOF0 baseline, SOF1 extended sequential, SOF2 progressive (Huffman coded, 8-bit): what
# cameras and libraries write. Lossless, hierarchical and arithmetic frames go to Pillow.
_SOF_OK = frozenset({0xC0, 0xC1, 0xC2})
_DHT, _DQT, _DRI, _SOS, _COM = 0xC4, 0xDB, 0xDD, 0xDA, 0xFE
_SEGMENTS_OK = _SOF_OK | {_DHT, _DQT, _DRI, _SOS, _COM}  # and APP0-APP15
_SEGMENT = struct.Struct(">BBH")  # 0xFF, marker, length (which counts itself)
# APPn contents Pillow parses while opening, and the length below which that parse raises:
# JFIF and Adobe versions (i16 at byte 5), ICC pieces (byte 13 read when joining them).
_APP_SHORTEST = {
    0xE0: ((b"JFIF", 7),),
    0xE2: ((b"ICC_PROFILE\x00", 14),),
    0xEE: ((b"Adobe", 7),),
}

# PNG (bit depth, colour type) pairs Pillow opens.
_PNG_MODES = frozenset(
    {(1, 0), (2, 0), (4, 0), (8, 0), (16, 0), (8, 2), (16, 2), (1, 3), (2, 3), (4, 3), (8, 3)}
    | {(8, 4), (16, 4), (8, 6), (16, 6)}
)
# Ancillary chunks Pillow skips without looking inside: it has no handler for them (a test
# checks that against Pillow's PngStream, so a new handler there cannot go unnoticed).
_PNG_SKIPPED = frozenset(
    {b"bKGD", b"tIME", b"sBIT", b"hIST", b"sPLT", b"cICP", b"cLLI", b"mDCV", b"iDOT", b"oFFs"}
    | {b"pCAL", b"sCAL", b"sTER", b"gIFg", b"gIFx", b"vpAg", b"caNv"}
)
# Chunks whose handler only checks a minimum length (Pillow raises below it).
_PNG_MIN_LENGTH = {b"gAMA": 4, b"cHRM": 32, b"sRGB": 1, b"pHYs": 9, b"PLTE": 0}
_PNG_TRNS_MIN = {(0, 1): 2, (0, 2): 2, (0, 4): 2, (0, 8): 2, (0, 16): 2, (2, 8): 6, (2, 16): 6}
# Pillow refuses a text chunk or ICC profile inflating past 1 MiB, and 64 MiB of text in all;
# staying below both keeps every refusal on this side.
_PNG_TEXT_LIMIT = 256 * 1024


class _Bail(Exception):
    """Not a file this reader vouches for; the caller falls back to Pillow."""


def quick_size(path: str | os.PathLike[str]) -> QuickSize | None:
    """Upright (width, height, orientation) of a plain JPEG or PNG, or None to ask Pillow.

    A result always equals what Pillow-based `read_size` gives; None means "not sure" (not
    a regular file, not JPEG or PNG, damaged, unusual), never "not an image".
    """
    try:
        # Non-blocking, so that a named pipe cannot hang the scan: it is refused below.
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        reader = _Reader(fd)
        head = reader.read(0, 8)
        if head.startswith(b"\xff\xd8\xff"):
            return _jpeg(reader)
        if head == _PNG_MAGIC:
            return _png(reader)
    except (_Bail, OSError, ValueError, struct.error, IndexError):
        return None
    finally:
        os.close(fd)
    return None


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)


class _Reader:
    """Random access to the start of a file through one buffered window."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._start = 0
        self._buf = os.read(fd, _CHUNK)

    def read(self, pos: int, n: int) -> bytes:
        """Exactly n bytes at pos; a short file means the header is truncated (bail)."""
        i = pos - self._start
        if i >= 0 and i + n <= len(self._buf):
            return self._buf[i : i + n]
        if pos + n > _MAX_HEADER:
            raise _Bail
        os.lseek(self._fd, pos, os.SEEK_SET)
        want = max(n, _CHUNK)
        parts = [os.read(self._fd, want)]
        got = len(parts[0])
        while got < n and parts[-1]:  # a read may return less than asked before the end
            parts.append(os.read(self._fd, want - got))
            got += len(parts[-1])
        self._buf = b"".join(parts)
        self._start = pos
        if got < n:
            raise _Bail
        return self._buf[:n]


# --- JPEG --------------------------------------------------------------------------------


def _jpeg(reader: _Reader) -> QuickSize:
    """Walk the markers as JpegImagePlugin does, up to the first SOS."""
    size: tuple[int, int] | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    pos = 2
    while True:
        ff, marker, length = _SEGMENT.unpack(reader.read(pos, 4))
        # Pillow skips junk and fill bytes (0xFF) between segments; real files have none.
        # Every segment it parses before SOS has a length; markers without one (RSTn, SOI,
        # EOI, JPGn) and those Pillow refuses are left to it too.
        is_app = 0xE0 <= marker <= 0xEF
        if ff != 0xFF or not (is_app or marker in _SEGMENTS_OK) or length < 2:
            raise _Bail
        start, n = pos + 4, length - 2
        # Pillow reads each segment whole, so a cut inside one fails there; here the read
        # of the next marker (or of SOS itself) past the cut bails instead.
        pos = start + n
        if marker == _SOS:
            reader.read(start, n)
            if size is None:
                raise _Bail
            return _upright(size, _orientation(exif, xmp))
        if marker in _SOF_OK:
            if size is not None:
                raise _Bail  # a second frame header: Pillow takes the last one
            size = _sof(reader.read(start, n))
        elif marker == _DQT:
            _dqt(reader.read(start, n))
        elif is_app:
            data = _app_data(reader, marker, start, n)
            if data is None:
                continue
            if data.startswith(_EXIF_PREFIX):
                if exif is not None:
                    raise _Bail  # Pillow concatenates repeated EXIF segments
                exif = data
            else:
                xmp = data[len(_XMP_PREFIX) :]  # the last one wins, as in Pillow
        # DHT, DRI and COM: Pillow skips them


def _upright(size: tuple[int, int], orientation: int) -> QuickSize:
    width, height = size
    if orientation >= 5:  # 5-8 swap the axes
        width, height = height, width
    return width, height, orientation


def _app_data(reader: _Reader, marker: int, start: int, n: int) -> bytes | None:
    """An APP1 segment's EXIF or XMP content; None for the others, once checked."""
    lead = reader.read(start, min(n, 32))
    if marker == 0xE1 and (lead.startswith(_EXIF_PREFIX) or lead.startswith(_XMP_PREFIX)):
        return reader.read(start, n)
    if marker == 0xE2 and lead.startswith(b"MPF\x00"):
        raise _Bail  # multi-picture: Pillow may open it as MPO
    if marker == 0xED and lead.startswith(b"Photoshop 3.0\x00"):
        _photoshop(reader.read(start, n))
    for prefix, shortest in _APP_SHORTEST.get(marker, ()):
        if lead.startswith(prefix) and n < shortest:
            raise _Bail
    return None


def _sof(s: bytes) -> tuple[int, int]:
    if len(s) < 6 or s[0] != 8:
        raise _Bail
    height, width = struct.unpack_from(">HH", s, 1)
    layers = s[5]
    if layers not in (1, 3, 4) or len(s) != 6 + 3 * layers or width == 0 or height == 0:
        raise _Bail
    return width, height


def _dqt(s: bytes) -> None:
    """Pillow's table walk: raise where it raises ("bad quantization table marker")."""
    i = 0
    while i < len(s):
        precision = 1 if s[i] // 16 == 0 else 2
        i += 1 + 64 * precision
        if i > len(s):
            raise _Bail


def _photoshop(s: bytes) -> None:
    """Pillow's 8BIM walk stops quietly on short data but fails on one IndexError: find it."""
    offset = 14
    while s[offset : offset + 4] == b"8BIM":
        offset += 4
        if offset + 2 > len(s):
            return
        code = int.from_bytes(s[offset : offset + 2], "big")
        offset += 2
        if offset >= len(s):
            raise _Bail
        offset += 1 + s[offset]
        offset += offset & 1
        if offset + 4 > len(s):
            return
        size = int.from_bytes(s[offset : offset + 4], "big")
        offset += 4
        if code == 0x03ED and len(s[offset : offset + size]) < 14:
            return
        offset += size
        offset += offset & 1


# --- EXIF ---------------------------------------------------------------------------------


def _orientation(exif: bytes | None, xmp: bytes | None) -> int:
    """The tag as Image.getexif + images._orientation_tag read it: EXIF IFD0, else XMP."""
    found = _exif_orientation(exif) if exif is not None else None
    if found is None and xmp:
        match = _XMP_ORIENTATION.search(xmp)
        if match:
            found = int(match[2])
    if found is None:
        return 1
    return found if 1 <= found <= 8 else 1


def _exif_orientation(exif: bytes) -> int | None:
    """Orientation from a well-formed IFD0, None when IFD0 has no orientation entry.

    Every entry must be one Pillow stores without complaint, so that the entries it keeps
    are exactly the ones read here.
    """
    data = exif[len(_EXIF_PREFIX) :]
    if data.startswith(_EXIF_PREFIX):  # Pillow strips a doubled prefix too
        data = data[len(_EXIF_PREFIX) :]
    if not data:
        return None
    if data.startswith(b"II*\x00"):
        endian = "<"
    elif data.startswith(b"MM\x00*"):
        endian = ">"
    else:
        raise _Bail  # BigTIFF, swapped magic, damage
    if len(data) < 8:
        raise _Bail
    (ifd,) = struct.unpack_from(endian + "L", data, 4)
    if ifd < 8 or ifd + 2 > len(data):
        raise _Bail
    (count,) = struct.unpack_from(endian + "H", data, ifd)
    if ifd + 2 + 12 * count + 4 > len(data):
        raise _Bail  # Pillow would keep only the entries before the cut
    entry = struct.Struct(endian + "HHL4s")
    seen: set[int] = set()
    orientation: int | None = None
    out_of_line = 0
    for i in range(count):
        tag, typ, n, value = entry.unpack_from(data, ifd + 2 + 12 * i)
        if tag in seen or typ not in _TIFF_UNIT:
            raise _Bail
        seen.add(tag)
        size = n * _TIFF_UNIT[typ]
        if size == 0:
            raise _Bail  # Pillow drops empty entries
        if size > 4:
            (offset,) = struct.unpack(endian + "L", value)
            out_of_line += size
            if offset + size > len(data) or out_of_line > len(data):
                raise _Bail  # Pillow stops or skips here
        expected = _READ_TAGS.get(tag)
        if expected is not None and expected != (typ, n):
            raise _Bail
        if tag == _ORIENTATION:
            (orientation,) = struct.unpack(endian + "H", value[:2])
    return orientation


# --- PNG ----------------------------------------------------------------------------------


def _png(reader: _Reader) -> QuickSize:
    """Walk the chunks as PngImagePlugin does, up to the first IDAT."""
    pos = 8
    size: tuple[int, int] | None = None
    colour = (-1, -1)
    exif: bytes | None = None
    while True:
        length, cid = struct.unpack(">L4s", reader.read(pos, 8))
        if not (cid.isascii() and cid.isalpha()):
            raise _Bail
        if cid == b"IDAT":
            if size is None:
                raise _Bail
            break
        if length > _MAX_HEADER:
            raise _Bail
        data = reader.read(pos + 8, length)
        (crc,) = struct.unpack(">L", reader.read(pos + 8 + length, 4))
        if zlib.crc32(data, zlib.crc32(cid)) != crc:
            raise _Bail  # Pillow refuses a bad checksum
        pos += 12 + length
        if cid == b"IHDR":
            if size is not None or length != 13:
                raise _Bail
            width, height, bits, ctype, compression, filtering, interlace = struct.unpack(
                ">LLBBBBB", data
            )
            if (bits, ctype) not in _PNG_MODES or compression or filtering or interlace > 1:
                raise _Bail
            if width == 0 or height == 0:
                raise _Bail
            size, colour = (width, height), (ctype, bits)
        elif size is None:
            raise _Bail  # Pillow accepts chunks before IHDR; real files put IHDR first
        elif cid in _PNG_MIN_LENGTH:
            if length < _PNG_MIN_LENGTH[cid]:
                raise _Bail
        elif cid == b"tRNS":
            if length < _PNG_TRNS_MIN.get(colour, 0):
                raise _Bail
        elif cid == b"iCCP":
            _iccp(data)
        elif cid == b"tEXt":
            keyword = data.split(b"\x00", 1)[0].lower()
            if b"exif" in keyword or b"xmp" in keyword or length > _PNG_TEXT_LIMIT:
                raise _Bail  # Pillow reads EXIF or XMP from text chunks too
        elif cid == b"eXIf":
            if exif is not None:
                raise _Bail
            exif = _EXIF_PREFIX + data
        elif cid not in _PNG_SKIPPED:
            raise _Bail  # zTXt, iTXt, APNG chunks, IEND, anything new
    return _upright(size, _orientation(exif, None))


def _iccp(s: bytes) -> None:
    """Pillow fails on a wrong method byte or an oversized profile; not on zlib errors."""
    i = s.find(b"\x00")
    if i < 0 or i + 1 >= len(s) or s[i + 1] != 0:
        raise _Bail
    inflate = zlib.decompressobj()
    try:
        inflate.decompress(s[i + 2 :], _PNG_TEXT_LIMIT)
    except zlib.error:
        return
    if inflate.unconsumed_tail:
        raise _Bail
