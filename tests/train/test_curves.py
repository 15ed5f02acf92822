"""Learning curves: training logs (CSV) -> LearningCurve, its JSON round trip, the card table,
the engine's sample count, and compose carrying each part's curves into the merged pack."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spinexr.errors import ConfigError
from spinexr.evaluate.curves import LearningCurve, improves
from spinexr.models.card import curve_table
from spinexr.models.pack import load_pack, save_pack, save_weights
from spinexr.train.compose import PackRecipe, merge_packs
from spinexr.train.curves import classifier_curve, detector_curve, with_curves, yolo_train_images


def _write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


ENGINE_HEADER = "epoch,lr,train_loss,train_samples,val_loss,auroc\n"


def _folds(tmp_path):
    """Fold 0 runs 4 epochs; epochs 2 and 3 tie on AUROC 0.8, epoch 3 with the lower val loss.
    Fold 1 stops after 2 epochs (of 4 planned), best at its 2nd."""
    _write(tmp_path / "fold0" / "metrics.csv", ENGINE_HEADER
           + "0,0.1,1.0,10,0.9,0.6\n1,0.1,0.8,10,0.7,0.8\n2,0.1,0.6,10,0.5,0.8\n"
             "3,0.1,0.5,10,0.6,0.7\n")
    _write(tmp_path / "fold1" / "metrics.csv", ENGINE_HEADER
           + "0,0.1,1.2,8,1.0,0.5\n1,0.1,0.9,8,0.8,0.7\n")
    return [tmp_path / "fold0", tmp_path / "fold1", tmp_path / "fold2"]   # fold2: no log


def test_classifier_curve_is_the_fold_mean_with_best_and_stop_per_run(tmp_path):
    curve = classifier_curve(_folds(tmp_path), monitor="auroc", mode="max", planned_epochs=4)
    assert [p.epoch for p in curve.points] == [1, 2, 3, 4]     # 0-based in the log
    assert [p.runs for p in curve.points] == [2, 2, 1, 1]
    np.testing.assert_allclose(curve.points[0].val["auroc"], 0.55, atol=1e-12)
    np.testing.assert_allclose(curve.points[1].train_loss, 0.85, atol=1e-12)
    assert [p.seen for p in curve.points] == [9, 18, 30, 40]    # mean of 10 and 8 per epoch
    assert curve.best_epochs == (3, 2)          # the tie at 0.8 goes to the lower val loss
    assert curve.last_epochs == (4, 2) and curve.stopped_early == (2,)
    assert "2 runs (fold0, fold1)" in curve.source


def test_the_best_epoch_rule_is_the_engines():
    assert improves(0.8, 0.5, 0.8, 0.7, mode="max")          # tie, lower loss
    assert not improves(0.8, 0.9, 0.8, 0.7, mode="max")
    assert not improves(float("nan"), 0.1, 0.5, 0.7, mode="max")
    assert improves(0.3, None, 0.4, None, mode="min")
    assert not improves(0.41, None, 0.4, None, mode="max", min_delta=0.05)


def test_old_logs_count_samples_from_the_train_size_or_not_at_all(tmp_path):
    _write(tmp_path / "run" / "metrics.csv", "epoch,lr,train_loss,val_loss,qwk\n"
           "0,0.1,1.0,0.9,0.2\n1,0.1,0.8,0.7,0.4\n")
    sized = classifier_curve([tmp_path / "run"], monitor="qwk", mode="max", train_size=50,
                             unit="windows")
    assert [p.seen for p in sized.points] == [50, 100] and sized.unit == "windows"
    unsized = classifier_curve([tmp_path / "run"], monitor="qwk", mode="max")
    assert [p.seen for p in unsized.points] == [None, None]
    assert unsized.stopped_early == ()          # no planned length: nothing marked


def test_no_log_no_curve_and_a_wrong_monitor_is_named(tmp_path):
    assert classifier_curve([tmp_path / "nothing"], monitor="auroc", mode="max") is None
    assert detector_curve(tmp_path / "results.csv", train_images=3) is None
    with pytest.raises(ConfigError, match="monitor 'qwk' is in no epoch row"):
        classifier_curve(_folds(tmp_path), monitor="qwk", mode="max")


YOLO_CSV = (
    "                  epoch,   train/box_loss,   train/cls_loss,   train/dfl_loss,"
    "metrics/precision(B),metrics/recall(B),metrics/mAP50(B),metrics/mAP50-95(B),"
    "val/box_loss,val/cls_loss,val/dfl_loss,lr/pg0\n"
    "1,1.0,2.0,1.0,0.5,0.4,0.30,0.10,1.5,2.5,1.0,0.01\n"
    "2,0.9,1.0,1.0,0.6,0.5,0.50,0.20,1.0,2.0,1.0,0.01\n"
    "2,0.8,1.0,1.0,0.6,0.5,0.55,0.25,1.0,2.0,1.0,0.01\n"      # resumed: epoch 2 again
    "3,0.7,1.0,1.0,0.6,0.5,0.60,0.25,1.0,2.0,1.0,0.01\n")


def test_detector_curve_from_results_csv(tmp_path):
    curve = detector_curve(_write(tmp_path / "yolo" / "results.csv", YOLO_CSV),
                           train_images=40, planned_epochs=5)
    assert [p.epoch for p in curve.points] == [1, 2, 3]
    np.testing.assert_allclose([p.train_loss for p in curve.points], [4.0, 2.8, 2.7], atol=1e-9)
    np.testing.assert_allclose(curve.points[1].val["map50"], 0.55, atol=1e-12)  # last row wins
    np.testing.assert_allclose(curve.points[0].val["val_loss"], 5.0, atol=1e-9)
    assert [p.seen for p in curve.points] == [40, 80, 120]
    assert (curve.monitor, curve.best_epochs) == ("map50_95", (2,))   # first of the tied 0.25
    assert curve.stopped_early == (3,) and curve.shown == ("map50_95", "map50")


def test_yolo_train_images_counts_every_train_folder(tmp_path):
    for folder, n in (("a/images", 3), ("b/images", 2)):
        for i in range(n):
            _write(tmp_path / folder / f"{i}.png", "")
    _write(tmp_path / "a" / "images" / "notes.txt", "")
    data = _write(tmp_path / "data.yaml", f"path: {tmp_path}\ntrain: [a/images, b/images]\n")
    assert yolo_train_images(data) == 5
    assert yolo_train_images(data, fraction=0.5) == 2          # round(2.5), as ultralytics


def test_json_round_trip_and_bad_documents(tmp_path):
    curve = classifier_curve(_folds(tmp_path), monitor="auroc", mode="max", planned_epochs=4)
    again = LearningCurve.from_dict(json.loads(json.dumps(curve.to_dict())))
    assert again == curve
    with pytest.raises(ConfigError, match="not a learning curve"):
        LearningCurve.from_dict({"monitor": "auroc", "mode": "max"})
    with pytest.raises(ConfigError, match="unit 'crops'"):
        LearningCurve.from_dict({**curve.to_dict(), "unit": "crops"})


def test_card_table_marks_best_and_stop_and_samples_long_curves(tmp_path):
    table = "\n".join(curve_table(classifier_curve(_folds(tmp_path), monitor="auroc",
                                                   mode="max", planned_epochs=4)))
    row = {int(line.split("|")[1]): line for line in table.splitlines()
           if line.startswith("| ") and line.split("|")[1].strip().isdigit()}
    assert "**best** in 1/2 runs" in row[3] and "1/2 runs stopped early" in row[2]
    assert "**best** in 1/2 runs" in row[2] and "best" not in row[1]
    rows = "".join(f"{e},0.1,{1 / (e + 1):.4f},5,0.5,{min(e, 14) / 20}\n" for e in range(30))
    _write(tmp_path / "long" / "metrics.csv", ENGINE_HEADER + rows)
    long = curve_table(classifier_curve([tmp_path / "long"], monitor="auroc", mode="max",
                                        planned_epochs=40))
    shown = [line for line in long if line.startswith("| ") and line[2].isdigit()]
    assert 8 <= len(shown) <= 10 and "9 of 30 epochs shown" in long[0]
    assert any(line.startswith("| 15 |") and "**best**" in line for line in shown)
    assert "early stop (of 40 planned)" in shown[-1] and shown[-1].startswith("| 30 |")


def test_the_engine_logs_the_samples_it_drew(tmp_path):
    from spinexr.train.engine import Dist, EngineConfig, fit
    from spinexr.train.images import ArrayData, to_uint16

    rng = np.random.default_rng(0)
    data = ArrayData(to_uint16(rng.random((10, 4, 4))), np.arange(10) % 2,
                     tuple(map(str, range(10))), tuple(map(str, range(10))))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1))
    cfg = EngineConfig(epochs=2, batch_size=4, monitor="val_loss", mode="min", progress=False,
                       tensorboard=False, amp=False)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    fit(model, data, data, loss_fn=lambda z, y: bce(z[:, 0], y.float()), cfg=cfg,
        run_dir=tmp_path, train_transform=lambda x, g: x, eval_transform=lambda x: x,
        dist=Dist())
    curve = classifier_curve([tmp_path], monitor="val_loss", mode="min", planned_epochs=2)
    assert [p.seen for p in curve.points] == [8, 16]    # 2 full batches of 4; 2 left over
    assert curve.last_epochs == (2,) and curve.stopped_early == ()


def _part(root, key, curve: LearningCurve | None):
    sha = save_weights({"w": torch.ones(2)}, root / f"{key}.safetensors")
    manifest = {"name": key, "version": "0.1", "card": {},
                "models": {key: {"kind": "classifier", "arch": "toy", "head": "binary",
                                 "weights": f"{key}.safetensors", "sha256": sha,
                                 "labels": ["a", "b"], "input": {"size": 8}}},
                "metrics": {"test": {"auroc": 0.5}}}
    save_pack(root, with_curves(manifest, {key: curve}))
    return root


def test_compose_carries_each_parts_curve(tmp_path):
    curve = classifier_curve(_folds(tmp_path), monitor="auroc", mode="max", planned_epochs=4)
    parts = {"triage": _part(tmp_path / "t", "densenet", curve),
             "grades": _part(tmp_path / "g", "grader", None)}
    recipe = PackRecipe(name="demo", parts={}, card={"version": "2.0"},
                        source=tmp_path / "demo.yaml")
    pack = load_pack(merge_packs(parts, tmp_path / "pack", recipe))
    stored = pack.manifest.card["learning_curves"]
    assert list(stored) == ["densenet"]
    assert LearningCurve.from_dict(stored["densenet"]) == curve
    card = (tmp_path / "pack" / "README.md").read_text()
    assert "### `densenet`" in card and "**best** in 1/2 runs" in card
    assert "Not recorded (no training log in the pack) for: `grader`." in card


def test_evaluate_draws_the_pack_curves(tmp_path):
    from spinexr.cli.evaluate_report import draw_all
    from spinexr.evaluate.plots import plot_learning_curves

    curve = classifier_curve(_folds(tmp_path), monitor="auroc", mode="max", planned_epochs=4)
    plots = draw_all(tmp_path, {}, None, {}, None, curves={"densenet": curve, "b": curve})
    assert plots.files == ["learning_curve.png"] and not plots.notes
    assert (tmp_path / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert draw_all(tmp_path, {}, None, {}, None, curves={}).files == []
    with pytest.raises(ConfigError, match="no learning curve to draw"):
        plot_learning_curves({}, tmp_path / "x.png")
