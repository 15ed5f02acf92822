"""``read_radiograph``: one entry point for DICOM, PNG, JPEG and TIFF radiographs."""
from __future__ import annotations

import os
from dataclasses import replace

from spinexr.errors import (ConfigError, FileAccessError, ImageTooLargeError, NotAnImageError,
                            SpinexrError)
from spinexr.io.codestream import JPEG_SOI, PNG_SIGNATURE, TIFF_SIGNATURES
from spinexr.io.pixels import downscale
from spinexr.io.policy import RADIOGRAPH_POLICY, ModalityPolicy
from spinexr.io.raster import read_raster
from spinexr.types import Radiograph

#: Default pixel limit (rows x columns x frames): 50 million, e.g. 7000 x 7000. Real
#: radiographs are under 20 million (a 43 x 43 cm detector at 0.1 mm is 18.5 million), and the
#: limit stays below Pillow's own warning threshold (89 million).
DEFAULT_MAX_PIXELS = 50_000_000

#: Largest ``reduce`` accepted (1/65536 of the size is already a single pixel).
MAX_REDUCE = 16

_DICOM_FIRST_GROUPS = (0x0002, 0x0008)  # the first element of a DICOM file without preamble


def read_radiograph(src: str | os.PathLike | bytes, *, policy: ModalityPolicy = RADIOGRAPH_POLICY,
                    max_pixels: int = DEFAULT_MAX_PIXELS, reduce: int = 0,
                    min_side: int | None = None, name: str | None = None) -> Radiograph:
    """Read a radiograph from a DICOM, PNG, JPEG or TIFF file (path) or its bytes.

    Args:
        src: a path, or the file's bytes.
        policy: which DICOM modalities are accepted (raster files count as unknown modality).
        max_pixels: refuse images whose header claims more rows x columns x frames, before
            decoding anything (decompression bombs).
        reduce: decode at 1/2**reduce of the size: JPEG 2000 at that resolution level directly,
            other formats at full size then area-averaged. The result has
            (ceil(H / 2**reduce), ceil(W / 2**reduce)) pixels and a scaled spacing.
        min_side: when ``reduce`` is 0, the size the caller needs (e.g. the largest model
            input): the result is the coarsest 1/2**r of the image whose longer side is still
            at least ``min_side`` pixels. JPEG 2000 is decoded at that resolution level
            directly, skipping the finer wavelet levels nobody would look at; other formats
            are decoded at full size, then area-averaged by 2**r here, so that every later
            step (gate, models' resizes, overlays) works on the small image.
        name: what messages call the input when ``src`` is bytes (default ``"<bytes>"``);
            for paths, the path.

    Returns:
        A :class:`~spinexr.types.Radiograph`: ``pixels`` float32 (H, W) in [0, 1], bone bright,
        read-only; ``spacing_mm`` ``None`` when unknown; ``info.lut_path`` the display stages.

    Raises:
        NotAnImageError: neither DICOM nor PNG/JPEG/TIFF.
        NoPixelDataError: DICOM without Pixel Data.
        CorruptImageError: truncated or undecodable data, or a header contradicting the data.
        UnsupportedImageError: colour, palette, multi-frame, unknown transfer syntax.
        ModalityNotAllowedError: the DICOM modality is outside ``policy``.
        ImageTooLargeError: over ``max_pixels``.
        SpinexrError: the file cannot be read at all.
        ConfigError: bad ``max_pixels`` or ``reduce``.
    """
    if not isinstance(max_pixels, int) or max_pixels < 1:
        raise ConfigError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    if not isinstance(reduce, int) or not 0 <= reduce <= MAX_REDUCE:
        raise ConfigError(f"reduce must be an integer 0..{MAX_REDUCE}, got {reduce!r}")
    if min_side is not None and (not isinstance(min_side, int) or min_side < 1):
        raise ConfigError(f"min_side must be a positive integer, got {min_side!r}")
    data, source, path = _load(src, name, max_pixels)
    kind = sniff(data)
    if kind == "dicom":
        from spinexr.io.dicom import read_dicom

        image = read_dicom(data, source, path, policy, max_pixels, reduce, min_side)
    elif kind is not None:
        image = read_raster(data, kind, source, path, policy, max_pixels, reduce)
    if kind is not None:
        return shrink_to(image, min_side) if min_side and not reduce else image
    raise NotAnImageError(
        "not DICOM (no 'DICM' at byte 128 and no DICOM element at the start) and not a PNG, "
        "JPEG or TIFF image" + (" (the file is empty)" if not data else ""), source)


def shrink_to(image: Radiograph, min_side: int) -> Radiograph:
    """``image`` area-averaged by the largest power of two 2**r that keeps its longer side at
    least ``min_side`` (as a JPEG 2000 decode at level r would give it); unchanged when the
    image was already decoded at a reduced level or is too small. Spacing scales by 2**r, and
    ``info.reduce`` says r, so results still map back to source pixels
    (:func:`spinexr.geometry.source_scale`)."""
    if image.info.reduce:
        return image
    longest, level = max(image.pixels.shape), 0
    while level < MAX_REDUCE and -(-longest // 2 ** (level + 1)) >= min_side:
        level += 1
    if not level:
        return image
    factor = 2 ** level
    pixels = downscale(image.pixels, factor)
    pixels.flags.writeable = False
    spacing = image.spacing_mm and (image.spacing_mm[0] * factor, image.spacing_mm[1] * factor)
    info = replace(image.info, reduce=level, lut_path=f"{image.info.lut_path} > area({factor})")
    return replace(image, pixels=pixels, spacing_mm=spacing, info=info)


def sniff(data: bytes) -> str | None:
    """``"dicom"``, ``"png"``, ``"jpeg"``, ``"tiff"`` from the first bytes, else ``None``."""
    if data[128:132] == b"DICM":
        return "dicom"
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(JPEG_SOI + b"\xff"):
        return "jpeg"
    if data[:4] in TIFF_SIGNATURES:
        return "tiff"
    if len(data) >= 8:
        little, big = int.from_bytes(data[:2], "little"), int.from_bytes(data[:2], "big")
        if little in _DICOM_FIRST_GROUPS or big in _DICOM_FIRST_GROUPS:
            return "dicom"
    return None


def _load(src: str | os.PathLike | bytes, name: str | None,
          max_pixels: int) -> tuple[bytes, str, str | None]:
    """(bytes, the name messages use, the path or None)."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        return bytes(src), name or "<bytes>", None
    if not isinstance(src, (str, os.PathLike)):
        raise TypeError(f"src must be a path or bytes, got {type(src).__name__}")
    path = os.fspath(src)
    source = name or str(path)
    limit = max_pixels * 8 + (64 << 20)  # 8 bytes a pixel plus 64 MiB of header is generous
    try:
        size = os.stat(path).st_size
        if size > limit:
            raise ImageTooLargeError(
                f"the file is {size:,} bytes, more than any image of {max_pixels:,} pixels "
                "needs", source)
        with open(path, "rb") as handle:
            return handle.read(), source, str(path)
    except SpinexrError:
        raise
    except OSError as exc:
        raise FileAccessError(f"cannot read the file ({exc.strerror or exc})", source) from exc
