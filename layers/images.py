"""Image decoding and preprocessing: ONE function shared by training and serving.

Example:
    x = preprocess(jpeg_bytes, size=96)     # float32 (96, 96, 3) in [-1, 1], MobileNetV2's input scaling
    batch = np.stack([x])                    # the model's input is (N, size, size, 3)

IMPORTANT:
  * Decoding verifies the content (magic bytes via Pillow), applies the EXIF orientation, converts to RGB and
    refuses decompression bombs (MAX_PIXELS, on the declared size). A function also passes its own
    `max_pixels` (`pixel_budget`: what its memory limit allows with every request thread decoding at once),
    checked on the size actually decoded: a JPEG decodes at a reduced scale (draft mode), so a 12-megapixel
    photo costs a fraction of that. Failures raise NotAnImage / TooLarge, never Pillow's errors.
  * Resizing uses Image.draft (JPEG DCT scaling) then BILINEAR; the same code runs in training and serving,
    so a model never sees pixels prepared differently from the ones it was trained on.
"""
from __future__ import annotations

import hashlib
import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from layers.errors import NotAnImage, TooLarge

MAX_PIXELS = 40_000_000          # ~6300x6300; above this Pillow's bomb check fires
BYTES_PER_PIXEL_PEAK = 8         # a decoded RGB(A) image plus its RGB copy, per pixel, at the peak
ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP")
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pixel_budget(memory_limit_mb: int, concurrency: int, share: float = 0.5) -> int:
    """The most pixels one request may decode, so that `concurrency` requests decoding at once use at most
    `share` of the memory limit. 512 MiB and 8 threads: about 4.2 megapixels each."""
    return int(memory_limit_mb * 2**20 * share / (max(1, concurrency) * BYTES_PER_PIXEL_PEAK))


def decode(data: bytes, draft_size: int | None = None, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Bytes -> an upright RGB image. Raises NotAnImage or TooLarge."""
    if not data:
        raise NotAnImage("empty body: expected image bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.format not in ACCEPTED_FORMATS:
                raise NotAnImage(f"unsupported image format {img.format}", accepted=list(ACCEPTED_FORMATS))
            if img.width * img.height > MAX_PIXELS:
                raise TooLarge(f"image is {img.width}x{img.height} pixels; the limit is {MAX_PIXELS}")
            if draft_size and img.format == "JPEG":
                img.draft("RGB", (draft_size, draft_size))
            if img.width * img.height > max_pixels:
                raise TooLarge(f"decoding this {img.format} image takes {img.width}x{img.height} pixels; this function "
                               f"decodes at most {max_pixels} per request (send a JPEG, or a smaller image)")
            img = ImageOps.exif_transpose(img)
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise TooLarge(f"image rejected as a decompression bomb: {err}") from err
    except UnidentifiedImageError as err:
        raise NotAnImage("the content is not a recognised image") from err
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt data
        raise NotAnImage(f"the image is corrupt or truncated: {err}") from err
    return img.convert("RGB")


def to_input(img: Image.Image, size: int) -> np.ndarray:
    """An RGB image -> float32 (size, size, 3) scaled to [-1, 1]."""
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 127.5 - 1.0


def preprocess(data: bytes, size: int) -> np.ndarray:
    """The model input for encoded image bytes (decode + orientation + RGB + resize + scale)."""
    return to_input(decode(data, draft_size=size), size)


def profile_jpeg(data: bytes, max_side: int = 512, max_pixels: int = MAX_PIXELS) -> bytes:
    """A photo as it is kept for a profile: upright, RGB, at most `max_side` pixels a side, re-encoded as JPEG
    (so nothing of the upload's metadata, GPS included, is kept)."""
    img = decode(data, draft_size=max_side, max_pixels=max_pixels)
    img.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()
