"""Shared types: image ids must not collide for files that share a prefix."""
from __future__ import annotations

import numpy as np

from spinexr.types import Radiograph, ReadInfo, SourceRef


def _rg(path, sop=None):
    return Radiograph(pixels=np.zeros((2, 2), np.float32), spacing_mm=None,
                      source=SourceRef(path=path, sop_instance_uid=sop),
                      info=ReadInfo("png", None, None, "MONOCHROME2", 8, "", (2, 2)))


def test_image_id_is_the_sop_uid_else_the_full_stem():
    assert _rg("/x/a.dcm", sop="1.2.3").image_id == "1.2.3"
    # Roboflow exports: augmented copies share "10_jpg" and differ after ".rf."
    a, b = _rg("/x/10_jpg.rf.aaa.jpg").image_id, _rg("/x/10_jpg.rf.bbb.jpg").image_id
    assert a == "10_jpg.rf.aaa" and a != b
    assert _rg(None).image_id == "image"
