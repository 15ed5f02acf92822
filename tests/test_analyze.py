"""The inference path with stand-in models: gate, triage gating rules, levels, sizes, grades."""
from __future__ import annotations

import numpy as np
import pytest

from spinexr.analyze import Analyzer, AnalyzerConfig, image_checks
from spinexr.geometry import vertebra_chain
from spinexr.models.manifest import parse_manifest
from spinexr.errors import ConfigError
from spinexr.labels import LESION_CLASSES, VERTEBRA_CLASS
from spinexr.models.ensemble import TriageEnsemble
from spinexr.types import Box, Radiograph, ReadInfo, SourceRef


def _column(n, x=100.0, top=40.0, h=30.0, gap=12.0):
    return [Box(x, top + i * (h + gap), x + 50, top + i * (h + gap) + h, VERTEBRA_CLASS,
                score=0.9) for i in range(n)]


class _Det:
    def __init__(self, boxes):
        self.boxes = boxes
        self.calls = 0

    def predict(self, images, conf=0.25, **_):
        self.calls += len(images)
        return [[b for b in self.boxes if (b.score or 0) >= conf] for _ in images]


class _Member:
    head, labels = "binary", ("normal", "abnormal")

    def __init__(self, logit):
        self.logit = logit

    def predict_logits(self, images):
        return np.full((len(images), 1), self.logit)


class _Grader:
    labels = ("healthy", "doubtful", "minimal", "moderate", "severe")

    def predict_proba(self, images):
        return np.tile([0.1, 0.1, 0.6, 0.1, 0.1], (len(images), 1))


class _Pack:
    """A stand-in pack. ``synthetic`` is False so that its vertebra detector may judge input
    (a detector trained on phantoms only is never trusted by the gate: see the test below)."""

    name, version, synthetic = "fake", "0.0", False

    def __init__(self, logit, lesions, vertebrae):
        self.ens = TriageEnsemble({"a": _Member(logit)}, {"a": 1.0},
                                  operating_points={"youden": 0.5, "high_sensitivity": 0.1})
        self.dets = {"lesions": _Det(lesions), "vert": _Det(vertebrae)}
        self.graders = {}
        self.manifest = parse_manifest({
            "format": "spinexr-pack", "format_version": 1, "name": "fake", "version": "0.0",
            "ensemble": {"members": ["a"], "weights": {"a": 1.0}},
            "models": {"a": _spec("classifier", ["normal", "abnormal"]),
                       "lesions": _spec("detector", list(LESION_CLASSES),
                                        thresholds={"conf": 0.25}),
                       "vert": _spec("detector", [VERTEBRA_CLASS]),
                       "deg": _spec("classifier", ["0", "1", "2", "3", "4"],
                                    part="degeneration")}})

    def triage(self, device="cpu"):
        return self.ens

    def detector(self, key, device="cpu"):
        return self.dets[key]

    image_detector = detector       # no model of this pack runs on windows

    def classifier(self, key, device="cpu"):
        return _Grader()

    def grader(self, key, device="cpu"):
        return self.graders.get(key) or self.classifier(key)

    def model_spec(self, key):
        return self.manifest.models[key]

    def respec(self, key, **fields):
        """Change fields of one model's spec (the manifest is parsed again, as on load)."""
        raw = {**self.manifest.raw, "models": dict(self.manifest.raw["models"])}
        raw["models"][key] = {**raw["models"][key], **fields}
        self.manifest = parse_manifest(raw)


def _spec(kind, labels, **extra):
    """A version-1 model spec (no role: the manifest parser infers it, as for old packs)."""
    return {"kind": kind, "arch": "stand-in", "labels": labels, "weights": "none",
            "input": {"size": 64}, **({"head": "binary"} if kind == "classifier" else {}),
            **extra}


def _image(h=400, w=300, spacing=(0.2, 0.25), body_part="LSPINE"):
    pixels = np.random.default_rng(0).random((h, w), dtype=np.float32)
    return Radiograph(pixels=pixels, spacing_mm=spacing,
                      source=SourceRef(path="x.dcm", sop_instance_uid="1.2.3"),
                      info=ReadInfo("dicom", None, None, "MONOCHROME2", 12, "", (h, w)),
                      meta={"body_part_examined": body_part})


LESION = Box(150.0, 70.0, 170.0, 82.0, "Disc space narrowing", score=0.4)   # in a disc gap


def test_vertebra_chain_keeps_the_longest_column():
    column = _column(5)
    stray = [Box(10, 10, 20, 20, VERTEBRA_CLASS), Box(250, 300, 290, 330, VERTEBRA_CLASS)]
    assert vertebra_chain(column + stray) == column
    assert vertebra_chain([]) == []


def test_image_checks_refuse_flat_tiny_and_graphic_images():
    cfg = AnalyzerConfig()
    assert not image_checks(np.full((300, 300), 0.5, np.float32), cfg)[0]
    steps = np.repeat(np.linspace(0, 1, 10, dtype=np.float32), 30)[None, :].repeat(300, 0)
    ok, reason, checks = image_checks(steps, cfg)                 # 10 grey levels: a graphic
    assert not ok and "10 grey levels" in reason and checks["gray_levels"] == 10
    ok, reason, _ = image_checks(np.zeros((40, 300), np.float32), cfg)
    assert not ok and "below 64 px" in reason
    assert image_checks(np.random.default_rng(0).random((300, 300)), cfg)[0]


def test_accepted_image_gets_triage_levels_sizes_and_grades():
    pack = _Pack(logit=2.0, lesions=[LESION], vertebrae=_column(5))
    a = Analyzer(pack).analyze(_image())
    assert a.gate.accepted and a.gate.checks["vertebra_chain"] == 5
    assert [v.level for v in a.vertebrae] == ["L2", "L3", "L4", "L5", "S1"]
    assert a.triage.abnormal and a.triage.probability == pytest.approx(1 / (1 + np.exp(-2)))
    (f,) = a.findings
    assert f.level == "L2-L3" and f.size_mm == (5.0, 2.4)     # 20 px x 0.25, 12 px x 0.2
    assert a.grades[0].task == "degeneration" and a.grades[0].label == "minimal"
    assert a.gate.outcome == "accepted" and not a.pack.synthetic
    assert a.levels is not None and not a.levels.confirmed and a.levels.region == "lumbar"


def test_a_vertebra_detector_trained_on_phantoms_only_never_accepts_real_input():
    pack = _Pack(logit=2.0, lesions=[LESION], vertebrae=_column(5))
    pack.synthetic = True
    a = Analyzer(pack).analyze(_image())
    assert a.gate.outcome == "uncertain" and "synthetic phantoms" in a.gate.reason
    assert a.pack.synthetic and a.triage is not None        # analysed, with the warning


class _WindowCervical:
    """Softmax stand-in for a window grader's classifier: every window reads as a fracture."""
    head, labels, temperature = "softmax", ("normal", "fracture", "dislocation"), 1.0

    def __init__(self):
        self.windows = 0

    def predict_logits(self, images):
        self.windows += len(images)
        return np.tile(np.array([[0.0, 2.0, -1.0]], np.float32), (len(images), 1))


def test_window_grader_grades_the_gates_vertebrae():
    from spinexr.models.spine_crops import CropSpec, WindowGrader

    pack = _Pack(logit=2.0, lesions=[], vertebrae=_column(5))
    clf = _WindowCervical()
    spec = CropSpec(detector="vert", conf=AnalyzerConfig().gate_conf)
    pack.graders["deg"] = WindowGrader(clf, pack.dets["vert"], spec)
    a = Analyzer(pack).analyze(_image())
    assert pack.dets["vert"].calls == 1          # the gate's run: the grader reused its bodies
    assert clf.windows == 5                      # one window per body of the chain
    (g,) = a.grades
    assert g.label == "fracture" and g.probabilities["fracture"] == pytest.approx(
        np.exp(2) / (1 + np.exp(2) + np.exp(-1)))
    # another confidence than the gate's: the grader finds its own bodies
    pack.graders["deg"] = WindowGrader(clf, pack.dets["vert"], CropSpec(detector="vert",
                                                                         conf=0.5))
    Analyzer(pack).analyze(_image())
    assert pack.dets["vert"].calls == 3


def test_a_grader_runs_only_on_the_spine_regions_it_applies_to():
    pack = _Pack(logit=2.0, lesions=[], vertebrae=_column(5))
    pack.respec("deg", regions=["cervical"])
    analyzer = Analyzer(pack)
    assert analyzer.analyze(_image(body_part="LSPINE")).grades == ()
    neck = analyzer.analyze(_image(body_part="CSPINE"))
    assert neck.gate.checks["level_region"] == "cervical"
    assert [g.task for g in neck.grades] == ["degeneration"]


class _ThirdWindowSevere:
    """A 5-grade softmax window classifier: the third window of each call reads severe."""
    head, labels, temperature = "softmax", ("0", "1", "2", "3", "4"), 1.0

    def predict_logits(self, crops):
        z = np.zeros((len(crops), 5), np.float32)
        z[:, 0] = 5.0
        z[2] = [0, 0, 0, 0, 5.0]
        return z


def test_a_window_grade_says_which_vertebra_gave_it():
    """A window grader's image grade carries the window that drove it, named after the gate's
    vertebrae (its own detector names none), in source pixels."""
    from spinexr.models.spine_crops import CropSpec, WindowGrader

    pack = _Pack(logit=2.0, lesions=[], vertebrae=_column(5))
    pack.graders["deg"] = WindowGrader(_ThirdWindowSevere(), _Det(_column(5)), CropSpec())
    a = Analyzer(pack).analyze(_image(body_part="LSPINE"))
    (grade,) = a.grades
    assert grade.label == "4" and grade.box.label == "vertebra window"
    third = sorted(a.vertebrae, key=lambda b: b.y1)[2]
    assert grade.box.level == third.level and grade.box.y1 < third.y1 < third.y2 < grade.box.y2


def test_too_few_vertebrae_is_refused_with_the_reason():
    far_apart = _column(2, gap=80.0)                 # two bodies, no disc space between them
    pack = _Pack(logit=2.0, lesions=[LESION], vertebrae=far_apart)
    a = Analyzer(pack).analyze(_image(body_part=None))
    assert not a.gate.accepted and "not a spine radiograph" in a.gate.reason
    assert a.gate.checks["adjacent_body_pairs"] == 0
    assert a.triage is None and a.findings == () and pack.dets["lesions"].calls == 0


def test_two_adjacent_bodies_of_a_coned_view_are_analysed_as_uncertain():
    pack = _Pack(logit=2.0, lesions=[], vertebrae=_column(2))
    a = Analyzer(pack).analyze(_image(body_part=None))
    assert a.gate.outcome == "uncertain" and a.gate.checks["adjacent_body_pairs"] == 1
    assert a.triage is not None and [v.level for v in a.vertebrae] == ["L5", "S1"]


def test_dernet_rule_skips_detection_when_triage_is_normal():
    pack = _Pack(logit=-3.0, lesions=[LESION], vertebrae=_column(5))
    a = Analyzer(pack, config=AnalyzerConfig(gating="dernet")).analyze(_image())
    assert not a.triage.abnormal and a.findings == () and pack.dets["lesions"].calls == 0


def test_vindr_rule_keeps_only_confident_boxes_when_triage_is_normal():
    strong = Box(150.0, 110.0, 170.0, 124.0, "Osteophytes", score=0.8)
    pack = _Pack(logit=-3.0, lesions=[LESION, strong], vertebrae=_column(5))
    a = Analyzer(pack, config=AnalyzerConfig(gating="vindr", negative_keep_conf=0.5)).analyze(
        _image())
    assert [f.label for f in a.findings] == ["Osteophytes"]


def test_cervical_header_names_levels_from_c2_and_unknown_operating_point_is_refused():
    pack = _Pack(logit=2.0, lesions=[], vertebrae=_column(5))
    a = Analyzer(pack).analyze(_image(body_part="CSPINE"))
    assert [v.level for v in a.vertebrae] == ["C2", "C3", "C4", "C5", "C6"]
    with pytest.raises(ConfigError, match="operating point 'nope'"):
        Analyzer(pack, config=AnalyzerConfig(operating_point="nope"))


def test_batch_equals_one_by_one():
    pack = _Pack(logit=0.3, lesions=[LESION], vertebrae=_column(5))
    images = [_image(), _image(h=500)]
    analyzer = Analyzer(pack)
    batch = analyzer.analyze_batch(images)
    single = [analyzer.analyze(im) for im in images]
    for x, y in zip(batch, single):
        assert (x.gate, x.triage, x.findings, x.vertebrae, x.grades) == \
               (y.gate, y.triage, y.findings, y.vertebrae, y.grades)


def test_the_vertebra_detector_runs_once_per_batch_on_images_that_passed_the_checks():
    pack = _Pack(logit=2.0, lesions=[], vertebrae=_column(5))
    flat = _image()
    flat = Radiograph(pixels=np.full((400, 300), 0.5, np.float32), spacing_mm=None,
                      source=flat.source, info=flat.info, meta=flat.meta)
    calls = []
    det = pack.dets["vert"]
    original = det.predict
    det.predict = lambda images, **kw: calls.append(len(images)) or original(images, **kw)
    results = Analyzer(pack).analyze_batch([_image(), flat, _image(h=500)])
    assert calls == [2]                                    # one call, the flat image skipped
    assert [r.gate.accepted for r in results] == [True, False, True]


def test_reduced_decodes_are_reported_in_source_pixels():
    """An image decoded at half size: boxes, vertebrae, size and spacing refer to the stored
    image, and sizes in mm are the same as at full size."""
    pack = _Pack(logit=2.0, lesions=[LESION], vertebrae=_column(5))
    half = _image()
    half = Radiograph(pixels=half.pixels, spacing_mm=(0.4, 0.5), source=half.source,
                      info=ReadInfo("dicom", None, None, "MONOCHROME2", 12, "", (800, 600),
                                    reduce=1), meta=half.meta)
    a = Analyzer(pack).analyze(half)
    assert a.image_size == (600, 800) and a.spacing_mm == (0.2, 0.25)
    (f,) = a.findings
    assert (f.box.x1, f.box.y1, f.box.x2, f.box.y2) == (300.0, 140.0, 340.0, 164.0)
    assert f.size_mm == (10.0, 4.8)                  # 20 px x 0.5 mm = 40 px x 0.25 mm
    assert a.vertebrae[0].x1 == 200.0 and f.level == "L2-L3"


def test_decode_side_is_the_largest_model_input():
    pack = _Pack(logit=2.0, lesions=[LESION], vertebrae=_column(5))
    pack.respec("lesions", input={"size": 640})
    pack.respec("vert", input={"size": 416})
    assert Analyzer(pack).decode_side() == 640
    pack.respec("a", input={"size": 96})                      # a whole-image triage member
    assert Analyzer(pack).decode_side() == 640
    pack.respec("a", input={"size": 700})
    assert Analyzer(pack).decode_side() == 700
