"""The quick JPEG/PNG header reader against Pillow's: the same answer or none, never another.

The reference is `images._pillow_size`, the Pillow path read_size took before the quick reader
existed. Files come from Pillow's own writers plus hand-built segments (camera-style EXIF with
a thumbnail, XMP, Photoshop and ICC blocks), then several hundred seeded mutations of them.
"""

from __future__ import annotations

import io
import os
import random
import struct
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin, PngImagePlugin, TiffImagePlugin
from PIL.PngImagePlugin import PngInfo

from maskdesk.core import headers, images
from maskdesk.core.errors import ImageError
from maskdesk.core.headers import quick_size
from maskdesk.core.images import ImageSize, read_size

W, H = 13, 7  # not square, so a missed or extra axis swap shows
HUGE = 1 << 64  # above any PNG width x height, so Pillow never refuses a size itself


@pytest.fixture(autouse=True)
def _keep_pillow_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # _pillow_size raises Pillow's own bomb limit to ours; keep that from leaking to other tests.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)


def pillow(path: Path, limit: int = HUGE) -> tuple[int, int, int] | None:
    """The Pillow path's answer, None when it refuses the file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # damaged EXIF warns; the app runs without -W error
        try:
            size = images._pillow_size(path, limit)
        except ImageError:
            return None
    return size.width, size.height, size.orientation


def expect_same(path: Path) -> tuple[int, int, int]:
    """quick_size gives an answer here, and it is Pillow's."""
    quick = quick_size(path)
    assert quick is not None, f"{path.name}: the quick reader gave up"
    assert quick == pillow(path)
    assert read_size(path) == ImageSize(*quick)
    return quick


def expect_fallback(path: Path) -> tuple[int, int, int] | None:
    """quick_size gives up here; read_size still answers as Pillow does."""
    assert quick_size(path) is None
    reference = pillow(path, images.DEFAULT_MAX_PIXELS)
    if reference is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert read_size(path) == ImageSize(*reference)
    return reference


def upright(orientation: int) -> tuple[int, int, int]:
    return (H, W, orientation) if orientation >= 5 else (W, H, orientation)


# --- building blocks ---------------------------------------------------------------------


def segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def insert_after_soi(jpeg: bytes, *segments: bytes) -> bytes:
    assert jpeg.startswith(b"\xff\xd8")
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


def jpeg_bytes(mode: str = "RGB", size: tuple[int, int] = (W, H), **save: Any) -> bytes:
    colour: Any = {"L": 90, "RGB": (200, 40, 90), "CMYK": (10, 200, 40, 5)}[mode]
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format="JPEG", **save)
    return buffer.getvalue()


def exif_of(orientation: int | None, endian: str = "<") -> bytes:
    exif = Image.Exif()
    exif.endian = endian
    if orientation is not None:
        exif[0x0112] = orientation
    exif[0x0131] = "maskdesk test"  # Software, stored out of line
    return exif.tobytes()


Entry = tuple[int, int, int, bytes]  # tag, TIFF type, count, value bytes


def tiff_ifds(ifds: list[list[Entry]], endian: str = "<", tail: bytes = b"") -> bytes:
    """A TIFF structure as cameras write EXIF: IFDs in a chain, values after each IFD."""
    out = bytearray(b"II*\x00" if endian == "<" else b"MM\x00*")
    out += struct.pack(endian + "L", 8)
    for index, entries in enumerate(ifds):
        start = len(out)
        data_at = start + 2 + 12 * len(entries) + 4
        table, data = bytearray(struct.pack(endian + "H", len(entries))), bytearray()
        for tag, typ, count, value in entries:
            if len(value) > 4:
                table += struct.pack(endian + "HHL", tag, typ, count)
                table += struct.pack(endian + "L", data_at + len(data))
                data += value + b"\x00" * (len(value) & 1)
            else:
                table += struct.pack(endian + "HHL", tag, typ, count) + value.ljust(4, b"\x00")
        last = index == len(ifds) - 1
        table += struct.pack(endian + "L", 0 if last else data_at + len(data))
        out += table + data
    return bytes(out + tail)


def short(value: int, endian: str = "<") -> bytes:
    return struct.pack(endian + "H", value)


def camera_exif(orientation: int, endian: str = "<") -> bytes:
    """IFD0 (make, orientation, resolution) and IFD1 pointing at a JPEG thumbnail."""
    thumbnail = jpeg_bytes(size=(8, 5))

    def build(thumb_at: int) -> bytes:
        ifd0 = [
            (0x010F, 2, 8, b"Maskdesk"),
            (0x0112, 3, 1, short(orientation, endian)),
            (0x011A, 5, 1, struct.pack(endian + "LL", 72, 1)),
            (0x011B, 5, 1, struct.pack(endian + "LL", 72, 1)),
            (0x0128, 3, 1, short(2, endian)),
        ]
        ifd1 = [
            (0x0201, 4, 1, struct.pack(endian + "L", thumb_at)),
            (0x0202, 4, 1, struct.pack(endian + "L", len(thumbnail))),
        ]
        return tiff_ifds([ifd0, ifd1], endian, thumbnail)

    tiff = build(0)
    tiff = build(len(tiff) - len(thumbnail))
    return b"Exif\x00\x00" + tiff


def xmp(body: str) -> bytes:
    packet = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>{body}</rdf:RDF></x:xmpmeta>'
    return segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + packet.encode())


def photoshop() -> bytes:
    resolution = struct.pack(">LHHLHH", 72 << 16, 1, 1, 72 << 16, 1, 1)
    block = b"8BIM" + struct.pack(">HBB", 0x03ED, 0, 0) + struct.pack(">L", 16) + resolution
    caption = b"8BIM" + struct.pack(">HBB", 0x0404, 0, 0) + struct.pack(">L", 3) + b"abc\x00"
    return segment(0xED, b"Photoshop 3.0\x00" + block + caption)


def png_bytes(im: Image.Image, **save: Any) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format="PNG", **save)
    return buffer.getvalue()


def png_chunks(data: bytes) -> list[tuple[int, bytes, int]]:
    """(offset, type, length) of each chunk."""
    out, pos = [], 8
    while pos + 8 <= len(data):
        length, cid = struct.unpack(">L4s", data[pos : pos + 8])
        out.append((pos, cid, length))
        pos += 12 + length
    return out


def chunk(cid: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">L", len(payload))
        + cid
        + payload
        + struct.pack(">L", zlib.crc32(cid + payload))
    )


def before_idat(png: bytes, *chunks: bytes) -> bytes:
    idat = next(pos for pos, cid, _ in png_chunks(png) if cid == b"IDAT")
    return png[:idat] + b"".join(chunks) + png[idat:]


def fix_crcs(png: bytes) -> bytes:
    """Recompute the CRC of every whole chunk before IDAT (to reach the parsers behind it)."""
    out, pos = bytearray(png), 8
    while pos + 8 <= len(out):
        length, cid = struct.unpack(">L4s", out[pos : pos + 8])
        if cid == b"IDAT" or pos + 12 + length > len(out):
            break
        crc = zlib.crc32(bytes(out[pos + 4 : pos + 8 + length]))
        out[pos + 8 + length : pos + 12 + length] = struct.pack(">L", crc)
        pos += 12 + length
    return bytes(out)


def jpeg_segments(data: bytes) -> dict[int, int]:
    """Offset of the first segment of each marker, up to SOS (the marker walk, by hand)."""
    found: dict[int, int] = {}
    pos = 2
    while data[pos + 1] != 0xDA:
        found.setdefault(data[pos + 1], pos)
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    found[0xDA] = pos
    return found


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- JPEG --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["L", "RGB", "CMYK"])
@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_jpeg_every_orientation_and_none(tmp_path: Path, mode: str, progressive: bool) -> None:
    for orientation in [None, *range(1, 9)]:
        data = jpeg_bytes(mode, progressive=progressive, exif=exif_of(orientation))
        path = write(tmp_path / f"{orientation}.jpg", data)
        assert expect_same(path) == upright(orientation or 1)
    plain = write(tmp_path / "plain.jpg", jpeg_bytes(mode, progressive=progressive))
    assert expect_same(plain) == (W, H, 1)


@pytest.mark.parametrize("endian", ["<", ">"], ids=["II", "MM"])
@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_camera_exif_with_thumbnail(tmp_path: Path, endian: str, orientation: int) -> None:
    data = jpeg_bytes(exif=camera_exif(orientation, endian))
    assert expect_same(write(tmp_path / "camera.jpg", data)) == upright(orientation)


def test_big_segments_before_the_frame_header(tmp_path: Path) -> None:
    # A 150 kB ICC profile spans three APP2 segments; with a 60 kB APP15 before it the frame
    # header lies far beyond the first read.
    icc = bytes(range(256)) * 600
    data = jpeg_bytes(icc_profile=icc, exif=camera_exif(6))
    data = insert_after_soi(data, segment(0xEF, b"\x07" * 60_000), segment(0xFE, b"comment"))
    path = write(tmp_path / "big.jpg", data)
    assert jpeg_segments(data)[0xC0] > 200_000
    assert expect_same(path) == upright(6)
    with_photoshop = write(tmp_path / "ps.jpg", insert_after_soi(data, photoshop()))
    assert expect_same(with_photoshop) == upright(6)


@pytest.mark.parametrize(
    ("exif", "packets", "expected"),
    [
        (None, ['<rdf:Description tiff:Orientation="6"/>'], 6),
        (None, ["<tiff:Orientation>3</tiff:Orientation>"], 3),
        (None, ['<rdf:Description tiff:Orientation="9"/>'], 1),  # invalid: upright
        (None, ['tiff:Orientation="5"', 'tiff:Orientation="8"'], 8),  # the last packet wins
        (2, ['<rdf:Description tiff:Orientation="6"/>'], 2),  # EXIF first
        (9, ['<rdf:Description tiff:Orientation="6"/>'], 1),  # EXIF has one, if invalid
        ("no tag", ['<rdf:Description tiff:Orientation="7"/>'], 7),  # EXIF without the tag
        (None, ["<dc:title>no orientation</dc:title>"], 1),
    ],
)
def test_xmp_orientation_as_pillow_reads_it(
    tmp_path: Path, exif: int | str | None, packets: list[str], expected: int
) -> None:
    save: dict[str, Any] = {}
    if exif is not None:
        save["exif"] = exif_of(None if exif == "no tag" else int(exif))
    data = insert_after_soi(jpeg_bytes(**save), *map(xmp, packets))
    assert expect_same(write(tmp_path / "xmp.jpg", data)) == upright(expected)


def test_damaged_or_unusual_jpegs_go_to_pillow(tmp_path: Path) -> None:
    base = jpeg_bytes(exif=camera_exif(6))
    tiff = base.index(b"Exif\x00\x00") + 6
    long_count = bytearray(base)
    long_count[tiff + 8 : tiff + 10] = short(200)  # 200 entries in IFD0: past the end
    bad_offset = bytearray(base)
    bad_offset[tiff + 18 : tiff + 22] = struct.pack("<L", 0xFFFF00)  # Make's value: past the end
    segments = jpeg_segments(base)
    sof, dqt, sos = segments[0xC0], segments[0xDB], segments[0xDA]
    cases = {
        "long_count": bytes(long_count),
        "bad_offset": bytes(bad_offset),
        "two_exif": insert_after_soi(base, segment(0xE1, exif_of(3))),  # Pillow joins them
        "lossless": base[: sof + 1] + b"\xc3" + base[sof + 2 :],
        "fill_bytes": base[:dqt] + b"\xff" + base[dqt:],
        "junk_between_segments": base[:dqt] + b"\x00" + base[dqt:],
        "cut_in_header": base[: sos + 5],
        "no_frame_header": base[:sof] + base[sof + 19 :],
    }
    found = {
        name: expect_fallback(write(tmp_path / f"{name}.jpg", data)) for name, data in cases.items()
    }
    # Pillow keeps the entries it read before the cut, but stops at an unreadable value and
    # then reads "no orientation": damage decides in ways a reader should not guess at.
    assert found["long_count"] == upright(6)
    assert found["bad_offset"] == (W, H, 1)
    assert found["fill_bytes"] == found["junk_between_segments"] == upright(6)
    assert found["cut_in_header"] is None and found["no_frame_header"] is None


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("short_jfif", segment(0xE0, b"JFIF\x00\x01")),
        ("short_icc", segment(0xE2, b"ICC_PROFILE\x00\x01")),
        ("short_adobe", segment(0xEE, b"Adobe\x00")),
        ("photoshop_cut_at_name", segment(0xED, b"Photoshop 3.0\x00" + b"8BIM\x04\x04")),
        ("bad_quantization_table", segment(0xDB, b"\x00" + b"\x01" * 40)),
        ("twelve_bit_frame", segment(0xC0, b"\x0c\x00\x07\x00\x0d\x01\x01\x11\x00")),
        ("unknown_marker", b"\xff\x42\x00\x04ab"),
    ],
)
def test_segments_pillow_refuses_are_not_read_past(tmp_path: Path, name: str, extra: bytes) -> None:
    data = insert_after_soi(jpeg_bytes(), extra)
    assert expect_fallback(write(tmp_path / f"{name}.jpg", data)) is None


def test_segments_pillow_tolerates_are_read(tmp_path: Path) -> None:
    # The same blocks in forms Pillow accepts: a Photoshop block that stops short of its
    # resolution record, a resolution record in full, empty APP and comment segments.
    cut = b"Photoshop 3.0\x00" + b"8BIM\x03\xed\x00\x00\x00\x00\x00\x10" + b"\x00" * 6
    extras = [segment(0xED, cut), photoshop(), segment(0xE5, b""), segment(0xFE, b"")]
    data = insert_after_soi(jpeg_bytes(exif=exif_of(5)), *extras)
    assert expect_same(write(tmp_path / "ok.jpg", data)) == upright(5)


def test_mpo_goes_to_pillow(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (W, H), (i * 90, 0, 0)) for i in range(2)]
    path = tmp_path / "stereo.jpg"
    frames[0].save(path, format="MPO", save_all=True, append_images=frames[1:])
    with Image.open(path) as im:
        assert im.format == "MPO"
    assert expect_fallback(path) == (W, H, 1)


# --- PNG ---------------------------------------------------------------------------------


def png_variants() -> dict[str, bytes]:
    rgb = Image.fromarray(np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8))
    palette = rgb.convert("P")
    grey16 = Image.fromarray(np.arange(W * H, dtype=np.uint16).reshape(H, W) * 300)
    assert grey16.mode == "I;16"
    info = PngInfo()
    info.add_text("Software", "maskdesk test")
    info.add(b"tIME", struct.pack(">HBBBBB", 2024, 5, 6, 7, 8, 9))
    info.add(b"gAMA", struct.pack(">L", 45455))
    return {
        "rgb": png_bytes(rgb),
        "rgba": png_bytes(rgb.convert("RGBA")),
        "la": png_bytes(rgb.convert("LA")),
        "palette": png_bytes(palette),
        "palette_transparent": png_bytes(palette, transparency=3),
        "grey": png_bytes(rgb.convert("L"), transparency=7),
        "bilevel": png_bytes(rgb.convert("1")),
        "grey16": png_bytes(grey16),
        "rgb_transparent": png_bytes(rgb, transparency=(1, 2, 3)),
        "text_dpi_icc": png_bytes(rgb, pnginfo=info, dpi=(300, 300), icc_profile=b"\x01" * 5000),
    }


def interlaced(png: bytes) -> bytes:
    """The same header with the Adam7 flag: for a 1 x 1 image the pixel data is identical."""
    out = bytearray(png)
    out[28] = 1  # IHDR: 8 magic + 8 chunk head + 12 bytes before the interlace method
    return fix_crcs(bytes(out))


def test_png_modes(tmp_path: Path) -> None:
    for name, data in png_variants().items():
        assert expect_same(write(tmp_path / f"{name}.png", data)) == (W, H, 1), name
    one = png_bytes(Image.new("RGB", (1, 1), (9, 8, 7)))
    path = write(tmp_path / "adam7.png", interlaced(one))
    with Image.open(path) as im:
        assert im.info.get("interlace") == 1
        assert im.convert("RGB").getpixel((0, 0)) == (9, 8, 7)
    assert expect_same(path) == (1, 1, 1)
    # Larger interlaced headers: read_size reads only the header, so the pixels may stay.
    rgb = interlaced(png_variants()["rgb"])
    assert expect_same(write(tmp_path / "adam7_rgb.png", rgb)) == (W, H, 1)


@pytest.mark.parametrize("orientation", [None, *range(1, 9)])
def test_png_exif_chunk(tmp_path: Path, orientation: int | None) -> None:
    data = png_bytes(Image.new("RGB", (W, H)), exif=exif_of(orientation)[6:])
    assert any(cid == b"eXIf" for _, cid, _ in png_chunks(data))
    assert expect_same(write(tmp_path / "exif.png", data)) == upright(orientation or 1)


def test_png_metadata_pillow_reads_elsewhere_goes_to_pillow(tmp_path: Path) -> None:
    base = png_bytes(Image.new("RGB", (W, H)))
    tiff = exif_of(6)[6:]
    xmp_packet = b'<x:xmpmeta><rdf:Description tiff:Orientation="8"/></x:xmpmeta>'
    raw_profile = b"\nexif\n" + str(len(b"Exif\x00\x00" + tiff)).encode() + b"\n"
    raw_profile += (b"Exif\x00\x00" + tiff).hex().encode()
    cases = {
        "itxt_xmp": (chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp_packet), 8),
        "text_exif": (chunk(b"tEXt", b"Raw profile type exif\x00" + raw_profile), 6),
        "ztxt": (chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"hello")), 1),
        "text_named_exif": (chunk(b"tEXt", b"exif\x00" + b"Exif\x00\x00" + tiff), 6),
        "two_exif": (chunk(b"eXIf", exif_of(3)[6:]) + chunk(b"eXIf", tiff), 6),
        "actl": (chunk(b"acTL", struct.pack(">LL", 1, 0)), None),
        "unknown_chunk": (chunk(b"zzZz", b"?"), 1),
    }
    for name, (extra, orientation) in cases.items():
        path = write(tmp_path / f"{name}.png", before_idat(base, extra))
        reference = expect_fallback(path)
        if orientation is not None:
            assert reference == upright(orientation), name
    bad_crc = bytearray(base)
    bad_crc[29] ^= 1  # the IHDR checksum
    assert expect_fallback(write(tmp_path / "bad_crc.png", bytes(bad_crc))) is None


# --- read_size around the quick reader ---------------------------------------------------


def test_read_size_takes_the_quick_path_and_honours_the_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "a.jpg", jpeg_bytes(exif=exif_of(6)))

    def no_pillow(*_: object) -> ImageSize:
        raise AssertionError("Pillow was asked")

    with monkeypatch.context() as patch:
        patch.setattr(images, "_pillow_size", no_pillow)
        assert read_size(path) == ImageSize(H, W, 6)
    monkeypatch.setattr(images, "QUICK_HEADERS", False)
    monkeypatch.setattr(images, "quick_size", lambda _: (1, 1, 1))  # would be wrong
    assert read_size(path) == ImageSize(H, W, 6)


@pytest.mark.parametrize("orientation", [1, 6])
def test_limit_refusal_is_the_same_as_pillows(tmp_path: Path, orientation: int) -> None:
    path = write(tmp_path / "a.jpg", jpeg_bytes(exif=exif_of(orientation)))
    with pytest.raises(ImageError) as quick:
        read_size(path, max_pixels=W * H - 1)
    with pytest.raises(ImageError) as slow:
        images._pillow_size(path, W * H - 1)
    assert str(quick.value) == str(slow.value)
    assert f"is {W} x {H} = {W * H} pixels" in str(quick.value)  # the stored axes, as before
    assert (quick.value.setting, quick.value.value) == ("max_pixels", str(W * H))
    assert read_size(path, max_pixels=W * H) == ImageSize(*upright(orientation))


def test_what_is_not_a_plain_file_is_left_to_pillow(tmp_path: Path) -> None:
    (tmp_path / "folder.jpg").mkdir()
    write(tmp_path / "empty.jpg", b"")
    write(tmp_path / "soi_only.jpg", b"\xff\xd8\xff")
    for name in ["folder.jpg", "empty.jpg", "soi_only.jpg", "missing.jpg"]:
        assert quick_size(tmp_path / name) is None, name


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe.jpg"
    os.mkfifo(pipe)
    assert quick_size(pipe) is None
    with pytest.raises(ImageError, match="empty"):
        read_size(pipe)


def test_constants_match_this_pillow() -> None:
    """Upgrade guards: what the reader assumes about Pillow's parsers still holds."""
    handlers = {name[6:].encode() for name in dir(PngImagePlugin.PngStream) if name[:6] == "chunk_"}
    assert not handlers & headers._PNG_SKIPPED
    assert set(headers._PNG_MIN_LENGTH) | {b"tRNS", b"iCCP", b"tEXt", b"eXIf", b"IHDR"} <= handlers
    assert set(PngImagePlugin._MODES) == headers._PNG_MODES
    assert PngImagePlugin.MAX_TEXT_CHUNK >= headers._PNG_TEXT_LIMIT
    marker = JpegImagePlugin.MARKER
    assert {marker[0xFF00 | m][2] for m in headers._SOF_OK} == {JpegImagePlugin.SOF}
    assert {marker[0xFF00 | m][2] for m in (0xC4, 0xDA, 0xDD)} == {JpegImagePlugin.Skip}
    assert marker[0xFFDB][2] is JpegImagePlugin.DQT and marker[0xFFFE][2] is JpegImagePlugin.COM
    assert {marker[0xFFE0 + n][2] for n in range(16)} == {JpegImagePlugin.APP}
    dispatch = TiffImagePlugin.ImageFileDirectory_v2._load_dispatch
    assert {t: dispatch[t][0] for t in headers._TIFF_UNIT} == headers._TIFF_UNIT


# --- fuzz --------------------------------------------------------------------------------


def fuzz_bases() -> list[tuple[str, bytes]]:
    rgb = Image.new("RGB", (W, H), (5, 6, 7))
    return [
        ("camera", jpeg_bytes(exif=camera_exif(6))),
        ("camera_mm", jpeg_bytes("L", progressive=True, exif=camera_exif(8, ">"))),
        ("xmp", insert_after_soi(jpeg_bytes(), xmp('tiff:Orientation="5"'), segment(0xFE, b"hi"))),
        ("cmyk_ps", insert_after_soi(jpeg_bytes("CMYK", icc_profile=b"\x02" * 300), photoshop())),
        ("pillow_exif", jpeg_bytes(exif=exif_of(7, ">"))),
        ("png_exif", png_bytes(rgb, exif=exif_of(6))),
        ("png_text", png_variants()["text_dpi_icc"]),
        ("png_trns", png_variants()["palette_transparent"]),
        ("png_grey16", interlaced(png_variants()["grey16"])),
    ]


def header_end(data: bytes) -> int:
    if data.startswith(b"\x89PNG"):
        return next(pos for pos, cid, _ in png_chunks(data) if cid == b"IDAT") + 8
    sos = jpeg_segments(data)[0xDA]
    return sos + 2 + struct.unpack(">H", data[sos + 2 : sos + 4])[0]


def exif_span(data: bytes) -> tuple[int, int] | None:
    at = data.find(b"II*\x00")
    at = data.find(b"MM\x00*") if at < 0 else at
    return None if at < 0 else (at, min(at + 120, header_end(data)))


def mutate(data: bytes, rng: random.Random) -> bytes:
    end = header_end(data)
    out = bytearray(data)
    kind = rng.randrange(5)
    span = exif_span(data)
    if kind == 0:  # a few random bytes anywhere in the header
        for _ in range(rng.randint(1, 3)):
            out[rng.randrange(2, end)] = rng.randrange(256)
    elif kind == 1:  # cut
        del out[rng.randrange(1, end + 8) :]
    elif kind == 2:  # insert or drop one byte
        at = rng.randrange(2, end)
        if rng.random() < 0.5:
            del out[at]
        else:
            out.insert(at, rng.randrange(256))
    elif span is not None:  # inside the EXIF structure: counts, types, offsets, values
        at = rng.randrange(*span)
        width = rng.choice([1, 2, 4])
        value = rng.choice([0, 1, 2, 3, 5, 6, 8, 9, 0xFF, 0xFFFF, rng.randrange(1 << 16)])
        out[at : at + width] = value.to_bytes(4, "little")[:width]
    else:
        out[rng.randrange(2, end)] ^= 1 << rng.randrange(8)
    mutant = bytes(out)
    if mutant.startswith(b"\x89PNG") and rng.random() < 0.7:
        mutant = fix_crcs(mutant)  # otherwise the checksum catches nearly everything
    return mutant


def test_fuzzed_headers_get_pillows_answer_or_none(tmp_path: Path) -> None:
    rng = random.Random(20240605)
    outcome = {"same": 0, "fallback": 0, "refused": 0}
    path = tmp_path / "mutant.img"
    for name, base in fuzz_bases():
        assert quick_size(write(path, base)) is not None, name
        for _ in range(90):
            mutant = mutate(base, rng)
            path.write_bytes(mutant)
            quick, reference = quick_size(path), pillow(path)
            if quick is not None:
                assert quick == reference, (name, mutant.hex())
            outcome["same" if quick else "fallback" if reference else "refused"] += 1
            # And read_size as a whole, with the default limit, against the old path.
            check_read_size(path, name, mutant)
    assert sum(outcome.values()) >= 800
    assert outcome["same"] >= 200 and outcome["fallback"] >= 100 and outcome["refused"] >= 50


def check_read_size(path: Path, name: str, mutant: bytes) -> None:
    def outcome(read: Callable[[], ImageSize]) -> ImageSize | tuple[str | None, str | None]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return read()
            except ImageError as exc:
                return exc.setting, exc.value

    new = outcome(lambda: read_size(path))
    old = outcome(lambda: images._pillow_size(path, images.DEFAULT_MAX_PIXELS))
    # Both refuse (the same pixel count when it is the limit), or both give the same size.
    assert new == old, (name, mutant.hex())
