"""Phantoms as DICOM objects: DX/CR radiographs and MR slices, in memory, byte-reproducible.

Every value comes from the phantom (UIDs, dates and names are derived from its seed), so the
same phantom always gives the same bytes. Compression goes through ``Dataset.compress`` with
the encoders installed with spinexr (RLE, JPEG-LS via pyjpegls, JPEG 2000 via
pylibjpeg-openjpeg). Lossy JPEG 2000 gets its own SOP Instance UID, as the standard requires
for a lossy derivative, also derived from the seed.
"""
from __future__ import annotations

from io import BytesIO

import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

from spinexr.errors import ConfigError
from spinexr.phantom.patient import UID_PREFIX

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
#: Transfer syntaxes the phantom writer supports, by short name (the CLI's choices).
TRANSFER_SYNTAXES: dict[str, str] = {
    "explicit": ExplicitVRLittleEndian, "rle": RLELossless, "j2k": JPEG2000Lossless,
    "j2k-lossy": JPEG2000, "jpegls": JPEGLSLossless,
}
#: Compression ratio of lossy JPEG 2000 phantoms.
J2K_LOSSY_RATIO = 10.0
IMPLEMENTATION_UID = UID_PREFIX + "1.1"


def _file_dataset(sop_class: str, sop_instance: str) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_UID
    meta.ImplementationVersionName = "SPINEXR_PHANTOM"
    ds = FileDataset(None, Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    return ds


def _patient_study(ds: Dataset, ph, description: str) -> None:
    p = ph.patient
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = p.name
    ds.PatientID = p.patient_id
    ds.PatientBirthDate = p.birth_date
    ds.PatientSex = p.sex
    ds.PatientAge = p.age
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "SYNTHETIC PHANTOM - NOT A PATIENT"
    ds.StudyInstanceUID = ph.uids.study
    ds.SeriesInstanceUID = ph.uids.series
    ds.FrameOfReferenceUID = ph.uids.frame_of_reference
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = ph.study_time.date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = ds.AcquisitionTime = ph.study_time.time
    ds.StudyID = f"{ph.seed % 100000:05d}"
    ds.AccessionNumber = f"PH{ph.seed % 10 ** 10:010d}"
    ds.StudyDescription = description
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Manufacturer = "spinexr"
    ds.ManufacturerModelName = "spinexr phantom"
    ds.InstitutionName = "SYNTHETIC"
    ds.ReferringPhysicianName = ""
    ds.BurnedInAnnotation = "NO"


def _pixels(ds: Dataset, ph) -> None:
    rows, cols = ph.stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = ph.photometric
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.PixelSpacing = [f"{ph.spacing_mm[0]:.6g}", f"{ph.spacing_mm[1]:.6g}"]
    ds.WindowCenter = f"{ph.window[0]:.6g}"
    ds.WindowWidth = f"{ph.window[1]:.6g}"
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "US"
    ds.PixelData = ph.stored.astype("<u2").tobytes()


def xray_to_dicom(ph, *, transfer_syntax: str = ExplicitVRLittleEndian) -> FileDataset:
    """A DX (For Presentation) or CR image of an :class:`~spinexr.phantom.XrayPhantom`.

    Args:
        ph: the phantom.
        transfer_syntax: a UID from ``TRANSFER_SYNTAXES`` (explicit VR little endian, RLE,
            JPEG 2000 lossless or lossy, JPEG-LS lossless).

    Returns:
        A dataset with file meta, ready for ``save_as``; pixel data encoded as requested.
    """
    dx = ph.modality == "DX"
    ds = _file_dataset(DX_FOR_PRESENTATION if dx else CR_IMAGE, ph.uids.sop)
    part = "CSPINE" if ph.region == "cervical" else "LSPINE"
    view = "LL" if ph.view == "lateral" else "AP"
    _patient_study(ds, ph, f"{part} {view} (SYNTHETIC PHANTOM)")
    ds.Modality = ph.modality
    ds.ImageType = ["DERIVED", "PRIMARY"] if dx else ["ORIGINAL", "PRIMARY"]
    ds.SeriesDescription = f"{'C' if part == 'CSPINE' else 'L'}-SPINE {view}"
    ds.BodyPartExamined = part
    ds.ViewPosition = view
    ds.PatientOrientation = ["A" if view == "LL" else "L", "F"]
    ds.ImagerPixelSpacing = [f"{ph.spacing_mm[0]:.6g}", f"{ph.spacing_mm[1]:.6g}"]
    ds.PixelSpacingCalibrationType = "GEOMETRY"
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = 1 if ph.photometric == "MONOCHROME2" else -1
    ds.KVP = "85" if part == "LSPINE" else "70"
    ds.DistanceSourceToDetector = "1150"
    if dx:
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.DetectorType = "SCINTILLATOR"
    _pixels(ds, ph)
    ds.VOILUTFunction = "LINEAR"
    ds.LossyImageCompression = "00"
    return encode(ds, ph, transfer_syntax)


def mri_to_dicom(ph, *, transfer_syntax: str = ExplicitVRLittleEndian) -> FileDataset:
    """An MR image of a :class:`~spinexr.phantom.MriPhantom` (axial T2, one slice)."""
    ds = _file_dataset(MR_IMAGE, ph.uids.sop)
    _patient_study(ds, ph, "LSPINE MRI (SYNTHETIC PHANTOM)")
    ds.Modality = "MR"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.SeriesDescription = f"AX T2 FSE {ph.level}"
    ds.BodyPartExamined = "LSPINE"
    ds.ScanningSequence, ds.SequenceVariant = "SE", "SK"
    ds.ScanOptions, ds.MRAcquisitionType = "FC", "2D"
    ds.RepetitionTime, ds.EchoTime, ds.EchoTrainLength = "4000", "100", "16"
    ds.MagneticFieldStrength = "1.5"
    ds.ImagingFrequency = "63.87"
    ds.SliceThickness, ds.SpacingBetweenSlices = "4", "4.4"
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    rows, cols = ph.stored.shape
    ds.ImagePositionPatient = [f"{-cols * ph.spacing_mm[1] / 2:.4f}",
                               f"{-rows * ph.spacing_mm[0] / 2:.4f}", f"{ph.slice_z:.4f}"]
    ds.SliceLocation = f"{ph.slice_z:.4f}"
    ds.PatientPosition = "HFS"
    _pixels(ds, ph)
    ds.LossyImageCompression = "00"
    return encode(ds, ph, transfer_syntax)


def encode(ds: FileDataset, ph, transfer_syntax: str) -> FileDataset:
    """Compress ``ds``'s pixel data in place to ``transfer_syntax`` and return it."""
    if transfer_syntax not in TRANSFER_SYNTAXES.values():
        names = ", ".join(f"{k} ({v})" for k, v in TRANSFER_SYNTAXES.items())
        raise ConfigError(f"transfer syntax {transfer_syntax!r} is not supported for phantoms; "
                          f"use one of {names}", "transfer_syntax")
    if transfer_syntax == ExplicitVRLittleEndian:
        return ds
    arr = ph.stored
    if transfer_syntax == JPEG2000:
        ds.compress(JPEG2000, arr, generate_instance_uid=False, j2k_cr=[J2K_LOSSY_RATIO])
        lossy = str(generate_uid(prefix=UID_PREFIX, entropy_srcs=[ds.SOPInstanceUID, "j2k-lossy"]))
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = lossy
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionRatio = f"{J2K_LOSSY_RATIO:g}"
        ds.LossyImageCompressionMethod = "ISO_15444_1"
        ds.DerivationDescription = "Lossy JPEG 2000 compression of a synthetic phantom"
        return ds
    ds.compress(transfer_syntax, arr, generate_instance_uid=False)
    return ds


def to_bytes(ds: FileDataset) -> bytes:
    """The Part 10 file bytes of ``ds`` (deterministic)."""
    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def read(data: bytes) -> FileDataset:
    """Parse Part 10 bytes (test and tooling helper)."""
    return pydicom.dcmread(BytesIO(data))
