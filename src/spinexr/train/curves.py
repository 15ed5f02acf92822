"""Learning curves read from what training runs log, for a pack's card.

- Classifiers (:mod:`spinexr.train.engine`): ``<run_dir>/metrics.csv``, one row per epoch
  (0-based ``epoch``, ``lr``, ``train_loss``, ``train_samples``, ``val_loss`` and the head's
  validation metrics). The k fold runs of one model make one curve, their mean per epoch.
- Detectors (ultralytics): ``<out>/yolo/results.csv`` (1-based ``epoch``, ``train/*_loss``,
  ``metrics/mAP50(B)``, ``metrics/mAP50-95(B)``, ``val/*_loss``...). Best epoch = highest
  validation mAP50-95, ultralytics' fitness, the first one on a tie.

A run with no CSV has no curve: the readers return ``None`` and the card says "not recorded".
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from spinexr.errors import ConfigError
from spinexr.evaluate.curves import LearningCurve, RunRow, curve_from_runs

#: metrics.csv columns that are not validation metrics.
_ENGINE_TRAIN_COLUMNS = ("epoch", "lr", "train_loss", "train_samples")
#: results.csv column -> the name in a curve (as in the pack's detector metrics).
_YOLO_METRICS = {"metrics/mAP50(B)": "map50", "metrics/mAP50-95(B)": "map50_95",
                 "metrics/precision(B)": "precision", "metrics/recall(B)": "recall"}
_IMAGE_SUFFIXES = {".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp",
                   ".pfm", ".heic", ".avif", ".jp2"}
__all__ = ["classifier_curve", "detector_curve", "with_curves", "yolo_train_images"]


def _read_rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as fh:
            return [{k.strip(): (v or "").strip() for k, v in row.items() if k}
                    for row in csv.DictReader(fh)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"cannot read the training log: {exc}", str(path)) from exc


def _float(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _engine_rows(rows: Sequence[Mapping[str, str]], train_size: int | None) -> list[RunRow]:
    out: list[RunRow] = []
    seen: int | None = 0
    for row in rows:
        drawn = _float(row.get("train_samples"))
        if drawn is None and train_size:                # a log from before train_samples
            drawn = float(train_size)
        seen = None if seen is None or drawn is None else seen + int(drawn)
        val = {k: v for k, v in ((k, _float(t)) for k, t in row.items()
                                 if k not in _ENGINE_TRAIN_COLUMNS) if v is not None}
        out.append(RunRow(epoch=int(float(row["epoch"])) + 1,   # the engine counts from 0
                          train_loss=_float(row.get("train_loss")), val=val, seen=seen))
    return out


def classifier_curve(run_dirs: Sequence[Path], *, monitor: str, mode: str,
                     unit: str = "images", planned_epochs: int | None = None,
                     train_size: int | None = None) -> LearningCurve | None:
    """The curve of one classifier from the ``metrics.csv`` of its fold runs (their mean).

    Args:
        run_dirs: the fold run folders; those without a ``metrics.csv`` are skipped.
        monitor, mode: the metric the engine selected the best epoch on (``train.monitor``).
        unit: ``images``, or ``windows`` for a model trained on vertebra windows.
        planned_epochs: the schedule's length (``train.epochs``), to mark early stops.
        train_size: for logs without a ``train_samples`` column: samples per epoch.

    Returns:
        ``None`` when no run folder holds a ``metrics.csv``.
    """
    found = [Path(d) / "metrics.csv" for d in run_dirs if (Path(d) / "metrics.csv").is_file()]
    if not found:
        return None
    runs = [_engine_rows(_read_rows(p), train_size) for p in found]
    source = (f"metrics.csv of {len(found)} runs ({', '.join(p.parent.name for p in found)}), "
              "mean per epoch" if len(found) > 1 else f"{found[0].parent.name}/metrics.csv")
    return curve_from_runs(runs, monitor=monitor, mode=mode, unit=unit,
                           planned_epochs=planned_epochs, source=source)


def _sum(row: Mapping[str, str], prefix: str) -> float | None:
    parts = [_float(v) for k, v in row.items() if k.startswith(prefix) and k.endswith("_loss")]
    return sum(p for p in parts if p is not None) if any(p is not None for p in parts) else None


def detector_curve(results_csv: Path, *, train_images: int | None,
                   planned_epochs: int | None = None, unit: str = "images"
                   ) -> LearningCurve | None:
    """The curve of an ultralytics detector from its ``results.csv``.

    Train loss = box + cls + dfl training losses, ``val_loss`` the same on validation;
    ``seen`` = epoch x ``train_images`` (``unit``: ``windows`` for a detector trained on
    vertebra windows). A resumed run's repeated epoch keeps its last row.

    Returns:
        ``None`` when ``results_csv`` does not exist.
    """
    path = Path(results_csv)
    if not path.is_file():
        return None
    by_epoch: dict[int, RunRow] = {}
    for row in _read_rows(path):
        epoch = int(float(row["epoch"]))
        val = {name: _float(row.get(col)) for col, name in _YOLO_METRICS.items()}
        val["val_loss"] = _sum(row, "val/")
        by_epoch[epoch] = RunRow(epoch=epoch, train_loss=_sum(row, "train/"),
                                 val={k: v for k, v in val.items() if v is not None},
                                 seen=epoch * train_images if train_images else None)
    if not by_epoch:
        return None
    return curve_from_runs([list(by_epoch.values())], monitor="map50_95", mode="max",
                           unit=unit, planned_epochs=planned_epochs, tie_loss=None,
                           source=f"{path.parent.name}/{path.name} (ultralytics)")


def yolo_train_images(data_yaml: Path, fraction: float = 1.0) -> int:
    """How many images ultralytics trains on per epoch: the image files of the ``train``
    folder(s) a data.yaml names, times ``fraction`` (rounded as ultralytics does, at least 1)."""
    import yaml

    doc = yaml.safe_load(Path(data_yaml).read_text())
    base = Path(doc.get("path") or Path(data_yaml).parent)
    folders = doc["train"] if isinstance(doc["train"], list) else [doc["train"]]
    n = sum(1 for f in folders for p in (base / f).rglob("*")
            if p.suffix.lower() in _IMAGE_SUFFIXES)
    return n if fraction >= 1 else max(1, round(n * fraction))


def with_curves(manifest: Mapping[str, Any],
                curves: Mapping[str, LearningCurve | None]) -> dict[str, Any]:
    """A copy of ``manifest`` whose ``card.learning_curves`` holds ``curves`` (model key ->
    curve; ``None`` entries, models without a log, are left out)."""
    card = dict(manifest.get("card") or {})
    stored = dict(card.get("learning_curves") or {})
    stored.update({k: c.to_dict() for k, c in curves.items() if c is not None})
    card["learning_curves"] = stored
    return {**manifest, "card": card}
