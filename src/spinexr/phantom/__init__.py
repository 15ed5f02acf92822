"""Synthetic spine radiographs and lumbar MRI slices with exact ground truth.

Deterministic from a seed: every random choice comes from one ``np.random.Generator`` made
from it, so the same seed gives the same pixels, labels, UIDs and dates everywhere. Used for
tests, the demo model pack and benchmarks; never for clinical claims.
"""
from __future__ import annotations

from spinexr.phantom.config import MriConfig, XrayConfig
from spinexr.phantom.dicom import TRANSFER_SYNTAXES, mri_to_dicom, xray_to_dicom
from spinexr.phantom.drr import DrrImage, render_drr, write_drr_yolo
from spinexr.phantom.mri import MriPhantom, generate_mri
from spinexr.phantom.patient import FakePatient
from spinexr.phantom.xray import XrayPhantom, generate_xray, render_display

__all__ = [
    "TRANSFER_SYNTAXES", "DrrImage", "FakePatient", "MriConfig", "MriPhantom", "XrayConfig",
    "XrayPhantom", "generate_mri", "generate_xray", "mri_to_dicom", "render_display",
    "render_drr", "write_drr_yolo", "xray_to_dicom",
]
