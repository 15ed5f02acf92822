"""The committed gate's detector and classifier both equalise their input ("equalize" in both
input contracts): the gate equalises each image once and hands the result to both, with the
same verdicts as when each model equalises for itself."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import spinexr.io.contrast as contrast
from spinexr.gate import GateSettings, InputGate
from spinexr.io import read_radiograph
from spinexr.models import load_pack
from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom
from spinexr.phantom.dicom import to_bytes

PACK = Path(__file__).resolve().parents[2] / "models" / "vertebrae"


@pytest.fixture(scope="module")
def gate() -> InputGate:
    return InputGate.from_packs([load_pack(PACK)], GateSettings())


@pytest.fixture(scope="module")
def images():
    # a plain lumbar film and a tall one (the detector also runs tiles of it: tile_aspect 2)
    sizes = [(480, 400), (720, 280)]
    return [read_radiograph(to_bytes(xray_to_dicom(generate_xray(
        seed=7100 + i, config=XrayConfig(view="lateral", region="lumbar", size=size)))))
        for i, size in enumerate(sizes)]


def _judge_counting(gate: InputGate, images, monkeypatch) -> tuple[list, int]:
    calls = []
    equalize = contrast.equalize_histogram

    def counted(pixels, *args, **kwargs):
        calls.append(pixels.shape)
        return equalize(pixels, *args, **kwargs)

    monkeypatch.setattr(contrast, "equalize_histogram", counted)
    verdicts = gate.judge(images)
    monkeypatch.undo()
    return verdicts, len(calls)


def test_gate_equalises_each_image_once_with_the_same_verdicts(gate, images, monkeypatch):
    assert gate.detector.preprocess == gate.classifier.pre.contrast == "equalize"
    shared, n_shared = _judge_counting(gate, images, monkeypatch)
    monkeypatch.setattr(InputGate, "_shared_contrast", lambda self, pixels: (pixels, False))
    alone, n_alone = _judge_counting(gate, images, monkeypatch)
    assert n_shared == len(images)            # once per image
    assert n_alone == 2 * len(images)         # before: once in each model
    for s, a in zip(shared, alone):
        assert s.result.accepted == a.result.accepted
        assert s.result.checks == a.result.checks     # classifier logit, chain evidence
        np.testing.assert_allclose(s.result.p_spine or 0.0, a.result.p_spine or 0.0, atol=0)
        assert [b.as_list() for b in s.vertebrae] == [b.as_list() for b in a.vertebrae]
        assert s.vertebrae, "the phantom should show vertebrae (else the test checks little)"


def test_models_skip_their_contrast_step_only_when_told(gate, images):
    pixels = [im.pixels for im in images]
    equalised = [contrast.equalize_histogram(p) for p in pixels]
    clf, det = gate.classifier, gate.detector
    np.testing.assert_array_equal(clf.predict_logits(pixels),
                                  clf.predict_logits(equalised, contrast_applied=True))
    assert ([[b.as_list() for b in bs] for bs in det.predict(pixels)]
            == [[b.as_list() for b in bs] for bs in det.predict(equalised,
                                                                contrast_applied=True)])
