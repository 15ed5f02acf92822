"""``spinexr evaluate`` through spinexr.cli.main on a tiny untrained detector pack, a fake triage
ensemble and fake classifiers (metrics.json shape, plots, the end-to-end block on images the
gate refuses, the error paths), and the committed demo pack end to end on phantoms."""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spinexr.cli import main
from spinexr.cli.evaluate_plan import match_classes
from spinexr.data import open_writer
from spinexr.models.ensemble import TriageScores
from spinexr.models.pack import ModelPack, save_pack, save_weights
from spinexr.types import Box, Sample

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png(value: float, size=(64, 48)) -> bytes:
    rng = np.random.default_rng(int(value * 100))
    img = np.clip(value + rng.normal(0, 0.05, size[::-1]), 0, 1)
    buf = io.BytesIO()
    Image.fromarray((img * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _yolo_dataset(root: Path, n: int = 3) -> Path:
    """n 64x48 images; the even ones hold one 'Vertebrae' box (abnormal = brighter image)."""
    with open_writer(root, "yolo", split="test", classes=["Vertebrae"]) as w:
        for i in range(n):
            boxes = (Box(10, 8, 40, 30, "Vertebrae"),) if i % 2 == 0 else ()
            w.add(Sample(f"img{i}", Path("x.png"), f"patient{i}", boxes=boxes, width=64,
                         height=48), _png(0.7 if boxes else 0.3), ".png")
    return root


def _folders_dataset(root: Path, n_per_class: int = 3) -> Path:
    with open_writer(root, "folders", split="test", classes=["abnormal", "normal"]) as w:
        for label, value in ((0, 0.7), (1, 0.3)):
            for i in range(n_per_class):
                w.add(Sample(f"c{label}_{i}", Path("x.png"), f"p{label}{i}", label=label),
                      _png(value + 0.02 * i), ".png")
    return root


def _detector_pack(root: Path, labels=("Vertebra",), extra: dict | None = None,
                   weights: bool = True) -> Path:
    """A pack with one untrained yolo11n (or, ``weights=False``, a placeholder file for tests
    that never load the model: building yolo11n costs seconds on a busy CPU)."""
    if weights:
        import torch

        from spinexr.models.yolo import build_detection_model

        torch.manual_seed(0)
        model = build_detection_model("yolo11n", list(labels))
        sha = save_weights(model.state_dict(), root / "det.safetensors")
    else:
        root.mkdir(parents=True)
        (root / "det.safetensors").write_bytes(b"never loaded")
        sha = None
    role = "vertebra_detector" if tuple(labels) == ("Vertebra",) else "lesion_detector"
    spec = {"kind": "detector", "role": role, "arch": "yolo11n", "weights": "det.safetensors",
            "sha256": sha, "dtype": "float16", "labels": list(labels), "input": {"size": 64}}
    save_pack(root, {"name": "tiny", "version": "0.0.1", "synthetic": True,
                     "models": {"det": spec}, "test_set": {"split": "test"}, **(extra or {})})
    return root


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINEXR_CACHE", str(tmp_path / "cache"))


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5000


def test_detector_pack_on_yolo_data_writes_map_and_ap_plot(tmp_path, cache, capsys):
    pack = _detector_pack(tmp_path / "pack")
    data = _yolo_dataset(tmp_path / "data")
    out = tmp_path / "out"
    assert main(["evaluate", "--pack", str(pack), "--data", str(data), "--out", str(out),
                 "--n-boot", "20"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert isinstance(m["map50"], float) and 0 <= m["map50"] <= 1
    assert isinstance(m["map50_95"], float) and m["map50_95"] <= m["map50"] + 1e-9
    assert set(m["per_class"]) == {"Vertebra"} and m["per_class"]["Vertebra"]["n_true"] == 2
    det = m["detection"]["det"]
    assert det["class_map"] == {"Vertebrae": "Vertebra"} and det["n_images"] == 3
    assert m["data"] == {"root": str(data), "format": "yolo", "split": "test", "n_images": 3}
    assert m["plots"] == ["ap_per_class.png"] and _is_png(out / "ap_per_class.png")
    assert "auroc" not in m and m["triage"] is None and m["skipped"] == {}
    # end to end: the gate refuses 64 x 48 px images (below its 64 px side); no lesion detector
    e2e = m["end_to_end"]
    assert e2e["gate"] == {"n": 3, "accepted": 0, "uncertain": 0, "refused": 3}
    assert e2e["triage"] is None and e2e["lesions"] is None and e2e["grades"] == {}
    assert e2e["notes"] == ["lesions: the pack has no lesion detector"]
    assert e2e["settings"]["gating"] == "vindr"
    printed = capsys.readouterr().out
    assert "metrics written to" in printed and "0 accepted, 0 uncertain, 3 refused" in printed


class _FakeTriage:
    """Probability = mean brightness (abnormal images are brighter), two 'members'; the
    interface of spinexr.models.ensemble.TriageEnsemble."""

    def __init__(self, ensemble):
        self.members = {k: None for k in ensemble.members}
        self.operating_points = dict(ensemble.operating_points)

    def predict(self, images):
        p = np.array([float(im.mean()) for im in images])
        return TriageScores(p, {"a": p ** 2, "b": np.sqrt(p)},
                            {op: p >= t for op, t in self.operating_points.items()})


class _FakeClassifier:
    """Two classes: P(abnormal) = brightness. K grades: the grade nearest the brightness."""

    def __init__(self, labels: list[str]):
        self.labels, self.k = labels, len(labels)

    def predict_proba(self, images):
        p = np.array([float(im.mean()) for im in images])
        if self.k == 2:
            pair = [p, 1 - p] if self.labels[0] == "abnormal" else [1 - p, p]
            return np.stack(pair, axis=1)
        centers = np.linspace(0, 1, self.k)
        logits = -((p[:, None] - centers) ** 2) * 50
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)


def _with_fakes(monkeypatch):
    # the interface of ModelPack.triage / .classifier (spinexr.models.ensemble / classifier)
    monkeypatch.setattr(ModelPack, "triage", lambda self, device="cpu", **_: _FakeTriage(
        self.manifest.ensemble))
    monkeypatch.setattr(ModelPack, "classifier", lambda self, key, device="cpu", **_:
                        _FakeClassifier(list(self.model_spec(key).labels)))


def _classifier_pack(root: Path, classifiers: dict[str, list[str]], **manifest) -> Path:
    """A pack of fake classifiers (key -> labels; placeholder weights, never loaded)."""
    root.mkdir(parents=True)
    models = {}
    for key, labels in classifiers.items():
        (root / f"{key}.safetensors").write_bytes(b"fake")
        models[key] = {"kind": "classifier", "arch": "fake", "head": "softmax",
                       "labels": labels, "weights": f"{key}.safetensors", "input": {"size": 32}}
    for key, extra in manifest.pop("extra_specs", {}).items():
        models[key].update(extra)
    save_pack(root, {"name": "fakes", "version": "1", "models": models, **manifest})
    return root


def test_triage_ensemble_and_classifier_on_class_folders(tmp_path, monkeypatch, capsys):
    _with_fakes(monkeypatch)
    ensemble = {"operating_points": {"youden": 0.5, "sens95": 0.2}, "members": ["m1"],
                "weights": {"m1": 1.0}}
    pack = _classifier_pack(tmp_path / "pack", {
        "m1": ["normal", "abnormal"],          # a member: not evaluated alone
        "grade": ["abnormal", "normal"]},      # folder classes, own order
        ensemble=ensemble)
    data = _folders_dataset(tmp_path / "data")
    out = tmp_path / "out"
    assert main(["evaluate", "--pack", str(pack), "--data", str(data), "--out", str(out),
                 "--n-boot", "50", "--format", "folders"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    # flat headline keys: triage at its default point "youden" (brightness separates perfectly)
    assert m["auroc"] == 1.0 and m["operating_point"] == "youden" and m["threshold"] == 0.5
    assert m["sensitivity"] == 1.0 and m["specificity"] == 1.0 and m["f1"] == 1.0
    assert len(m["auroc_ci"]) == 2 and all(isinstance(v, float) for v in m["auroc_ci"])
    assert set(m["operating_points"]) == {"youden", "sens95"}
    assert m["operating_points"]["sens95"]["specificity"] == 0.0
    assert set(m["triage"]["per_model"]) == {"a", "b"} and m["triage"]["n_pos"] == 3
    assert 0 <= m["calibration"]["ece"] <= 1 and len(m["calibration"]["bins"]) == 10
    assert set(m["classifiers"]) == {"grade"}
    assert m["balanced_accuracy"] == 1.0 and m["qwk"] == 1.0
    assert m["classifiers"]["grade"]["confusion"] == [[3, 0], [0, 3]]
    assert set(m["per_class"]) == {"abnormal", "normal"}
    for name in ("roc.png", "pr.png", "reliability.png", "confusion.png"):
        assert name in m["plots"] and _is_png(out / name)
    assert "roc-grade.png" in m["plots"]
    binary = m["classifiers"]["grade"]["binary"]
    assert binary["positive"] == "abnormal" and binary["auroc"] == 1.0
    # end to end the gate refuses every 64 x 48 px image: a user gets no flag and no grade, so
    # the perfect triage model is worth AUROC 0.5 (every image at P = 0) and sensitivity 0
    e2e = m["end_to_end"]
    assert e2e["gate"] == {"n": 6, "accepted": 0, "uncertain": 0, "refused": 6}
    t = e2e["triage"]
    assert t["operating_point"] == "youden" and t["threshold"] == 0.5
    assert t["auroc"] == 0.5 and t["auroc_analysed"] is None and t["n_analysed"] == 0
    assert (t["sensitivity"], t["specificity"], t["tp"], t["tn"]) == (0.0, 1.0, 0, 3)
    assert (t["refused_abnormal"], t["refused_normal"]) == (3, 3)
    grade = e2e["grades"]["grade"]
    assert (grade["n_labelled"], grade["n_graded"], grade["n_labelled_ungraded"]) == (6, 0, 6)
    assert grade["accuracy"] is None


def test_classifier_only_pack_with_grades_from_coco(tmp_path, monkeypatch):
    _with_fakes(monkeypatch)
    pack = _classifier_pack(tmp_path / "pack", {"deg": ["healthy", "doubtful", "minimal"]},
                            extra_specs={"deg": {"target": "grades.degeneration"}})
    with open_writer(tmp_path / "data", "coco", split="test", classes=["Osteophytes"]) as w:
        for i, (value, grade) in enumerate([(0.0, 0), (0.5, 1), (1.0, 2), (0.55, 2)]):
            w.add(Sample(f"g{i}", Path("x.png"), f"p{i}", grades={"degeneration": grade},
                         width=64, height=48), _png(value), ".png")
    out = tmp_path / "out"
    assert main(["evaluate", "--pack", str(pack), "--data", str(tmp_path / "data"),
                 "--out", str(out), "--n-boot", "0", "--no-end-to-end"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["end_to_end"] is None
    deg = m["classifiers"]["deg"]
    assert deg["confusion"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]] and m["accuracy"] == 0.75
    assert math.isclose(m["balanced_accuracy"], (1 + 1 + 0.5) / 3)
    assert "auroc" not in m and m["plots"] == ["confusion.png"]


def test_vertebra_detector_on_the_vertebral_bodies_of_a_coco_set(tmp_path, cache, capsys):
    from spinexr.types import Box

    pack = _detector_pack(tmp_path / "pack")
    with open_writer(tmp_path / "data", "coco", split="test", classes=["Osteophytes"]) as w:
        for i in range(2):
            bodies = tuple(Box(10, 4 + 14 * k, 40, 14 + 14 * k, "Vertebra", level=f"L{k + 1}")
                           for k in range(3))
            w.add(Sample(f"v{i}", Path("x.png"), f"p{i}", width=64, height=48,
                         boxes=(Box(1, 1, 5, 5, "Osteophytes"),), vertebrae=bodies),
                  _png(0.3 + 0.2 * i), ".png")
    data, out = tmp_path / "data", tmp_path / "out"
    # by default the lesion boxes are the truth: a vertebra detector has nothing to match
    assert main(["evaluate", "--pack", str(pack), "--data", str(data), "--out", str(out)]) == 2
    assert "match none of the detector's labels" in capsys.readouterr().err
    assert main(["evaluate", "--pack", str(pack), "--data", str(data), "--out", str(out),
                 "--boxes", "vertebrae", "--no-end-to-end"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["per_class"]["Vertebra"]["n_true"] == 6 and 0 <= m["map50"] <= 1
    assert m["detection"]["det"]["n_images"] == 2
    # a yolo set has no vertebral bodies besides its boxes: the option is refused, named
    yolo = _yolo_dataset(tmp_path / "yolo")
    assert main(["evaluate", "--pack", str(pack), "--data", str(yolo), "--out", str(out),
                 "--boxes", "vertebrae"]) == 2
    assert "--boxes vertebrae was given but no sample has vertebra boxes" in \
        capsys.readouterr().err


def test_grading_pack_target_is_found_from_its_label_vocabulary(tmp_path, monkeypatch):
    from spinexr.labels import DEGENERATION_GRADES

    _with_fakes(monkeypatch)
    pack = _classifier_pack(tmp_path / "pack", {"deg": list(DEGENERATION_GRADES)},
                            task="grading")                  # no "target" in the spec
    with open_writer(tmp_path / "data", "coco", split="test", classes=["Osteophytes"]) as w:
        for i, (value, grade) in enumerate([(0.0, 0), (0.25, 1), (1.0, 4)]):
            w.add(Sample(f"g{i}", Path("x.png"), f"p{i}", grades={"degeneration": grade},
                         width=64, height=48), _png(value), ".png")
    out = tmp_path / "out"
    assert main(["evaluate", "--pack", str(pack), "--data", str(tmp_path / "data"),
                 "--out", str(out), "--n-boot", "0", "--no-end-to-end"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["qwk"] == 1.0 and m["accuracy"] == 1.0
    assert m["per_class"]["moderate"] == {"precision": None, "recall": None, "f1": None,
                                          "support": 0}


def test_missing_pack_is_one_error_line(tmp_path, capsys):
    data = _yolo_dataset(tmp_path / "data")
    code = main(["evaluate", "--pack", str(tmp_path / "nope"), "--data", str(data),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ")
    assert "model pack folder not found" in err[0] and not (tmp_path / "out").exists()
    (tmp_path / "empty").mkdir()
    code = main(["evaluate", "--pack", str(tmp_path / "empty"), "--data", str(data),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no pack.json" in err[0]


def test_missing_data_is_one_error_line(tmp_path, capsys):
    save_pack(tmp_path / "pack", {"name": "empty", "version": "1", "models": {}})
    code = main(["evaluate", "--pack", str(tmp_path / "pack"), "--data", str(tmp_path / "none"),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "dataset directory not found" in err[0]


def test_absent_split_and_unmatched_detector_are_refused(tmp_path, cache, capsys):
    pack = _detector_pack(tmp_path / "pack", labels=("Osteophytes",), weights=False)
    data = _yolo_dataset(tmp_path / "data")
    args = ["evaluate", "--pack", str(pack), "--data", str(data), "--out", str(tmp_path / "o")]
    assert main([*args, "--split", "train"]) == 2
    assert "split 'train'" in capsys.readouterr().err
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "nothing in the pack fits" in err and "['Vertebrae']" in err


def test_bad_numbers_are_refused(tmp_path, capsys):
    code = main(["evaluate", "--pack", str(tmp_path), "--data", str(tmp_path),
                 "--out", str(tmp_path / "o"), "--n-boot", "-1"])
    assert code == 2 and "--n-boot must be >= 0" in capsys.readouterr().err


@pytest.mark.parametrize("source, target, expected", [
    (["Vertebrae"], ["Vertebra"], {"Vertebrae": "Vertebra"}),
    (["osteophyte", "DISC SPACE NARROWING"], ["Osteophytes", "Disc space narrowing"],
     {"osteophyte": "Osteophytes", "DISC SPACE NARROWING": "Disc space narrowing"}),
    (["Spondylolysthesis"], ["Spondylolisthesis"], {"Spondylolysthesis": "Spondylolisthesis"}),
    (["Foraminal stenosis"], ["Foraminal stenosis"], {"Foraminal stenosis": "Foraminal stenosis"}),
])
def test_class_names_match_across_case_number_and_spelling(source, target, expected):
    assert match_classes(source, target) == (expected, [])


def test_explicit_class_map_wins_and_misses_are_listed():
    mapping, missing = match_classes(["VB", "Fracture", "Rib"], ["Vertebra", "Other lesions"],
                                     {"VB": "Vertebra"})
    assert mapping == {"VB": "Vertebra", "Fracture": "Other lesions"} and missing == ["Rib"]


# -- the committed demo pack end to end on phantoms --------------------------------------------------
MODELS = Path(__file__).resolve().parents[2] / "models"


def _demo_run(tmp_path: Path, gating: str, n: int = 4) -> dict:
    """``spinexr evaluate`` of models/demo (gate: models/vertebrae, as `spinexr analyze`) on n
    small vindr-layout phantoms; the metrics.json it writes."""
    data, out = tmp_path / "phantoms", tmp_path / f"out-{gating}"
    if not data.exists():
        assert main(["phantom", "--n", str(n), "--seed", "3", "--out", str(data), "--split",
                     "test", "--size", "640", "480", "--quiet"]) == 0
    assert main(["evaluate", str(data), "--pack", str(MODELS / "demo"), "--vertebrae",
                 str(MODELS / "vertebrae"), "--out", str(out), "--n-boot", "0",
                 "--decode-workers", "0", "--gating", gating]) == 0
    return json.loads((out / "metrics.json").read_text())


def _check_demo_block(m: dict, n: int) -> dict:
    e2e = m["end_to_end"]
    g = e2e["gate"]
    assert g["n"] == n == m["data"]["n_images"]
    assert g["accepted"] + g["uncertain"] + g["refused"] == n
    t = e2e["triage"]
    assert t["n"] + t["excluded_unlabelled"] == n and t["n_analysed"] == n - g["refused"]
    assert t["tp"] + t["fp"] + t["tn"] + t["fn"] == t["n"]
    assert t["refused_abnormal"] + t["refused_normal"] == g["refused"]
    assert t["operating_point"] == "youden" == e2e["settings"]["operating_point"]
    les = e2e["lesions"]
    assert les["n_images"] == n and 0 <= les["map50_95"] <= les["map50"] <= 1
    assert les["class_map"] == m["detection"]["lesion_detector"]["class_map"]
    assert e2e["settings"]["lesion_conf"] == 0.25 and e2e["settings"]["gate_verified"]
    return e2e


def test_demo_pack_end_to_end_on_phantoms(tmp_path, capsys):
    """dernet gating: lesion boxes only on images the triage flags."""
    m = _demo_run(tmp_path, "dernet")
    e2e = _check_demo_block(m, 4)
    t, les = e2e["triage"], e2e["lesions"]
    assert e2e["settings"]["gating"] == "dernet"
    assert les["n_images_with_findings"] <= t["tp"] + t["fp"]
    # the phantoms are spine radiographs: all analysed, so the triage a user gets is the
    # ensemble alone (same probabilities, same decisions)
    assert t["n_analysed"] == 4 and t["auroc"] == m["triage"]["auroc"]
    at = m["triage"]["operating_points"]["youden"]
    assert (t["tp"], t["fp"], t["tn"], t["fn"]) == (at["tp"], at["fp"], at["tn"], at["fn"])
    assert "end to end (gating dernet, operating point youden): 4 images" in \
        capsys.readouterr().out


@pytest.mark.slow
def test_demo_pack_vindr_gating_keeps_at_least_the_dernet_boxes(tmp_path):
    """vindr keeps every box dernet keeps (triage-abnormal images) plus the confident ones on
    triage-normal images; the gate and triage do not depend on the gating."""
    dernet, vindr = (_check_demo_block(_demo_run(tmp_path, g, n=8), 8)
                     for g in ("dernet", "vindr"))
    assert vindr["lesions"]["n_findings"] >= dernet["lesions"]["n_findings"]
    assert vindr["gate"] == dernet["gate"]
    assert vindr["triage"]["auroc"] == dernet["triage"]["auroc"]
