"""``spinexr evaluate`` through spinexr.cli.main on a tiny untrained detector pack, a fake triage
ensemble and fake classifiers; metrics.json shape, plots, and the error paths."""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spinexr.cli import main
from spinexr.cli.evaluate_cmd import match_classes
from spinexr.data import open_writer
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
    spec = {"kind": "detector", "arch": "yolo11n", "weights": "det.safetensors", "sha256": sha,
            "dtype": "float16", "labels": list(labels), "input": {"size": 64}}
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
    assert "metrics written to" in capsys.readouterr().out


class _FakeTriage:
    """Probability = mean brightness (abnormal images are brighter), three 'members'."""

    def predict(self, images):
        p = np.array([float(im.mean()) for im in images])
        return {"probability": p, "per_model": {"a": p ** 2, "b": np.sqrt(p)},
                "decisions": {"youden": p >= 0.5}}


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
    monkeypatch.setattr(ModelPack, "triage", lambda self, device="cpu", **_: _FakeTriage())
    monkeypatch.setattr(ModelPack, "classifier", lambda self, key, device="cpu", **_:
                        _FakeClassifier(self.model_spec(key)["labels"]))


def _add_classifier(pack: Path, key: str, labels: list[str]) -> None:
    manifest = json.loads((pack / "pack.json").read_text())
    (pack / f"{key}.safetensors").write_bytes(b"fake")
    manifest["models"][key] = {"kind": "classifier", "arch": "fake", "labels": labels,
                               "weights": f"{key}.safetensors", "input": {"size": 32}}
    (pack / "pack.json").write_text(json.dumps(manifest))


def test_triage_ensemble_and_classifier_on_class_folders(tmp_path, monkeypatch, capsys):
    _with_fakes(monkeypatch)
    pack = tmp_path / "pack"
    ensemble = {"operating_points": {"youden": 0.5, "sens95": 0.2}, "members": ["m1"]}
    save_pack(pack, {"name": "triage", "version": "1", "models": {}, "ensemble": ensemble})
    _add_classifier(pack, "m1", ["normal", "abnormal"])       # a member: not evaluated alone
    _add_classifier(pack, "grade", ["abnormal", "normal"])    # folder classes, own order
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


def test_classifier_only_pack_with_grades_from_coco(tmp_path, monkeypatch):
    _with_fakes(monkeypatch)
    pack = tmp_path / "pack"
    save_pack(pack, {"name": "grades", "version": "1", "models": {}})
    _add_classifier(pack, "deg", ["healthy", "doubtful", "minimal"])
    manifest = json.loads((pack / "pack.json").read_text())
    manifest["models"]["deg"]["target"] = "grades.degeneration"
    (pack / "pack.json").write_text(json.dumps(manifest))
    with open_writer(tmp_path / "data", "coco", split="test", classes=["Osteophytes"]) as w:
        for i, (value, grade) in enumerate([(0.0, 0), (0.5, 1), (1.0, 2), (0.55, 2)]):
            w.add(Sample(f"g{i}", Path("x.png"), f"p{i}", grades={"degeneration": grade},
                         width=64, height=48), _png(value), ".png")
    out = tmp_path / "out"
    assert main(["evaluate", "--pack", str(pack), "--data", str(tmp_path / "data"),
                 "--out", str(out), "--n-boot", "0"]) == 0
    m = json.loads((out / "metrics.json").read_text())
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
                 "--boxes", "vertebrae"]) == 0
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
    pack = tmp_path / "pack"
    save_pack(pack, {"name": "deg", "version": "1", "models": {}, "task": "grading"})
    _add_classifier(pack, "deg", list(DEGENERATION_GRADES))   # no "target" in the spec
    with open_writer(tmp_path / "data", "coco", split="test", classes=["Osteophytes"]) as w:
        for i, (value, grade) in enumerate([(0.0, 0), (0.25, 1), (1.0, 4)]):
            w.add(Sample(f"g{i}", Path("x.png"), f"p{i}", grades={"degeneration": grade},
                         width=64, height=48), _png(value), ".png")
    out = tmp_path / "out"
    assert main(["evaluate", "--pack", str(pack), "--data", str(tmp_path / "data"),
                 "--out", str(out), "--n-boot", "0"]) == 0
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
    assert "no pack.json" in err[0] and not (tmp_path / "out").exists()


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
