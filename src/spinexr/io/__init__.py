"""Reading real radiographs: DICOM (every common transfer syntax), PNG, JPEG and TIFF.

``read_radiograph`` turns a file or its bytes into a :class:`~spinexr.types.Radiograph`
(float32 (H, W) in [0, 1], bone bright) or raises a :class:`~spinexr.errors.SpinexrError`
subclass naming the file and the reason. ``io`` is the only package that opens image files.
"""
from __future__ import annotations

from spinexr.io.policy import MRI_POLICY, RADIOGRAPH_POLICY, ModalityPolicy
from spinexr.io.preview import save_png
from spinexr.io.reader import DEFAULT_MAX_PIXELS, read_radiograph

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MRI_POLICY",
    "RADIOGRAPH_POLICY",
    "ModalityPolicy",
    "read_radiograph",
    "save_png",
]
