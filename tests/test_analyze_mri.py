"""The MRI stenosis path: phantom MR slices with known regions through the committed demo pack."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from spinexr.analyze_mri import MriPath, MriUnavailableError, is_mri
from spinexr.io import read_radiograph
from spinexr.io.policy import MRI_POLICY
from spinexr.labels import STENOSIS_GRADES, STENOSIS_REGIONS
from spinexr.models.grading import GradedBox
from spinexr.phantom import MriConfig, generate_mri, mri_to_dicom
from spinexr.phantom.dicom import to_bytes
from spinexr.types import Box, PackInfo

MODELS = Path(__file__).resolve().parents[1] / "models"
INFO = PackInfo("demo", "1.0.0", True)
#: (seed, grades set by hand): a severe left foramen, a moderate central canal.
SLICES = ((11, {"left neural foramen": 3}), (12, {"central canal": 2}))


def _iou(a: Box, b: Box) -> float:
    import torch
    from torchvision.ops import box_iou

    return float(box_iou(torch.tensor([a.as_list()]), torch.tensor([b.as_list()]))[0, 0])


@pytest.fixture(scope="module")
def pack():
    from spinexr.models.pack import load_pack

    if not (MODELS / "demo" / "pack.json").is_file():
        pytest.skip("the committed demo pack models/demo is missing")
    return load_pack(MODELS / "demo")


@pytest.fixture(scope="module")
def mri_path(pack) -> MriPath:
    return MriPath.from_pack(pack)


@pytest.fixture(scope="module")
def slices():
    """(phantom, slice read back from its MR DICOM) for each of :data:`SLICES`."""
    out = []
    for seed, grades in SLICES:
        ph = generate_mri(seed, MriConfig(size=256, grades=grades))
        out.append((ph, read_radiograph(to_bytes(mri_to_dicom(ph)), policy=MRI_POLICY)))
    return out


@pytest.fixture(scope="module")
def analyses(mri_path, slices):
    return mri_path.analyze_batch([im for _, im in slices], explain=("ig",), info=INFO)


def test_every_phantom_region_is_found_where_it_is(analyses, slices):
    for (ph, image), a in zip(slices, analyses):
        assert (a.modality, a.gate.outcome, a.image_id) == ("mri", "accepted", image.image_id)
        assert a.triage is None and a.findings == () and a.vertebrae == ()
        found = {g.box.label: g.box for g in a.grades}
        assert len(found) == len(a.grades)                 # one box per region label
        hits = [r.label for r in ph.regions if r.label in found and _iou(found[r.label], r) >= 0.5]
        assert len(hits) >= 4, (hits, found)
        assert a.gate.checks["regions"] == len(a.grades)


def test_each_region_has_a_grade_with_probabilities(analyses):
    for a in analyses:
        for g in a.grades:
            assert g.task == "stenosis" and g.label == STENOSIS_GRADES[g.index]
            assert list(g.probabilities) == list(STENOSIS_GRADES)
            assert sum(g.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
            assert g.box.label in STENOSIS_REGIONS and 0.0 < g.box.score <= 1.0
            assert g.box.is_valid(256, 256)
        order = [STENOSIS_REGIONS.index(g.box.label) for g in a.grades]
        assert order == sorted(order)


def test_the_hand_set_severe_foramen_is_graded_abnormal(analyses):
    """The demo grader's test QWK is 0.89: a severe foramen is not called normal."""
    foramen = {g.box.label: g for g in analyses[0].grades}["left neural foramen"]
    assert foramen.index >= 2


def test_ig_gives_one_whole_image_map_lit_inside_the_region_crops_only(analyses, slices):
    for (_, image), a in zip(slices, analyses):
        (heat,) = a.heatmaps
        assert (heat.method, heat.model) == ("ig", "stenosis_grader")
        assert heat.target == "stenosis expected grade"
        assert heat.array.shape == image.pixels.shape and heat.array.dtype == np.float32
        assert 0.0 <= float(heat.array.min()) and float(heat.array.max()) <= 1.0
        assert float(heat.array.max()) > 0.0
        inside = np.zeros(heat.array.shape, bool)
        for g in a.grades:      # crop = box side x 2 (margin 0.5), so 2 box sides cover it
            side = max(g.box.width, g.box.height)
            cx, cy = g.box.center
            inside[max(0, int(cy - side)):int(cy + side) + 1,
                   max(0, int(cx - side)):int(cx + side) + 1] = True
        assert float(heat.array[~inside].max()) == 0.0


def test_an_unusable_slice_is_refused_and_nothing_runs_on_it(mri_path, slices):
    _, image = slices[0]
    flat = replace(image, pixels=np.full(image.pixels.shape, 0.5, np.float32))
    (a,) = mri_path.analyze_batch([flat], explain=("ig",), info=INFO)
    assert a.modality == "mri" and a.gate.outcome == "refused"
    assert a.gate.reason.startswith("unusable image: almost no contrast")
    assert a.grades == () and a.heatmaps == () and a.image_size == (256, 256)


class _Grader:
    """A RegionGrader stand-in: fixed graded boxes, and a record of what it was asked."""

    margin = 0.5
    classifier = None

    def __init__(self, found):
        self.found, self.calls = found, []

    def predict(self, images):
        self.calls.append(len(images))
        return [list(self.found) for _ in images]


def test_a_slice_without_regions_is_uncertain(slices):
    grader = _Grader([])
    (a,) = MriPath(grader).analyze_batch([slices[0][1]], info=INFO)
    assert grader.calls == [1]
    assert a.gate.outcome == "uncertain" and "axial lumbar slice" in a.gate.reason
    assert a.grades == ()


def test_the_best_box_of_each_region_is_kept(slices):
    probs = (0.1, 0.2, 0.3, 0.4)

    def graded(label, score):
        return GradedBox(Box(10.0, 10.0, 30.0, 30.0, label, score), 3, "severe", probs)

    class _Clf:
        labels = STENOSIS_GRADES

    grader = _Grader([graded("left neural foramen", 0.4), graded("central canal", 0.9),
                      graded("left neural foramen", 0.8)])
    grader.classifier = _Clf()
    (a,) = MriPath(grader).analyze_batch([slices[0][1]], info=INFO)
    assert [(g.box.label, g.box.score) for g in a.grades] == [("central canal", 0.9),
                                                               ("left neural foramen", 0.8)]
    assert a.grades[0].probabilities == dict(zip(STENOSIS_GRADES, probs))


def test_a_pack_without_the_mri_models_is_refused(pack):
    from spinexr.models.pack import load_pack

    if not (MODELS / "vertebrae" / "pack.json").is_file():
        pytest.skip("models/vertebrae is missing")
    other = load_pack(MODELS / "vertebrae")
    assert MriPath.available(pack) and not MriPath.available(other)
    with pytest.raises(MriUnavailableError, match="mri_region_detector and no mri_region_grader"):
        MriPath.from_pack(other)


def test_is_mri_routes_mr_headers_only(slices):
    from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom

    _, mr = slices[0]
    xray = read_radiograph(to_bytes(xray_to_dicom(generate_xray(1, XrayConfig(size=(160, 128))))))
    assert is_mri(mr) and not is_mri(xray)
    assert not is_mri(replace(mr, meta={}, source=replace(mr.source, sop_class_uid=None)))
    assert is_mri(replace(mr, meta={"modality": None}))        # MR Image Storage SOP class
