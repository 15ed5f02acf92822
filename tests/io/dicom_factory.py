"""Builders for tiny in-memory DICOM files (made in the tests, saved to bytes, read back)."""
from __future__ import annotations

import io
from typing import Any

import numpy as np
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite

from spinexr.io import ModalityPolicy

#: Every modality among the real test files: lets a test reach the decoder for each of them.
ANY_MODALITY = ModalityPolicy(
    "test", frozenset({"CR", "DX", "RG", "CT", "MR", "NM", "US", "OT"}), allow_unknown=True)


def make_dataset(pixels: np.ndarray, *, photometric: str = "MONOCHROME2",
                 bits_stored: int | None = None, modality: str | None = "DX",
                 **attrs: Any) -> Dataset:
    """A single-frame grayscale data set holding ``pixels`` (uint8/uint16/int16) natively."""
    arr = np.ascontiguousarray(pixels)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = uid.DigitalXRayImageStorageForPresentation
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SOPClassUID = uid.DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.3"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "PID-12345"
    ds.PatientBirthDate = "19700101"
    ds.AccessionNumber = "ACC-999"
    if modality is not None:
        ds.Modality = modality
    ds.Rows, ds.Columns = arr.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = arr.dtype.itemsize * 8
    ds.BitsStored = bits_stored or arr.dtype.itemsize * 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(arr.dtype.kind == "i")
    ds.PixelData = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


def lut_item(descriptor: list[int], data: list[int]) -> Dataset:
    """One Modality/VOI LUT Sequence item; LUT Data as US (added explicitly, ambiguous VR)."""
    item = Dataset()
    item.add_new(0x00283002, "US", [int(v) for v in descriptor])
    item.add_new(0x00283006, "US", [int(v) for v in data])
    return item


def to_bytes(ds: Dataset, *, preamble: bool = True) -> bytes:
    """Serialize: with preamble and file meta, or as a bare explicit-LE data set."""
    buf = io.BytesIO()
    if preamble:
        dcmwrite(buf, ds, enforce_file_format=True)
    else:
        bare = Dataset()
        bare.update(ds)
        dcmwrite(buf, bare, implicit_vr=False, little_endian=True)
    return buf.getvalue()


def dicom_bytes(pixels: np.ndarray, *, preamble: bool = True, **attrs: Any) -> bytes:
    """Bytes of a tiny DICOM file holding ``pixels`` (see :func:`make_dataset`)."""
    return to_bytes(make_dataset(pixels, **attrs), preamble=preamble)
