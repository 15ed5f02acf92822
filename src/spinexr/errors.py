"""Typed errors. Every message names the file (or argument), what was found and why it is refused.

Callers catch :class:`SpinexrError`; the CLI turns it into one ``error: ...`` line and exit
code 2, the web service into a 4xx JSON answer.
"""
from __future__ import annotations


class SpinexrError(Exception):
    """Base of every error that spinexr raises on purpose (bad input, bad configuration).

    Attributes:
        source: the file, URL or argument the error is about, or ``None``.
        reason: the reason alone, without the source.
    """

    code = "spinexr_error"

    def __init__(self, reason: str, source: str | None = None) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}" if source else reason)


class FileAccessError(SpinexrError, OSError):
    """A file that cannot be read or written (missing, permissions, disk full)."""

    code = "file_access"


class NotAnImageError(SpinexrError):
    """Neither DICOM nor a raster image format that spinexr reads."""

    code = "not_an_image"


class NoPixelDataError(SpinexrError):
    """A DICOM file without (7FE0,0010) Pixel Data."""

    code = "no_pixel_data"


class CorruptImageError(SpinexrError):
    """Truncated or undecodable pixel data, or a header that contradicts it."""

    code = "corrupt_image"


class UnsupportedImageError(SpinexrError):
    """A readable image spinexr does not analyse: colour, palette, multi-frame, odd bit depths."""

    code = "unsupported_image"


class ModalityNotAllowedError(SpinexrError):
    """The modality is outside the caller's policy (e.g. CT given to the radiograph path)."""

    code = "modality_not_allowed"


class ImageTooLargeError(SpinexrError):
    """Rows x Columns (x frames) over the configured limit; checked before decoding."""

    code = "image_too_large"


class DatasetError(SpinexrError):
    """A dataset on disk has problems; ``problems`` lists each as ``file:line: reason``."""

    code = "dataset_error"

    def __init__(self, reason: str, source: str | None = None,
                 problems: tuple[str, ...] = ()) -> None:
        self.problems = tuple(problems)
        detail = "" if not problems else "\n  " + "\n  ".join(problems[:20]) + (
            f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        super().__init__(reason + detail, source)


class StorageError(SpinexrError):
    """The service's database cannot be read or written (read-only, corrupt, disk full,
    unreachable). The service answers 503; ``spinexr serve`` refuses to start on one."""

    code = "storage_unavailable"


class ConfigError(SpinexrError, ValueError):
    """An invalid argument or configuration value."""

    code = "config_error"
