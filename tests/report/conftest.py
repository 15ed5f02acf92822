"""Analyses built by hand on a small phantom radiograph (256 x 200 px), read back through
``spinexr.io`` so that ``Radiograph.header`` is exactly what the analyzer would hand over."""
from __future__ import annotations

import numpy as np
import pytest
from report_factory import make_analysis, make_refused, make_uncertain

from spinexr.io import read_radiograph
from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom
from spinexr.phantom.dicom import to_bytes
from spinexr.types import Analysis, Radiograph


@pytest.fixture(scope="session")
def phantom():
    return generate_xray(3, XrayConfig(size=(256, 200)))


@pytest.fixture(scope="session")
def radiograph(phantom) -> Radiograph:
    return read_radiograph(to_bytes(xray_to_dicom(phantom)))


@pytest.fixture(scope="session")
def png_radiograph(phantom, tmp_path_factory) -> Radiograph:
    """The same phantom as an 8-bit PNG file: no header, no UIDs."""
    from PIL import Image

    from spinexr.phantom import render_display

    path = tmp_path_factory.mktemp("png") / "phantom.png"
    Image.fromarray(np.rint(render_display(phantom) * 255).astype(np.uint8)).save(path)
    return read_radiograph(path)


@pytest.fixture(scope="session")
def analysis(radiograph) -> Analysis:
    return make_analysis(radiograph)


@pytest.fixture(scope="session")
def refused(radiograph) -> Analysis:
    return make_refused(radiograph)


@pytest.fixture(scope="session")
def uncertain(radiograph) -> Analysis:
    """Analysed, not confirmed as a spine radiograph; levels counted, unconfirmed."""
    return make_uncertain(radiograph)
