"""Pack recipes: parts' packs merge into one verified pack; key clashes are refused."""
from __future__ import annotations

import pytest
import torch

from spinexr.errors import ConfigError
from spinexr.models.pack import load_pack, save_pack, save_weights
from spinexr.train.compose import PackRecipe, load_pack_recipe, merge_packs, split_pack


def _part(root, key, *, ensemble=False, metric=0.9):
    sha = save_weights({"w": torch.ones(2, 2) * metric}, root / f"{key}.safetensors")
    manifest = {"name": key, "version": "0.1", "synthetic": True,
                "card": {"command": f"spinexr train configs/{key}.yaml"},
                "models": {key: {"kind": "classifier", "arch": "toy", "weights": f"{key}.safetensors",
                                 "sha256": sha, "labels": ["a", "b"], "head": "binary",
                                 "input": {"size": 8}}},
                "metrics": {"test": {"auroc": metric}}}
    if ensemble:
        manifest["ensemble"] = {"members": [key], "weights": {key: 1.0},
                                "operating_points": {"youden": 0.5}}
    save_pack(root, manifest)
    return root


def _recipe(tmp_path):
    return PackRecipe(name="demo", parts={}, card={"version": "2.0", "synthetic": True,
                                                   "intended_use": "tests"},
                      source=tmp_path / "demo.yaml")


def test_merge_keeps_every_model_its_part_and_metrics(tmp_path):
    parts = {"triage": _part(tmp_path / "t", "densenet", ensemble=True, metric=0.97),
             "lesions": _part(tmp_path / "l", "lesion_detector", metric=0.6)}
    pack = load_pack(merge_packs(parts, tmp_path / "pack", _recipe(tmp_path)))
    assert (pack.name, pack.version, pack.synthetic) == ("demo", "2.0", True)
    assert pack.model_spec("densenet").part == "triage"
    assert pack.model_spec("lesion_detector").part == "lesions"
    assert pack.manifest.ensemble.members == ("densenet",)
    assert pack.manifest.metrics["triage/test"]["auroc"] == 0.97
    assert pack.manifest.raw["parts"]["lesions"]["command"] == "spinexr train configs/lesion_detector.yaml"
    torch.testing.assert_close(pack.state_dict("lesion_detector")["w"], torch.full((2, 2), 0.6),
                               atol=1e-3, rtol=0)


def test_merge_refuses_a_model_key_in_two_parts(tmp_path):
    parts = {"a": _part(tmp_path / "a", "same", metric=0.5),
             "b": _part(tmp_path / "b", "same", metric=0.7)}
    with pytest.raises(ConfigError, match="'same' appears in two parts"):
        merge_packs(parts, tmp_path / "pack", _recipe(tmp_path))


def test_merge_keeps_one_copy_of_weights_two_parts_share(tmp_path):
    """A window triage carries the vertebra detector it crops with, also a part of its own."""
    parts = {"a": _part(tmp_path / "a", "shared", metric=0.5),
             "b": _part(tmp_path / "b", "shared", metric=0.5)}
    pack = load_pack(merge_packs(parts, tmp_path / "pack", _recipe(tmp_path)))
    assert pack.model_spec("shared").part == "a"


def test_pack_recipe_names_missing_part_files(tmp_path):
    path = tmp_path / "demo.yaml"
    path.write_text("name: demo\ntask: pack\nparts: {triage: nowhere.yaml}\n")
    with pytest.raises(ConfigError, match="nowhere.yaml"):
        load_pack_recipe(path)


def test_split_then_merge_gives_back_the_committed_demo_pack(tmp_path):
    """``spinexr pack split`` is the inverse of the merge: the committed demo pack split into
    part packs and merged again (in its recipe's part order) has the same models, weights,
    metrics, ensemble and part records."""
    import json
    from pathlib import Path

    from spinexr.cli import main

    root = Path(__file__).resolve().parents[2]
    demo = root / "models" / "demo"
    assert main(["pack", "split", str(demo), str(tmp_path / "parts")]) == 0
    recipe = load_pack_recipe(root / "configs" / "demo-phantom.yaml")
    parts = {part: tmp_path / "parts" / part / "pack" for part in recipe.parts}
    assert all((p / "pack.json").is_file() for p in parts.values())
    triage = load_pack(parts["triage"])
    assert triage.manifest.ensemble is not None and "vertebra_detector" in triage.manifest.models
    assert "test" in triage.manifest.metrics                  # "triage/test" back to "test"
    merged = merge_packs(parts, tmp_path / "merged", recipe)
    a = json.loads((demo / "pack.json").read_text())
    b = json.loads((merged / "pack.json").read_text())
    for key in ("models", "ensemble", "parts"):
        assert a[key] == b[key], key
    # the part figures come back; figures measured on the whole pack (make demo-aims) do not:
    # they describe the pack before the split and are measured again after a retrain
    measured = set(a["card"].get("measured") or ())
    assert {k: v for k, v in a["metrics"].items() if k not in measured} == b["metrics"]
    assert "measured" not in b["card"]
    load_pack(merged)                                         # every sha256 verifies
    with pytest.raises(ConfigError, match="exists"):
        split_pack(demo, tmp_path / "parts")
