"""The real-data recipes (configs/dernet-vindr*.yaml) run end to end through ``spinexr train``,
unedited but shrunk with ``--set``, on a tiny VinDr-layout phantom set; the vertebra part on a
handful of films of the shared real vertebra set. A typo in a recipe, or a key the training
code no longer reads the same way, fails here instead of hours into a GPU run."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
SHARED = REPO.parent / "shared"
VERTEBRAE = SHARED / "data" / "vertebrae"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not VERTEBRAE.is_dir(), reason=f"no shared data at {SHARED} "
                                 "(the vertebra part trains on the real vertebra set)")]

N_TRAIN, N_TEST = 12, 4
#: every recipe: one epoch, small batches, no dataloader processes
COMMON = ["train.epochs=1", "train.batch=4"]
#: the DERNet triage: one tiny timm member at 32 px, 2 folds
TRIAGE = ["train.folds=2", "model.input.size=32", "train.progress=false",
          "train.tensorboard=false", "train.threads=1",
          "model.members=[{key: densenet121, arch: test_resnet}]"]
#: the lesion detector: YOLO11n at 64 px instead of YOLO11-L at 1024
LESIONS = ["model.arch=yolo11n", "model.imgsz=64", "train.workers=0",
           "train.copy_paste.images=2", "train.device=cpu"]
#: the vertebra detector: no DRRs (not rendered here), a few crops and phantoms, 64 px
VERTEBRA = ["data.joint.yolo=[]", "data.joint.val_yolo=[]", "data.joint.crops.n=2",
            "data.joint.phantoms.n=2", "data.joint.val_phantoms.n=1", "model.imgsz=64",
            "model.infer_imgsz=64", "train.workers=0", "train.device=cpu"]


def _sets(pairs, part: str | None = None) -> list[str]:
    return [arg for pair in pairs for arg in ("--set", f"{part}:{pair}" if part else pair)]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """A VinDr-layout phantom set (train, test) and 4 films per split of the real vertebra set."""
    from spinexr.cli import main

    root = tmp_path_factory.mktemp("real-recipes")
    for split, n, seed in (("train", N_TRAIN, 0), ("test", N_TEST, 1)):
        assert main(["phantom", "--n", str(n), "--seed", str(seed), "--out",
                     str(root / "vindr"), "--split", split, "--size", "256", "208",
                     "--abnormal-rate", "0.8", "--quiet"]) == 0
    vert = root / "vertebrae"
    for split in ("train", "valid", "test"):
        for kind in ("images", "labels"):
            (vert / split / kind).mkdir(parents=True)
        for image in sorted((VERTEBRAE / split / "images").iterdir())[:4]:
            (vert / split / "images" / image.name).symlink_to(image)
            label = VERTEBRAE / split / "labels" / f"{image.stem}.txt"
            (vert / split / "labels" / label.name).symlink_to(label)
    shutil.copyfile(VERTEBRAE / "data.yaml", vert / "data.yaml")
    return {"root": root, "vindr": root / "vindr", "vertebrae": vert}


def _train(recipe: str, out: Path, overrides: list[str], *flags: str) -> Path:
    from spinexr.cli import main

    assert main(["train", str(CONFIGS / recipe), "--out", str(out), *overrides, *flags]) == 0
    return out / "pack"


def _roles(pack) -> dict[str, str]:
    return {key: spec.role for key, spec in pack.manifest.models.items()}


def test_triage_recipe_trains_a_loadable_ensemble(data):
    from spinexr.models.pack import load_pack

    overrides = _sets([f"data.root={data['vindr']}", *COMMON, *TRIAGE])
    pack = load_pack(_train("dernet-vindr.yaml", data["root"] / "triage", overrides))
    assert _roles(pack) == {"densenet121": "triage_member"}
    assert pack.manifest.ensemble.members == ("densenet121",)
    assert pack.name == "dernet-vindr" and not pack.synthetic
    assert pack.manifest.card["overrides"][0] == f"data.root={data['vindr']}"
    assert pack.manifest.metrics["test"]["n"] == N_TEST


def test_lesion_recipe_holds_val_out_of_train_by_study(data):
    from spinexr.labels import LESION_CLASSES
    from spinexr.models.pack import load_pack

    out = data["root"] / "lesions"
    overrides = _sets([f"data.root={data['vindr']}", *COMMON, *LESIONS])
    pack = load_pack(_train("dernet-vindr-lesions.yaml", out, overrides))
    assert _roles(pack) == {"lesion_detector": "lesion_detector"}
    spec = pack.model_spec("lesion_detector")
    assert spec.arch == "yolo11n" and tuple(spec.labels) == LESION_CLASSES
    names = {split: {p.name.split(".")[0] for p in (out / "yolo-data" / split / "images").iterdir()}
             for split in ("train", "val")}
    assert names["val"] and names["val"].isdisjoint(names["train"])
    assert {n for n in names["train"] if not n.startswith("copy-paste")} | names["val"] == \
        {f"phantom-0-{i:05d}" for i in range(N_TRAIN)}
    assert pack.manifest.metrics["val"]["n_images"] == len(names["val"])
    assert pack.manifest.metrics["test"]["n_images"] == N_TEST


def test_pack_recipe_merges_the_parts_and_analyzes_an_image(data):
    from spinexr.analyze import Analyzer
    from spinexr.io import read_radiograph
    from spinexr.models.pack import load_pack

    overrides = (_sets(COMMON)
                 + _sets([f"data.root={data['vertebrae']}", *VERTEBRA], "vertebrae")
                 + _sets([f"data.root={data['vindr']}", *TRIAGE], "triage")
                 + _sets([f"data.root={data['vindr']}", *LESIONS], "lesions"))
    out = data["root"] / "pack"
    # --resume trains the parts not yet begun from the start (as after training the triage
    # alone with torchrun into <out>/triage)
    pack = load_pack(_train("dernet-vindr-pack.yaml", out, overrides, "--resume"))
    assert _roles(pack) == {"vertebra_detector": "vertebra_detector",
                            "densenet121": "triage_member", "lesion_detector": "lesion_detector"}
    assert {k: s.part for k, s in pack.manifest.models.items()} == {
        "vertebra_detector": "vertebrae", "densenet121": "triage", "lesion_detector": "lesions"}
    assert set(pack.manifest.raw["parts"]) == {"vertebrae", "triage", "lesions"}
    assert load_pack(out / "vertebrae" / "pack").model_spec("vertebra_detector").input.size == 64
    assert load_pack(out / "triage" / "pack").manifest.card["overrides"][0] == "train.epochs=1"

    analyzer = Analyzer(pack)
    assert analyzer.roles.lesion_detector == "lesion_detector"
    image = read_radiograph(data["vindr"] / "test_images" / "phantom-1-00000.dicom")
    analysis = analyzer.analyze(image)
    assert analysis.pack.name == "dernet-vindr" and analysis.gate.accepted
    assert set(analysis.triage.per_model) == {"densenet121"}
    assert 0.0 <= analysis.triage.probability <= 1.0 and np.isfinite(analysis.triage.probability)
    assert {"gate", "triage", "lesions"} <= set(analysis.timings)
