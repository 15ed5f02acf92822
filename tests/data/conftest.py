"""Tiny synthetic images for the dataset tests: PNG and DICOM bytes made in memory."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import numpy as np
import pytest


def _png(width: int, height: int, value: int = 0) -> bytes:
    from PIL import Image

    arr = np.full((height, width), value, dtype=np.uint8)
    arr[:, : max(1, width // 2)] = 200  # something to look at, deterministic
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _dicom(width: int, height: int, index: int = 1) -> bytes:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    sop_class = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
    sop_uid = f"1.2.826.0.1.3680043.8.498.{index}"  # fixed: byte-identical files per index
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop_uid
    ds.Modality = "DX"
    ds.Rows, ds.Columns = height, width
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = (np.arange(width * height, dtype=np.uint16) % 4096).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.fixture
def png_bytes() -> Callable[..., bytes]:
    """``png_bytes(width, height)``: an 8-bit grayscale PNG."""
    return _png


@pytest.fixture
def dicom_bytes() -> Callable[..., bytes]:
    """``dicom_bytes(width, height, index=1)``: a small uint16 DX DICOM file."""
    return _dicom


@pytest.fixture
def write_png() -> Callable[[Path, int, int], Path]:
    """``write_png(path, width, height)``: write a PNG (creating folders) and return its path."""
    def write(path: Path, width: int = 20, height: int = 10) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_png(width, height))
        return path

    return write


@pytest.fixture
def write_dicom() -> Callable[[Path, int, int], Path]:
    """``write_dicom(path, width, height)``: write a DICOM file and return its path."""
    def write(path: Path, width: int = 20, height: int = 10) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_dicom(width, height))
        return path

    return write
