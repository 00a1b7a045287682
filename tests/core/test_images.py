"""The image decoder on real files: bundled photos, EXIF-rotated copies, every mode, bad input."""

from __future__ import annotations

import struct
import subprocess
import sys
import tracemalloc
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from maskdesk.core import images
from maskdesk.core.errors import ImageError
from maskdesk.core.images import ImageSize, load_rgb, natural_key, read_size, scan_folder

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "resources" / "samples"
T = Image.Transpose
# Stored pixels that the EXIF orientation turns back into the upright picture.
TO_STORED = {
    1: None,
    2: T.FLIP_LEFT_RIGHT,
    3: T.ROTATE_180,
    4: T.FLIP_TOP_BOTTOM,
    5: T.TRANSPOSE,
    6: T.ROTATE_90,
    7: T.TRANSVERSE,
    8: T.ROTATE_270,
}


def sample_files() -> list[Path]:
    # Opening the samples in the app (the README's first command) leaves its project folder
    # `.maskdesk` there: the samples are the files beside the licence.
    return sorted(p for p in SAMPLES.iterdir() if p.is_file() and p.name != "LICENSE.md")


def with_orientation(upright: Image.Image, orientation: int, path: Path, **save: Any) -> Path:
    method = TO_STORED[orientation]
    stored = upright if method is None else upright.transpose(method)
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(path, exif=exif, **save)
    return path


def noise(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    shape = (height, width, channels) if channels > 1 else (height, width)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# --- bundled sample photos ------------------------------------------------------------------


def test_every_sample_decodes_and_is_listed_in_the_licence() -> None:
    files = sample_files()
    licence = (SAMPLES / "LICENSE.md").read_text(encoding="utf-8")
    assert 3 <= len(files) <= 5
    assert sum(p.stat().st_size for p in files) < 1_000_000
    for path in files:
        assert path.suffix in images.SUPPORTED_SUFFIXES and path.name == path.name.lower()
        assert f"`{path.name}`" in licence, f"{path.name} has no entry in LICENSE.md"
        pixels = load_rgb(path)
        size = read_size(path)
        assert pixels.shape == (size.height, size.width, 3)
        assert pixels.dtype == np.uint8 and pixels.flags.c_contiguous and pixels.flags.writeable
        assert max(size.width, size.height) <= 640
        assert pixels.std() > 20  # a photo, not a blank frame
        # No orientation tag: the pixels are exactly what Pillow decodes.
        np.testing.assert_array_equal(pixels, np.asarray(Image.open(path).convert("RGB")))
    assert scan_folder(SAMPLES) == [p.name for p in files]


# --- EXIF orientation -----------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("suffix", [".png", ".tif", ".webp"])
def test_every_orientation_gives_the_upright_pixels(
    tmp_path: Path, orientation: int, suffix: str
) -> None:
    upright = noise(5, 7)  # not square, so a missed or extra rotation changes the shape
    save = {"lossless": True} if suffix == ".webp" else {}
    path = with_orientation(Image.fromarray(upright), orientation, tmp_path / f"o{suffix}", **save)
    pixels = load_rgb(path)
    np.testing.assert_array_equal(pixels, upright)
    assert read_size(path) == ImageSize(7, 5, orientation)
    # Pillow's own exif_transpose agrees: the same convention, applied once.
    np.testing.assert_array_equal(pixels, np.asarray(ImageOps.exif_transpose(Image.open(path))))


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_rotated_copy_of_a_photo_png_is_exact(tmp_path: Path, orientation: int) -> None:
    upright = load_rgb(SAMPLES / "chelsea.jpg")
    path = with_orientation(Image.fromarray(upright), orientation, tmp_path / "cat.png")
    pixels = load_rgb(path)
    np.testing.assert_array_equal(pixels, upright)
    size = read_size(path)
    assert (size.height, size.width) == pixels.shape[:2] == upright.shape[:2]


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_rotated_copy_of_a_photo_jpeg_is_close(tmp_path: Path, orientation: int) -> None:
    upright = load_rgb(SAMPLES / "coffee.jpg")
    path = with_orientation(Image.fromarray(upright), orientation, tmp_path / "c.jpg", quality=95)
    pixels = load_rgb(path)
    assert pixels.shape == upright.shape
    assert read_size(path) == ImageSize(600, 400, orientation)
    difference = np.abs(pixels.astype(np.int16) - upright).mean()
    assert difference < 3  # JPEG re-encoding only; a wrong rotation gives about 40
    assert np.abs(np.rot90(pixels, 2).astype(np.int16) - upright).mean() > 20


def test_damaged_or_invalid_orientation_counts_as_upright(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 9
    Image.fromarray(noise(4, 6)).save(tmp_path / "bad.png", exif=exif)
    assert read_size(tmp_path / "bad.png") == ImageSize(6, 4, 1)
    assert load_rgb(tmp_path / "bad.png").shape == (4, 6, 3)


# --- modes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_gray_keeps_the_high_byte(tmp_path: Path, suffix: str) -> None:
    values = np.array([[0, 255, 256, 32768, 65280, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / f"g16{suffix}")
    assert Image.open(tmp_path / f"g16{suffix}").mode == "I;16"
    pixels = load_rgb(tmp_path / f"g16{suffix}")
    assert pixels.shape == (1, 6, 3)
    np.testing.assert_array_equal(pixels[0, :, 0], [0, 0, 1, 128, 255, 255])
    assert (pixels == pixels[..., :1]).all()  # gray in all three channels


def test_16_bit_full_range_photo_is_not_white(tmp_path: Path) -> None:
    gray8 = np.asarray(Image.open(SAMPLES / "astronaut.jpg").convert("L"))
    gray16 = gray8.astype(np.uint16) * 257  # 0..255 -> 0..65535, the full 16-bit range
    Image.fromarray(gray16).save(tmp_path / "a16.png")
    np.testing.assert_array_equal(load_rgb(tmp_path / "a16.png")[..., 1], gray8)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0, 7, 255], [0, 7, 255]),  # 8-bit values in a 32-bit file
        ([0, 256, 65535], [0, 1, 255]),  # 16-bit values
        ([-1000, 0, 1000], [0, 128, 255]),  # anything else: stretched min..max
    ],
)
def test_32_bit_integer_is_scaled_by_range(
    tmp_path: Path, values: list[int], expected: list[int]
) -> None:
    Image.fromarray(np.array([values], dtype=np.int32)).save(tmp_path / "i.tif")
    assert Image.open(tmp_path / "i.tif").mode == "I"
    np.testing.assert_array_equal(load_rgb(tmp_path / "i.tif")[0, :, 2], expected)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.0, 0.5, 1.0], [0, 128, 255]),
        ([0.0, 7.4, 200.0], [0, 7, 200]),
        ([-1.0, 1.0, 3.0], [0, 128, 255]),
        ([np.nan, 0.25, np.inf], [0, 64, 0]),
    ],
)
def test_float_is_scaled_by_range(tmp_path: Path, values: list[float], expected: list[int]) -> None:
    Image.fromarray(np.array([values], dtype=np.float32)).save(tmp_path / "f.tif")
    assert Image.open(tmp_path / "f.tif").mode == "F"
    np.testing.assert_array_equal(load_rgb(tmp_path / "f.tif")[0, :, 0], expected)


def test_cmyk_tiff_is_converted_exactly(tmp_path: Path) -> None:
    cmyk = np.array([[[0, 0, 0, 0], [255, 0, 0, 0], [0, 255, 255, 0], [0, 0, 0, 255]]], np.uint8)
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "c.tif")
    pixels = load_rgb(tmp_path / "c.tif")
    np.testing.assert_array_equal(
        pixels[0], [[255, 255, 255], [0, 255, 255], [255, 0, 0], [0, 0, 0]]
    )


def test_cmyk_jpeg_photo_looks_like_the_rgb_photo(tmp_path: Path) -> None:
    rgb = load_rgb(SAMPLES / "coffee.jpg")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    pixels = load_rgb(tmp_path / "cmyk.jpg")
    assert np.abs(pixels.astype(np.int16) - rgb).mean() < 4


def test_palette_with_transparency_goes_over_white(tmp_path: Path) -> None:
    indexed = Image.fromarray(np.array([[0, 1, 2]], dtype=np.uint8), mode="P")
    indexed.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    indexed.save(tmp_path / "p.png", transparency=1)
    np.testing.assert_array_equal(
        load_rgb(tmp_path / "p.png")[0], [[255, 0, 0], [255, 255, 255], [0, 0, 255]]
    )
    indexed.save(tmp_path / "opaque.png")
    np.testing.assert_array_equal(
        load_rgb(tmp_path / "opaque.png")[0], [[255, 0, 0], [0, 255, 0], [0, 0, 255]]
    )


def test_rgba_is_composited_over_white(tmp_path: Path) -> None:
    rgba = np.array([[[255, 0, 0, 0], [0, 0, 255, 255], [0, 0, 0, 128]]], dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    pixels = load_rgb(tmp_path / "a.png")
    np.testing.assert_array_equal(pixels[0, :2], [[255, 255, 255], [0, 0, 255]])
    assert np.abs(pixels[0, 2].astype(int) - 127).max() <= 1  # half black over white


def test_opaque_rgba_photo_keeps_its_colours(tmp_path: Path) -> None:
    rgb = load_rgb(SAMPLES / "chelsea.jpg")
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "cat.png")
    np.testing.assert_array_equal(load_rgb(tmp_path / "cat.png"), rgb)


def test_gray_alpha_is_composited_over_white(tmp_path: Path) -> None:
    la = np.array([[[0, 0], [50, 255], [0, 255]]], dtype=np.uint8)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(load_rgb(tmp_path / "la.png")[0, :, 0], [255, 50, 0])


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_bilevel_is_black_and_white(tmp_path: Path, suffix: str) -> None:
    Image.fromarray(np.array([[False, True, True, False]])).save(tmp_path / f"b{suffix}")
    assert Image.open(tmp_path / f"b{suffix}").mode == "1"
    pixels = load_rgb(tmp_path / f"b{suffix}")
    np.testing.assert_array_equal(pixels[0], [[0, 0, 0], [255] * 3, [255] * 3, [0, 0, 0]])


@pytest.mark.parametrize(
    ("suffix", "save"), [(".png", {}), (".bmp", {}), (".webp", {"lossless": True})]
)
def test_gray_and_rgb_are_exact(tmp_path: Path, suffix: str, save: dict[str, Any]) -> None:
    gray = noise(6, 9, channels=1)
    Image.fromarray(gray).save(tmp_path / f"g{suffix}", **save)
    np.testing.assert_array_equal(load_rgb(tmp_path / f"g{suffix}"), np.stack([gray] * 3, -1))
    rgb = noise(6, 9, seed=1)
    Image.fromarray(rgb).save(tmp_path / f"c{suffix}", **save)
    np.testing.assert_array_equal(load_rgb(tmp_path / f"c{suffix}"), rgb)


@pytest.mark.parametrize("orientation", [1, 6])
def test_8_bit_decode_makes_no_float_or_second_full_copy(tmp_path: Path, orientation: int) -> None:
    upright = noise(1000, 1200)
    path = with_orientation(Image.fromarray(upright), orientation, tmp_path / "big.png")
    load_rgb(path)  # warm up Pillow's plugins outside the measurement
    tracemalloc.start()
    try:
        pixels = load_rgb(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(pixels, upright)
    # The output plus one band in transit; a second full-size copy alone would make it 2x
    # and a float32 frame 5x. (Pillow's own buffers are not traced.)
    assert peak < 1.8 * pixels.nbytes


# --- pixel limit ----------------------------------------------------------------------------


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def write_bomb(path: Path, side: int = 15000) -> Path:
    """A valid side x side bilevel PNG of zeros: about 30 KB on disk, 675 MB as RGB."""
    packer = zlib.compressobj(9)
    row = bytes(1 + (side + 7) // 8)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )
    return path


# pytest resets warning filters around each test; the module's own filter is checked in a
# fresh process below.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bomb_is_refused_with_a_way_out(tmp_path: Path) -> None:
    bomb = write_bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 100_000
    for reader in (read_size, load_rgb):
        with pytest.raises(ImageError) as caught:
            reader(bomb)
        message = str(caught.value)
        assert str(bomb) in message and "15000 x 15000" in message
        assert (
            "180,000,000" in message and "raise the pixel limit to at least 225,000,000" in message
        )
        assert "--" not in message  # core names the setting; the CLI adds its own flag
        assert (caught.value.setting, caught.value.value) == ("max_pixels", "225000000")


def test_bomb_in_a_fresh_process_prints_nothing_but_our_message(tmp_path: Path) -> None:
    bomb = write_bomb(tmp_path / "bomb.png")
    script = (
        "import sys\n"
        "from maskdesk.core.errors import ImageError\n"
        "from maskdesk.core.images import load_rgb\n"
        "try:\n"
        "    load_rgb(sys.argv[1])\n"
        "except ImageError as e:\n"
        "    print(e, e.setting, e.value, sep='|')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(bomb)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0
    assert done.stderr == ""  # no DecompressionBombWarning, no traceback
    message, setting, value = done.stdout.rstrip("\n").split("|")
    assert "15000 x 15000 = 225,000,000 pixels, over the limit of 180,000,000" in message
    assert (setting, value) == ("max_pixels", "225000000")


def test_limit_is_checked_before_any_pixel_is_decoded(tmp_path: Path) -> None:
    data = (SAMPLES / "coffee.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])  # damaged pixel data
    with pytest.raises(ImageError, match="over the limit of 1,000 pixels"):
        load_rgb(tmp_path / "cut.jpg", max_pixels=1000)


def test_limit_argument_and_module_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.fromarray(noise(5, 7)).save(tmp_path / "small.png")
    with pytest.raises(ImageError, match="5 = 35 pixels, over the limit of 34"):
        load_rgb(tmp_path / "small.png", max_pixels=34)
    assert load_rgb(tmp_path / "small.png", max_pixels=35).shape == (5, 7, 3)
    # A CLI flag sets the module default after import; it is read at call time.
    monkeypatch.setattr(images, "DEFAULT_MAX_PIXELS", 20)
    with pytest.raises(ImageError, match="over the limit of 20 pixels") as caught:
        read_size(tmp_path / "small.png")
    assert (caught.value.setting, caught.value.value) == ("max_pixels", "35")
    assert read_size(tmp_path / "small.png", max_pixels=100) == ImageSize(7, 5, 1)


def test_pillow_limit_never_blocks_an_image_under_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.fromarray(noise(5, 7)).save(tmp_path / "small.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # Pillow alone would refuse 35 pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_rgb(tmp_path / "small.png", max_pixels=100).shape == (5, 7, 3)


@pytest.mark.parametrize("as_error", [False, True])
def test_pillow_bomb_error_and_warning_become_our_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_error: bool
) -> None:
    Image.fromarray(noise(3, 5)).save(tmp_path / "small.png")  # 15 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5)
    big_for_pillow = 6 if as_error else 10  # Pillow raises above 2x its limit, warns above 1x
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as under `python -W error`: the warning is raised
        with pytest.raises(ImageError, match="raise the pixel limit") as caught:
            load_rgb(tmp_path / "small.png", max_pixels=big_for_pillow)
    assert str(tmp_path / "small.png") in str(caught.value)
    assert "--" not in str(caught.value)
    # The 15 pixels Pillow counted are the limit that lets this file through.
    assert (caught.value.setting, caught.value.value) == ("max_pixels", "15")


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_file_raises_instead_of_grey_pixels(tmp_path: Path, suffix: str) -> None:
    Image.open(SAMPLES / "coffee.jpg").save(tmp_path / f"whole{suffix}")
    data = (tmp_path / f"whole{suffix}").read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    assert read_size(cut) == ImageSize(600, 400, 1)  # the header is intact
    with pytest.raises(ImageError, match="damaged or incomplete") as caught:
        load_rgb(cut)
    assert str(cut) in str(caught.value) and "again" in str(caught.value)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p.write_bytes(b""), r"empty \(0 bytes\)"),
        (lambda p: p.write_text("not a photo\n", encoding="utf-8"), "not a JPEG, PNG"),
        (lambda p: Image.new("RGB", (4, 4)).save(p, format="GIF"), "not a JPEG, PNG"),
        (lambda p: None, "not found"),
        (lambda p: p.mkdir(), "is a folder"),
    ],
    ids=["empty", "text", "gif", "missing", "folder"],
)
@pytest.mark.parametrize("reader", [read_size, load_rgb], ids=["read_size", "load_rgb"])
def test_bad_input_names_the_file(
    tmp_path: Path, make: Callable[[Path], object], expected: str, reader: Callable[[Path], object]
) -> None:
    path = tmp_path / "photo.jpg"
    make(path)
    with pytest.raises(ImageError, match=expected) as caught:
        reader(path)
    assert str(path) in str(caught.value)


def test_non_ascii_paths_work(tmp_path: Path) -> None:
    folder = tmp_path / "ünï"
    folder.mkdir()
    rgb = noise(4, 6)
    Image.fromarray(rgb).save(folder / "fötö 写真.png")
    (folder / "fötö 写真.jpg").write_bytes((SAMPLES / "chelsea.jpg").read_bytes())
    np.testing.assert_array_equal(load_rgb(folder / "fötö 写真.png"), rgb)
    assert read_size(str(folder / "fötö 写真.jpg")) == ImageSize(451, 300, 1)
    assert scan_folder(tmp_path) == ["ünï/fötö 写真.jpg", "ünï/fötö 写真.png"]


# --- folder scan ----------------------------------------------------------------------------


def test_natural_key_orders_paths_as_a_person_reads_them() -> None:
    expected = [
        "2b.jpg",  # digits before letters
        "a/sub/c.jpg",  # a folder's images stay together, its subfolders by name among them
        "a/z.jpg",
        "a.jpg",  # a folder before a file of the same name; then the stem decides first:
        "a b.jpg",  # spaces and punctuation before digits, digits before letters
        "a-1.jpg",
        "a_1.jpg",
        "a1.jpg",
        "ab.jpg",
        "B/y.jpg",  # folders and files interleave by name; "B" and "b" tie, upper case first
        "b/x.jpg",
        "b.jpg",
        "ete.jpg",  # accents ignored, then code points break the tie
        "e\u0301te.jpg",  # "été" decomposed, as macOS writes names
        "\u00e9te.jpg",  # "été" composed
        "f.jpg",
        "IMG1.jpg",  # case ignored, then upper case first
        "img1.jpg",
        "img1.png",  # the suffix decides after the stem
        "img2.jpg",
        "img02.jpg",  # equal numbers: fewer leading zeros first
        "img10.jpg",
        "x1y2.jpg",
        "x1y10.jpg",
        "写真2.jpg",
        "写真10.jpg",
    ]
    for shuffled in (sorted(expected), sorted(expected, reverse=True), expected[::3] + expected):
        assert sorted(dict.fromkeys(shuffled), key=natural_key) == expected
    assert len({natural_key(p) for p in expected}) == len(expected)  # a total order: no ties
    assert natural_key("a") < natural_key("a1") < natural_key("ab")


def test_scan_lists_tricky_names_in_the_one_natural_order(tmp_path: Path) -> None:
    # Names that a plain string sort, a per-folder sort of whole names and a natural sort of
    # whole paths each order differently; none collide on a case-insensitive file system.
    expected = [
        "_draft.png",
        "a/x.png",
        "A.png",
        "a b/x.png",
        "a-1.png",
        "a1/x.png",
        "a2.png",
        "a10.png",
        "b/sub/y.png",
        "b/x.png",
        "b.png",
        "ete.png",
        "Été.png",
        "img2.png",
        "img02.png",
        "img10.png",
        "ünï/b.png",
        "写真2.png",
        "写真10.png",
    ]
    for rel in reversed(expected):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    found = scan_folder(tmp_path)
    assert found == expected
    assert found == sorted(sorted(expected, reverse=True), key=natural_key)
    assert found != sorted(expected)  # the order is not simply that of the strings


def test_scan_recurses_in_natural_order_and_skips_what_is_not_a_photo(tmp_path: Path) -> None:
    for rel in [
        "img10.jpg",
        "img2.jpg",
        "IMG1.png",
        "photo.JPEG",
        "a/x.jpg",
        "b/x.jpg",
        "b/sub/y.tif",
        "b/sub/z.webp",
        "scans/page.bmp",
        ".hidden.jpg",
        ".hiddendir/z.jpg",
        ".maskdesk/thumbs/t.png",
        "notes.txt",
        "a/x.gif",
        "a/readme.md",
        "jpg",
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "empty_folder").mkdir()
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "link.jpg").symlink_to(tmp_path / "img2.jpg")
    (tmp_path / "broken.jpg").symlink_to(tmp_path / "gone.jpg")
    found = scan_folder(tmp_path)
    assert found == [
        "a/x.jpg",
        "b/sub/y.tif",
        "b/sub/z.webp",
        "b/x.jpg",
        "IMG1.png",
        "img2.jpg",
        "img10.jpg",
        "link.jpg",
        "photo.JPEG",
        "scans/page.bmp",
    ]
    assert scan_folder(str(tmp_path / "b")) == ["sub/y.tif", "sub/z.webp", "x.jpg"]


def test_scan_of_a_missing_folder_or_a_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="does not exist") as caught:
        scan_folder(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(caught.value)
    (tmp_path / "a.jpg").write_bytes(b"x")
    with pytest.raises(ImageError, match="is not a folder"):
        scan_folder(tmp_path / "a.jpg")
