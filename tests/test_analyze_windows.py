"""The analyzer with a lesion detector on vertebra windows: the committed demo pack, its lesion
detector given ``windows``, on a phantom; the gate's bodies are reused when the windows' detector
and confidence are the gate's."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from spinexr.analyze import Analyzer, AnalyzerConfig
from spinexr.io import read_radiograph
from spinexr.labels import VERTEBRA_CLASS
from spinexr.models.detector import Detector
from spinexr.models.spine_crops import CropSpec
from spinexr.models.window_detector import WindowDetector
from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom
from spinexr.phantom.dicom import to_bytes

DEMO = Path(__file__).resolve().parents[1] / "models" / "demo"
GATE_CONF = AnalyzerConfig().gate_conf


def _windowed_demo(root: Path, conf: float) -> Path:
    """A copy of the demo pack's manifest (weights linked) whose lesion detector runs on
    vertebra windows found at ``conf``."""
    from spinexr.models.pack import save_pack

    if not (DEMO / "pack.json").is_file():
        pytest.skip("the committed demo pack models/demo is missing")
    doc = json.loads((DEMO / "pack.json").read_text())
    root.mkdir(parents=True)
    for spec in doc["models"].values():
        os.symlink((DEMO / spec["weights"]).resolve(), root / spec["weights"])
    doc["models"]["lesion_detector"]["windows"] = CropSpec(
        detector="vertebra_detector", width=2.6, height=3.0, conf=conf, whole=True).to_dict()
    return save_pack(root, doc)


@pytest.fixture(scope="module")
def image():
    ph = generate_xray(5, XrayConfig(size=(512, 416), region="lumbar", abnormal_rate=1.0))
    return read_radiograph(to_bytes(xray_to_dicom(ph)))


@pytest.fixture
def calls(monkeypatch):
    """(labels, number of images, conf) of every detector run."""
    seen = []
    real = Detector.predict

    def counted(self, images, **kw):
        seen.append((tuple(self.names), len(images), kw.get("conf")))
        return real(self, images, **kw)

    monkeypatch.setattr(Detector, "predict", counted)
    return seen


def _analyze(root: Path, image, calls):
    from spinexr.models.pack import load_pack

    analyzer = Analyzer(load_pack(root))
    calls.clear()
    return analyzer, analyzer.analyze(image)


def _vertebra_runs(calls):
    return [conf for names, _, conf in calls if names == (VERTEBRA_CLASS,)]


def _inside(a, image) -> bool:
    return all(f.box.is_valid(image.width, image.height) for f in a.findings)


def test_the_gates_bodies_are_reused_for_the_lesion_windows(tmp_path, image, calls):
    analyzer, a = _analyze(_windowed_demo(tmp_path / "pack", GATE_CONF), image, calls)
    assert isinstance(analyzer.lesion_detector, WindowDetector)
    assert analyzer.lesion_detector.spec.whole and analyzer.lesion_detector.spec.width == 2.6
    assert a.gate.accepted and len(a.vertebrae) >= 5
    assert _vertebra_runs(calls) == [GATE_CONF]                  # the gate's run only
    lesion_runs = [n for names, n, _ in calls if names != (VERTEBRA_CLASS,)]
    assert lesion_runs == [len(a.vertebrae) + 1]                 # a window per body + whole
    assert a.findings and _inside(a, image)
    # at a low confidence, boxes from windows at the image's edges stay inside it too
    (boxes,) = analyzer.lesion_detector.predict([image.pixels], conf=0.02)
    assert boxes and all(b.is_valid(image.width, image.height) for b in boxes)


def test_windows_at_another_confidence_run_the_vertebra_detector_again(tmp_path, image, calls):
    conf = GATE_CONF + 0.05
    analyzer, a = _analyze(_windowed_demo(tmp_path / "pack", conf), image, calls)
    assert analyzer.lesion_detector.spec.conf == conf
    assert a.gate.accepted
    assert sorted(_vertebra_runs(calls)) == sorted([GATE_CONF, conf])   # gate, then windows
    assert _inside(a, image)


def test_bodies_are_reused_at_the_confidence_the_gate_ran_at(tmp_path, image, calls):
    """The windows reuse the gate's bodies when their conf is the one the gate's detector ran
    at (a fitted gate's own ``conf``, else the gate settings'), whatever
    ``AnalyzerConfig.gate_conf`` says."""
    from dataclasses import replace

    from spinexr.models.pack import load_pack

    conf = GATE_CONF + 0.05
    analyzer = Analyzer(load_pack(_windowed_demo(tmp_path / "pack", conf)))
    gate = analyzer.input_gate
    if gate.model is not None:
        gate.model = replace(gate.model, conf=conf)
    else:
        gate.settings = replace(gate.settings, conf=conf)
    assert analyzer.config.gate_conf != conf and gate.detector_conf == conf
    calls.clear()
    a = analyzer.analyze(image)
    assert a.gate.accepted
    runs = _vertebra_runs(calls)
    assert runs.count(conf) == 1          # the gate's run; the lesion windows reuse its bodies
    assert set(runs) == {conf, GATE_CONF}  # the triage and grader windows (0.25) run their own
