"""Detect recipes: training on vertebra boxes (``data.boxes``) and starting from a pack
(``model.init``)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from spinexr.errors import ConfigError
from spinexr.labels import LESION_CLASSES, VERTEBRA_CLASS
from spinexr.train.config import load_config
from spinexr.train.detector import init_model, vertebra_targets
from spinexr.types import Box, Sample


def _recipe(tmp_path: Path, **model) -> Path:
    doc = {"name": "d", "task": "detect", "data": {"root": "data", "format": "coco"},
           "model": {"arch": "yolo11n", "imgsz": 64, **model}, "train": {}}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _pack(root: Path, keys: dict[str, list[str]]) -> None:
    from spinexr.models.pack import save_pack, save_weights
    from spinexr.models.yolo import build_detection_model

    models = {}
    for key, labels in keys.items():
        torch.manual_seed(len(models))
        sha = save_weights(build_detection_model("yolo11n", labels).state_dict(),
                           root / f"{key}.safetensors")
        models[key] = {"kind": "detector", "arch": "yolo11n", "weights": f"{key}.safetensors",
                       "sha256": sha, "dtype": "float16", "labels": labels,
                       "input": {"size": 64}}
    save_pack(root, {"name": "p", "version": "0", "synthetic": True, "models": models})


def test_init_model_loads_the_packs_detector(tmp_path):
    _pack(tmp_path / "packs" / "v", {"vert": [VERTEBRA_CLASS]})
    cfg = load_config(_recipe(tmp_path, init="packs/v"))
    model = init_model(cfg, [VERTEBRA_CLASS])
    from spinexr.models.pack import load_pack

    want = load_pack(tmp_path / "packs" / "v").detector("vert", engine="torch").model
    got, ref = model.state_dict(), want.state_dict()
    assert set(got) == set(ref)
    assert all(torch.equal(got[k], ref[k]) for k in ref)


def test_init_model_needs_one_detector_or_a_key(tmp_path):
    _pack(tmp_path / "packs" / "two", {"a": [VERTEBRA_CLASS], "b": list(LESION_CLASSES)})
    with pytest.raises(ConfigError, match="2 yolo11n detector"):
        init_model(load_config(_recipe(tmp_path, init="packs/two")), [VERTEBRA_CLASS])
    model = init_model(load_config(_recipe(tmp_path, init={"pack": "packs/two", "key": "b"})),
                       list(LESION_CLASSES))
    assert list(model.names.values()) == list(LESION_CLASSES)


def test_vertebra_targets_replace_lesions_by_bodies(tmp_path):
    body = Box(1, 2, 30, 20, "whatever", level="L3")
    lesion = Box(5, 5, 9, 9, "Osteophytes")
    s = Sample(image_id="a", image_path=Path("a.png"), group="p1", boxes=(lesion,), vertebrae=(body,))
    got = vertebra_targets({"train": [s]}, tmp_path)["train"][0]
    assert [(b.label, b.level, b.x2) for b in got.boxes] == [(VERTEBRA_CLASS, "L3", 30)]
    with pytest.raises(ConfigError, match="no sample has vertebra boxes"):
        vertebra_targets({"train": [Sample(image_id="b", image_path=Path("b.png"), group="p2",
                                           boxes=(lesion,))]}, tmp_path)


def test_unknown_box_source_is_refused(tmp_path):
    path = _recipe(tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["data"]["boxes"] = "discs"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="data.boxes"):
        load_config(path)
