"""Decode once: EXIF-upright, any mode to RGB uint8, a pixel limit, and errors that name the file.

`load_rgb` is the one decoder behind model input, display and export, so every view sees the
same pixels; `read_size` reads only the header and always agrees with `load_rgb`'s shape.

Mode policy (documented here because it decides what the model sees):
- Alpha (RGBA, LA, PA, palette with transparency) is composited over white, as viewers show
  transparent areas, rather than exposing whatever colour hides under alpha 0.
- 16-bit integer images (I;16*) keep their high byte (``value >> 8``, as OpenCV and libpng do):
  65535 -> 255, 256 -> 1. A 16-bit image that uses only the low bits therefore looks dark;
  that is faithful to its values and never clips to white.
- 32-bit integer images (I) are read by their range: within 0..255 as 8-bit values, within
  0..65535 as 16-bit (``>> 8``), otherwise stretched linearly from min..max to 0..255.
- Float images (F): within 0..1 scaled by 255, within 0..255 rounded, otherwise stretched
  from min..max; NaN and infinities become 0.
- ICC profiles are ignored; CMYK, YCbCr, LAB and the rest go through Pillow's conversion.
"""

from __future__ import annotations

import functools
import io
import os
import re
import stat
import string
import struct
import threading
import unicodedata
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
from PIL import Image, UnidentifiedImageError

from maskdesk.core.errors import ImageError
from maskdesk.core.headers import quick_size

DEFAULT_MAX_PIXELS: int = 180_000_000
# read_size parses plain JPEG and PNG headers itself (headers.quick_size), several times faster
# than Pillow, and asks Pillow whenever that reader is unsure. Benchmarks switch it off to
# measure the difference; read at call time.
QUICK_HEADERS: bool = True
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
)

# The content decides, not the suffix; restricting Pillow to these plugins keeps exotic
# decoders away from untrusted files. JPEG also covers MPO (phones' multi-picture JPEGs).
_PIL_FORMATS = ("JPEG", "PNG", "BMP", "TIFF", "WEBP")
_FORMAT_NAMES = "JPEG, PNG, BMP, TIFF or WebP"
_ORIENTATION_TAG = 0x0112
# Exceptions Pillow raises for damaged data; a decoder facing arbitrary files sees them all.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error)
# Pillow's bomb messages read "Image size (N pixels) exceeds limit of ...".
_PILLOW_PIXELS = re.compile(r"\((\d+) pixels\)")

# Our limit is the authority. Pillow's own bomb check must never refuse an image we accept,
# so its limit is raised to ours when needed (never lowered); its warning only fires for
# images we refuse a moment later, so it is silenced rather than printed before our message.
_pillow_limit_lock = threading.Lock()
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


@dataclass(frozen=True)
class ImageSize:
    """Upright size of an image (after EXIF orientation) and the orientation tag applied."""

    width: int
    height: int
    orientation: int = 1

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ValueError(f"image size must be positive, got {self.width} x {self.height}")
        if not 1 <= self.orientation <= 8:
            raise ValueError(f"EXIF orientation must be 1-8, got {self.orientation}")


def read_size(path: Path | str, *, max_pixels: int | None = None) -> ImageSize:
    """Upright width, height and orientation from the header; no pixels are decoded.

    A file whose pixel data is damaged passes here and fails in `load_rgb`.
    """
    path = Path(path)
    limit = _limit(max_pixels)
    # The quick reader answers only for readable, regular, well-formed JPEG and PNG files;
    # everything else (missing, empty, damaged, other formats) gets Pillow and its messages.
    quick = quick_size(path) if QUICK_HEADERS else None
    if quick is not None:
        width, height, orientation = quick
        if width * height > limit:  # the same refusal as _open's, in the file's axes
            stored = (height, width) if orientation >= 5 else (width, height)
            raise _too_large(path, *stored, limit)
        return ImageSize(width, height, orientation)
    return _pillow_size(path, limit)


def _pillow_size(path: Path, limit: int) -> ImageSize:
    """read_size through Pillow's header parser: any format, and the reference for quick_size."""
    with _open(path, limit) as im:
        width, height = im.size
        orientation, pending = _orientation(im)
    if pending >= 5:  # 5-8 swap the axes
        width, height = height, width
    return ImageSize(width, height, orientation)


def load_rgb(path: Path | str, *, max_pixels: int | None = None) -> np.ndarray:
    """Pixels as an (H, W, 3) uint8 C-contiguous, writable array, EXIF-upright."""
    path = Path(path)
    with _open(path, _limit(max_pixels)) as im:
        # Read before load(): read_size sees only the header, and both must agree.
        _, pending = _orientation(im)
        try:
            im.load()
            return _upright(_to_rgb_or_gray(im, path), pending)
        except MemoryError:
            width, height = im.size
            raise ImageError(
                f"Not enough memory to decode {path} ({width} x {height} pixels). "
                "Close other programs or downscale the image."
            ) from None
        except _DECODE_ERRORS as exc:
            raise ImageError(
                f"Cannot read image {path}: the file is damaged or incomplete ({exc}). "
                "Copy or export it again."
            ) from exc


_DIGIT_RUNS = re.compile(r"(\d+)")
# ASCII spaces and punctuation move below every digit and letter, keeping their own order, so
# that "a b" < "a-1" < "a_1" < "a1" < "ab" as in file browsers ("_" and "~" would otherwise
# sort among or after letters).
_PUNCTUATION_FIRST = str.maketrans({c: chr(i) for i, c in enumerate(" " + string.punctuation)})

# One path component's sort key: (name, suffix, 0 for a folder or 1 for a file, zeros, raw).
_Part = tuple[object, ...]


def natural_key(path: str) -> tuple[_Part, ...]:
    """Sort key of a relative POSIX path: the natural order in which the image list shows paths.

    - Paths compare folder by folder, so a folder's images stay together; at each level
      folders and files interleave by name, as the list reads ("a/x.png" < "b.png" <
      "c/y.png"), and a folder comes before a file of the same name ("a/x.png" < "a.png").
    - Names compare case-insensitively and without accents ("Été" beside "ete", not after
      "z"). Digit runs compare by value ("img2" < "img10") and sort where a digit would:
      after spaces and ASCII punctuation, before letters ("a b" < "a-1" < "a1" < "ab").
    - A file's stem decides before its suffix: "a.png" < "a-1.png" < "a1.png".
    - Names equal so far: fewer leading zeros first ("img2" < "img02"), then code points
      ("IMG1" < "img1"), so two distinct paths never tie.

    `scan_folder` returns its paths in this order, and the project lists its images in it.
    """
    *folders, name = path.split("/")
    stem, suffix = os.path.splitext(name)
    primary, zeros = _name_key(stem)
    file = (primary, _recurring_key(suffix)[0], 1, zeros, name)
    return (*map(_folder_key, folders), file)


def _name_key(name: str) -> tuple[tuple[str | int, ...], tuple[int, ...]]:
    """The primary key of one name and the lengths of its digit runs (see natural_key)."""
    if name.isascii():  # most names: no accents to strip
        plain = name.lower()
    else:
        folded = unicodedata.normalize("NFKD", name.casefold())
        plain = "".join(c for c in folded if not unicodedata.combining(c))
    # re.split with a group alternates text, digits, text...: even slots hold text, odd slots
    # numbers, so two keys never compare a str with an int. Text followed by a number gets a
    # "0" appended (text holds no digits otherwise) so that the number sorts where a digit
    # would: "a" + 1 -> "a0", after "a b" and "a-" but before "ab".
    chunks: list[str | int] = list(_DIGIT_RUNS.split(plain.translate(_PUNCTUATION_FIRST)))
    digits = cast("list[str]", chunks[1::2])
    chunks[1::2] = map(int, digits)
    chunks[0:-1:2] = [f"{text}0" for text in chunks[0:-1:2]]
    return tuple(chunks), tuple(map(len, digits))


# Folder names and suffixes recur in the path of every image they hold; stems rarely do.
_recurring_key = functools.lru_cache(maxsize=4096)(_name_key)


def _folder_key(name: str) -> _Part:
    primary, zeros = _recurring_key(name)
    return (primary, (), 0, zeros, name)  # no suffix: before files of the same name


def scan_folder(folder: Path | str) -> list[str]:
    """Supported images below `folder` as relative POSIX paths, sorted by `natural_key`.

    Hidden files and folders (names starting with ".", which includes `.maskdesk`) are skipped,
    and so are symbolic links to folders (they could loop) and subfolders that cannot be listed.
    """
    root = Path(folder)
    try:
        if not root.is_dir():
            what = "is not a folder" if root.exists() else "does not exist"
            raise ImageError(f"Image folder {root} {what}. Check the path.")
        pending: list[tuple[Path, str]] = [(root, "")]
        found: list[str] = []
        while pending:
            here, prefix = pending.pop()
            for entry, is_dir in _list(here, top=here == root):
                if entry.name.startswith("."):
                    continue
                if is_dir:
                    pending.append((Path(entry.path), f"{prefix}{entry.name}/"))
                elif os.path.splitext(entry.name)[1].lower() in SUPPORTED_SUFFIXES:
                    found.append(prefix + entry.name)
    except OSError as exc:
        raise ImageError(
            f"Cannot list image folder {root}: {exc.strerror or exc}. Check its permissions."
        ) from exc
    # The one order of paths: the project sorts its records with the same key.
    found.sort(key=natural_key)
    return found


def _list(folder: Path, *, top: bool) -> list[tuple[os.DirEntry[str], bool]]:
    """Entries of one folder with "is a real folder" flags; an unreadable subfolder is empty."""
    try:
        with os.scandir(folder) as entries:
            out = []
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    out.append((entry, True))
                elif entry.is_file():  # follows file symlinks; broken links are dropped
                    out.append((entry, False))
            return out
    except OSError:
        if top:
            raise
        return []


def _limit(max_pixels: int | None) -> int:
    # Read the module global at call time: a CLI flag may have changed it after import.
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    if limit < 1:
        raise ValueError(f"max_pixels must be positive, got {limit}")
    return limit


def _let_pillow_allow(limit: int) -> None:
    with _pillow_limit_lock:
        current = Image.MAX_IMAGE_PIXELS
        if current is not None and current < limit:
            Image.MAX_IMAGE_PIXELS = limit


def _too_large(path: Path, width: int, height: int, limit: int) -> ImageError:
    pixels = width * height
    return ImageError(
        f"Image {path} is {width} x {height} = {pixels:,} pixels, over the limit of "
        f"{limit:,} pixels that guards against decompression bombs. If you trust this file, "
        f"raise the pixel limit to at least {pixels:,}.",
        setting="max_pixels",
        value=str(pixels),
    )


@contextmanager
def _open(path: Path, limit: int) -> Iterator[Image.Image]:
    """Open lazily (header only) and refuse anything that is not a decodable, allowed image."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ImageError(
            f"Image file not found: {path}. Check the path; if the file was moved or deleted, "
            "rescan its folder."
        ) from None
    except OSError as exc:
        raise ImageError(f"Cannot read image {path}: {exc.strerror or exc}.") from exc
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(f"{path} is a folder, not an image file. Give an image file instead.")
    if info.st_size == 0:
        raise ImageError(
            f"Cannot read image {path}: the file is empty (0 bytes), perhaps an unfinished "
            "copy or download. Copy it again or remove it."
        )
    _let_pillow_allow(limit)
    try:
        im = Image.open(path, formats=_PIL_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refuses only above twice our limit (see _let_pillow_allow), or warns when
        # warnings are errors; either way the image is over our limit.
        # Pillow names the size in its message ("Image size (N pixels) exceeds ..."); when
        # it does, the error can suggest a limit that lets this file through.
        found = _PILLOW_PIXELS.search(str(exc))
        raise ImageError(
            f"Image {path} is over the limit of {limit:,} pixels that guards against "
            f"decompression bombs ({exc}). If you trust this file, raise the pixel limit.",
            setting="max_pixels",
            value=found.group(1) if found else None,
        ) from None
    except UnidentifiedImageError:
        raise ImageError(
            f"Cannot read image {path}: it is not a {_FORMAT_NAMES} image (or its header is "
            "damaged). Convert it to one of these formats or remove it from the folder."
        ) from None
    except PermissionError as exc:
        raise ImageError(
            f"Cannot read image {path}: permission denied. Check the file's permissions."
        ) from exc
    except _DECODE_ERRORS as exc:
        raise ImageError(
            f"Cannot read image {path}: the file is damaged ({exc}). Copy or export it again."
        ) from exc
    with im:
        width, height = im.size
        if width * height > limit:
            raise _too_large(path, width, height, limit)
        if width < 1 or height < 1:
            raise ImageError(f"Cannot read image {path}: it has no pixels ({width} x {height}).")
        yield im


def _orientation(im: Image.Image) -> tuple[int, int]:
    """The EXIF orientation (1-8, 1 if absent) and the part of it still to apply.

    The tag is read as Pillow's exif_transpose reads it (EXIF, else XMP). Recent Pillow versions
    already turn TIFF files upright themselves (size and pixels); for those nothing is pending.
    """
    tag = _orientation_tag(im)
    if tag != 1 and im.format == "TIFF" and _pillow_orients_tiff():
        return tag, 1
    return tag, tag


@functools.cache
def _pillow_orients_tiff() -> bool:
    """Probe once whether this Pillow applies a TIFF's orientation tag on its own."""
    buffer = io.BytesIO()
    # A 2 x 1 strip tagged "rotate 90 clockwise": upright it is 1 x 2, dark pixel on top.
    Image.frombytes("L", (2, 1), b"\x00\xff").save(buffer, format="TIFF", tiffinfo={274: 6})
    with Image.open(buffer) as probe:
        header_upright = probe.size == (1, 2)
        probe.load()
        return header_upright and probe.size == (1, 2) and probe.getpixel((0, 1)) == 255


def _orientation_tag(im: Image.Image) -> int:
    try:
        # PngImageFile.getexif() decodes the whole image to look for an eXIf chunk after the
        # pixels; the base method reads only what the header parse found (eXIf before IDAT,
        # as writers put it), so read_size stays header-only and agrees with load_rgb.
        exif = Image.Image.getexif(im) if im.format == "PNG" else im.getexif()
        value = exif.get(_ORIENTATION_TAG, 1)
    except Exception:  # metadata is advisory: damaged EXIF must not make a photo unreadable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _to_rgb_or_gray(im: Image.Image, path: Path) -> Image.Image | np.ndarray:
    """An RGB or L image, or a uint8 array for modes that need numpy arithmetic."""
    mode = im.mode
    if mode in ("RGB", "L"):
        return im
    if mode == "1":
        return im.convert("L")
    if mode.startswith("I;16"):
        return (np.asarray(im) >> 8).astype(np.uint8)
    if mode == "I":
        return _scale_int32(np.asarray(im))
    if mode == "F":
        return _scale_float(np.asarray(im))
    if mode in ("RGBA", "LA", "PA", "RGBa") or (mode == "P" and im.has_transparency_data):
        return _over_white(im)
    try:
        return im.convert("RGB")
    except ValueError as exc:
        raise ImageError(
            f"Cannot read image {path}: its colour mode {mode} is not supported "
            f"({exc}). Convert it to RGB."
        ) from exc


def _over_white(im: Image.Image) -> Image.Image:
    rgba = im if im.mode == "RGBA" else im.convert("RGBA")
    bands = cast("tuple[tuple[int, int], ...]", rgba.getextrema())  # per band for RGBA
    if bands[3][0] == 255:  # fully opaque: nothing to blend
        return rgba.convert("RGB")
    white = Image.new("RGB", rgba.size, (255, 255, 255))
    white.paste(rgba, mask=rgba)  # integer blend in C; no float copy of the frame
    return white


def _scale_int32(values: np.ndarray) -> np.ndarray:
    low, high = int(values.min()), int(values.max())
    if low >= 0 and high <= 255:
        return values.astype(np.uint8)
    if low >= 0 and high <= 65535:
        return (values >> 8).astype(np.uint8)
    return _stretch(values.astype(np.float32), float(low), float(high))


def _scale_float(values: np.ndarray) -> np.ndarray:
    values = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if low >= 0.0 and high <= 1.0:
        values *= 255.0
        return np.rint(values).astype(np.uint8)
    if low >= 0.0 and high <= 255.0:
        return np.rint(values).astype(np.uint8)
    return _stretch(values, low, high)


def _stretch(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map low..high linearly onto 0..255 (float32 input, modified in place)."""
    if high <= low:  # a constant image outside 0..255: clip it
        return np.full(values.shape, min(max(low, 0.0), 255.0), dtype=np.uint8)
    values -= low
    values *= 255.0 / (high - low)
    return np.rint(values).astype(np.uint8)


def _upright(pixels: Image.Image | np.ndarray, orientation: int) -> np.ndarray:
    """Write the pixels once into the upright RGB array, through a view that undoes orientation.

    Pillow hands pixels to numpy only as a bytes copy of the whole frame; copying band by band
    keeps that transient small, and writing through the view makes the rotation free.
    """
    if isinstance(pixels, np.ndarray):
        height, width = pixels.shape[:2]
    else:
        width, height = pixels.size
    shape = (width, height, 3) if orientation >= 5 else (height, width, 3)
    out = np.empty(shape, dtype=np.uint8)
    stored = _ORIENT[_INVERSE.get(orientation, orientation)](out)  # out in the file's layout
    if isinstance(pixels, np.ndarray):
        stored[...] = pixels[..., None] if pixels.ndim == 2 else pixels
        return out
    rows = max(1, _BAND_BYTES // (4 * width))  # Pillow keeps RGB as 4 bytes a pixel
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        band = np.asarray(pixels.crop((0, top, width, bottom)))
        stored[top:bottom] = band[..., None] if band.ndim == 2 else band
    return out


_BAND_BYTES = 1 << 20
_INVERSE = {6: 8, 8: 6}  # the other orientations undo themselves


# The same transposes as PIL.ImageOps.exif_transpose, as numpy views (no copy).
_ORIENT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirror left-right
    3: lambda a: a[::-1, ::-1],  # rotate 180
    4: lambda a: a[::-1],  # mirror top-bottom
    5: lambda a: a.swapaxes(0, 1),  # transpose
    6: lambda a: a.swapaxes(0, 1)[:, ::-1],  # rotate 90 clockwise
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),  # transverse
    8: lambda a: a.swapaxes(0, 1)[::-1],  # rotate 90 counter-clockwise
}
