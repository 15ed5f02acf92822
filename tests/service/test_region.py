"""``region`` on the analysis route: the spine region of an input whose header names none."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spinexr.models.pack import resolve_packs
from spinexr.service import Settings

from service_helpers import png_bytes, running

MODELS = Path(__file__).resolve().parents[2] / "models"


@pytest.fixture(scope="module")
def real_analyzer():
    """The committed packs: a real vertebra detector names levels."""
    from spinexr.analyze import Analyzer

    pack, vert = resolve_packs(models=MODELS)
    return Analyzer(pack, vertebrae_pack=vert)


def _spine_png() -> bytes:
    import io

    from spinexr.io import read_radiograph
    from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom

    buf = io.BytesIO()
    xray_to_dicom(generate_xray(11, XrayConfig(size=(900, 600)))).save_as(
        buf, enforce_file_format=True)
    return png_bytes((read_radiograph(buf.getvalue()).pixels * 255).astype(np.uint8))


def test_region_as_form_field_or_query_names_the_levels(tmp_path, real_analyzer):
    settings = Settings(data_dir=tmp_path / "d", auth_required=False, rate_limit_per_minute=0)
    png = _spine_png()
    with running(settings, real_analyzer) as c:
        plain = c.post("/v1/analyses", files={"file": ("s.png", png, "image/png")}).json()
        form = c.post("/v1/analyses", files={"file": ("s.png", png, "image/png")},
                      data={"region": "cervical"}).json()
        query = c.post("/v1/analyses?region=cervical",
                       files={"file": ("s.png", png, "image/png")}).json()
        bad = c.post("/v1/analyses?region=sacral", files={"file": ("s.png", png, "image/png")})
        bad_form = c.post("/v1/analyses", files={"file": ("s.png", png, "image/png")},
                          data={"region": "x" * 40})
    assert plain["levels"]["region"] == "lumbar"
    assert form["levels"]["region"] == query["levels"]["region"] == "cervical"
    assert {v["level"][0] for v in form["vertebrae"]} == {"C"}
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_region"
    assert bad_form.status_code == 422
