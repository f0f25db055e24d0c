"""Safe decoding of untrusted listing images into RGB, or a rejection that says why.

Marketplace images come from sellers and CDNs: some are truncated, some are HTML error pages
saved as ``.jpg``, some are PNGs or WebPs behind a ``.jpg`` name, some are CMYK, carry an alpha
channel or 16-bit samples, some are stored sideways with an EXIF orientation tag, and a few are
decompression bombs (a tiny file whose header claims billions of pixels). ``decode_image`` turns
each into an upright 8-bit RGB image or a ``Rejected`` with a short reason code; it never raises
for bad data, so one bad image never stops a run.

Limits are checked before any pixel is decoded: the byte count first, then the header's pixel
count (an explicit check, so a bomb is rejected rather than merely warned about by Pillow). The
format is read from the content, never from the name, and a disagreement with the name is
recorded. JPEGs decode in draft mode (the decoder's DCT scaling) straight to about the size the
features need, which is most of the speed of the whole image pipeline.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Formats we accept, by Pillow's name; anything else (TIFF, PSD, ICO, EPS...) is rejected, which
# also keeps Pillow's rarely exercised decoders away from untrusted bytes.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")  # "JPEG" also opens MPO, a JPEG with extra frames
# What each file-name extension promises, to record a mismatch with the content.
EXTENSION_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jpe": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".gif": "GIF",
    ".bmp": "BMP",
}
# Pillow names a JPEG with a multi-picture index (many phone cameras write one) "MPO".
SAME_FORMAT = {"MPO": "JPEG"}
EXIF_ORIENTATION = 0x0112
# Rejection reasons (the quarantine's ``reason`` codes).
EMPTY = "empty_image"
TOO_MANY_BYTES = "too_many_bytes"
NOT_AN_IMAGE = "not_an_image"
UNSUPPORTED_FORMAT = "unsupported_format"
TOO_MANY_PIXELS = "too_many_pixels"
TOO_SMALL = "too_small"
UNSUPPORTED_MODE = "unsupported_mode"
TRUNCATED = "truncated_image"  # the file ends before its pixel data does
CORRUPT = "corrupt_image"  # any other undecodable header or pixel data
REASONS = (
    EMPTY,
    TOO_MANY_BYTES,
    NOT_AN_IMAGE,
    UNSUPPORTED_FORMAT,
    TOO_MANY_PIXELS,
    TOO_SMALL,
    UNSUPPORTED_MODE,
    TRUNCATED,
    CORRUPT,
)


@dataclass(frozen=True)
class Limits:
    """What one image may cost. ``max_pixels`` (width x height in the header) stops decompression
    bombs; ``max_bytes`` stops huge uploads before they are parsed; ``min_side`` rejects images too
    small to describe (a 1x1 tracking pixel). ``working_size`` is the side the features need:
    JPEGs decode at the smallest DCT scale that keeps both sides at least that big (None: full size).

    ``max_pixels`` may not exceed Pillow's own ``Image.MAX_IMAGE_PIXELS``: above it Pillow only
    warns, and a bomb must be rejected, not warned about."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    min_side: int = 8
    working_size: int | None = 128

    def __post_init__(self) -> None:
        pillow_limit = Image.MAX_IMAGE_PIXELS
        if pillow_limit is not None and self.max_pixels > pillow_limit:
            raise ValueError(f"max_pixels {self.max_pixels} exceeds Pillow's MAX_IMAGE_PIXELS {pillow_limit}")


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Decoded:
    """An upright 8-bit RGB image (``image``, possibly reduced by draft decoding) and the facts of
    its file: ``format`` read from the content, whether the name promised another (``format_mismatch``),
    the original ``mode``, ``width``/``height`` at full size as displayed (after EXIF rotation),
    and the EXIF ``orientation`` (1 = upright, the default when absent)."""

    image: Image.Image
    format: str
    format_mismatch: bool
    mode: str
    width: int
    height: int
    orientation: int


@dataclass(frozen=True)
class Rejected:
    """Why an image was not decoded: ``reason`` (one of ``REASONS``) and a readable ``detail``."""

    reason: str
    detail: str


def extension_format(key: str | None) -> str | None:
    """The format a file name promises by its extension, or None when it promises none we know."""
    return EXTENSION_FORMATS.get(PurePosixPath(key).suffix.lower()) if key else None


def decode_image(data: bytes, key: str | None = None, limits: Limits = DEFAULT_LIMITS) -> Decoded | Rejected:
    """Decode ``data`` (named ``key``, for the extension check only) into upright RGB.

    Returns ``Rejected`` for empty or oversized input, bytes that are no image, a format outside
    ``FORMATS``, a header over ``limits.max_pixels`` or under ``limits.min_side`` on a side, a pixel mode we
    cannot map to RGB, and truncated or corrupt pixel data. Never raises for bad data.
    """
    if not data:
        return Rejected(EMPTY, "no bytes")
    if len(data) > limits.max_bytes:
        return Rejected(TOO_MANY_BYTES, f"{len(data)} bytes > limit {limits.max_bytes}")
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        return _unidentified(data)
    except Image.DecompressionBombError as exc:
        return Rejected(TOO_MANY_PIXELS, str(exc))
    except (OSError, ValueError, SyntaxError) as exc:  # a header Pillow recognised but could not parse
        return Rejected(CORRUPT, f"unreadable header: {exc}")
    width, height = image.size
    if width * height > limits.max_pixels:
        return Rejected(TOO_MANY_PIXELS, f"{width}x{height} = {width * height} pixels > limit {limits.max_pixels}")
    if min(width, height) < limits.min_side:
        return Rejected(TOO_SMALL, f"{width}x{height} is smaller than {limits.min_side} px on a side")
    promised = extension_format(key)
    mode, fmt = image.mode, image.format or "unknown"
    try:
        orientation = _orientation(image)
        if fmt == "JPEG" and limits.working_size:
            image.draft("RGB", (limits.working_size, limits.working_size))
        image.load()
        rgb = to_rgb(image)
        if rgb is None:
            return Rejected(UNSUPPORTED_MODE, f"pixel mode {mode!r} has no RGB mapping")
        if orientation != 1:
            rgb = ImageOps.exif_transpose(_bare(rgb, orientation))
    except Image.DecompressionBombError as exc:  # a frame larger than the header said (GIF, PNG APNG)
        return Rejected(TOO_MANY_PIXELS, str(exc))
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        # Pillow says "image file is truncated" (JPEG, PNG) or raises EOFError; other damage reads differently.
        truncated = isinstance(exc, EOFError) or "truncated" in str(exc).lower()
        return Rejected(TRUNCATED if truncated else CORRUPT, f"{fmt}: {exc}")
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    mismatch = promised is not None and promised != SAME_FORMAT.get(fmt, fmt)
    return Decoded(rgb, fmt, mismatch, mode, width, height, orientation)


def _unidentified(data: bytes) -> Rejected:
    """No accepted format recognised the bytes: either another image format or no image at all."""
    try:
        other = Image.open(io.BytesIO(data))
    except Exception:  # any failure here only means "not an image"; the verdict is the same
        head = data[:16]
        return Rejected(NOT_AN_IMAGE, f"no image format recognised (starts {head!r})")
    return Rejected(UNSUPPORTED_FORMAT, f"{other.format} is not one of {', '.join(FORMATS)}")


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1 to 8), 1 when absent, out of range or unreadable: a broken EXIF
    block must not cost an otherwise good picture."""
    try:
        value = int(image.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # Pillow's EXIF parser raises many kinds on malformed blocks; all mean "unknown"
        return 1
    return value if 1 <= value <= 8 else 1


def _bare(image: Image.Image, orientation: int) -> Image.Image:
    """A copy of ``image`` whose only metadata is ``orientation``, for ``exif_transpose``: conversion
    to RGB drops the source's EXIF, and the source's other tags are no business of the pixels."""
    bare = image.copy()
    bare.info = {}
    bare.getexif()[EXIF_ORIENTATION] = orientation
    return bare


def to_rgb(image: Image.Image) -> Image.Image | None:
    """8-bit RGB from any mode a web image uses, or None for a mode with no sensible mapping.

    Transparency is flattened onto white (how a marketplace page shows a cut-out product, and not
    the black that dropping the alpha channel would give); 16-bit and 32-bit integer grey is
    scaled from the 16-bit range rather than clipped (Pillow's own ``convert`` clips everything
    above 255 to white); CMYK and palettes convert through Pillow.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("1", "L", "CMYK", "YCbCr", "LAB", "HSV"):
        return image.convert("RGB")
    if mode == "P" and "transparency" not in image.info:
        return image.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "P", "La", "RGBa"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode.startswith("I;16") or mode == "I":
        grey = np.asarray(image, dtype=np.float64)
        grey8 = np.clip(np.rint(grey / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey8).convert("RGB")
    return None
