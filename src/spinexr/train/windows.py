"""Training data for window triage and window grading (``model.windows`` in a classify recipe).

Each training image is read once through the inference reader, the packed vertebra detector
finds its bodies exactly as at inference (:class:`~spinexr.models.spine_crops.WindowTriage`,
:class:`~spinexr.models.spine_crops.WindowGrader`), and every window becomes one training crop
labelled by the image's lesion boxes: triage windows are 1 when they hold a lesion; grading
windows get the image's grade when they hold a lesion of the classes that grade is made of
(``lesions``), else 0. Folds stay
image- (and patient-) level: all windows of an image are in the same fold, and the
out-of-fold window logits are max-pooled back to one logit per image before anything is fitted,
so ensemble weights, temperatures and thresholds are image-level.

Training folds keep every abnormal window and ``negatives`` random normal windows per image
(normal windows outnumber abnormal ones ~10:1 and are very alike); validation folds keep every
window, since the pooled OOF logit needs them all.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from spinexr.errors import ConfigError
from spinexr.geometry import vertebra_chain
from spinexr.io import read_radiograph
from spinexr.labels import LESION_CLASSES
from spinexr.models.classifier import Preprocess, resize_to_input
from spinexr.models.spine_crops import (CropSpec, pool_logits, vertebra_windows, window_pixels,
                                        window_targets)
from spinexr.models.pack import load_pack, save_pack
from spinexr.train.config import recipe_path
from spinexr.train.images import ArrayData, to_uint16
from spinexr.train.oof import OutOfFold
from spinexr.types import Box, Sample


@dataclass(frozen=True)
class WindowRecipe:
    """``model.windows``: where the vertebra detector is and how windows are made."""

    pack: Path
    spec: CropSpec
    negatives: int = 4
    #: grade index -> lesion classes whose windows carry that grade (None: any lesion box);
    #: an empty mapping labels windows 0/1 by any lesion box (triage)
    lesions: Mapping[int, frozenset[str] | None] = field(default_factory=dict)

    def window_targets(self, windows: Sequence[Box], boxes: Sequence[Box],
                       image_target: int) -> np.ndarray:
        """Training targets of one image's windows from its lesion boxes and its target."""
        if not self.lesions:
            return window_targets(windows, boxes, self.spec.min_cover)
        if image_target not in self.lesions:
            return np.zeros(len(windows), dtype=np.int64)
        return window_targets(windows, boxes, self.spec.min_cover, value=image_target,
                              kinds=self.lesions[image_target])


def parse_lesions(raw, labels: Sequence[str], where: str) -> dict[int, frozenset[str] | None]:
    """``lesions`` of ``model.windows``: a list of lesion classes (every grade above the first
    label) or ``{grade label: [lesion classes]}``; ``[]`` / ``None`` in a list means any."""
    if raw is None:
        return {}
    if isinstance(raw, (list, tuple)):
        raw = {name: list(raw) for name in labels[1:]}
    if not isinstance(raw, Mapping):
        raise ConfigError("lesions must be a list of lesion classes or a mapping grade -> "
                          "list", where)
    out: dict[int, frozenset[str] | None] = {}
    for name, kinds in raw.items():
        if name not in labels[1:]:
            raise ConfigError(f"lesions: {name!r} is not one of the abnormal labels "
                              f"{list(labels[1:])}", where)
        kinds = list(kinds or [])
        unknown = sorted(set(kinds) - set(LESION_CLASSES))
        if unknown:
            raise ConfigError(f"lesions: unknown lesion classes {unknown}; known: "
                              f"{list(LESION_CLASSES)}", where)
        out[list(labels).index(name)] = frozenset(kinds) or None
    return out


def parse_windows(raw: Mapping[str, Any] | None, recipe_file: Path,
                  out: Path | None = None, labels: Sequence[str] = ()) -> WindowRecipe | None:
    """``{pack: PATH | part:NAME, negatives: 4, lesions: ..., <CropSpec fields>}``;
    ``part:NAME`` is the pack of a sibling part of a pack recipe (``<out>/../NAME/pack``), other
    paths are relative to the recipe file; ``lesions`` (graders, see :func:`parse_lesions`)
    needs the recipe's ``labels``."""
    if not raw:
        return None
    raw = dict(raw)
    where = f"{recipe_file}: model.windows"
    if "pack" not in raw:
        raise ConfigError("model.windows needs 'pack': the vertebra detector's pack", where)
    ref = str(raw.pop("pack"))
    negatives = int(raw.pop("negatives", 4))
    lesions = parse_lesions(raw.pop("lesions", None), labels, where)
    if ref.startswith("part:"):
        if out is None:
            raise ConfigError(f"{ref!r} names a part of a pack recipe; train through the pack "
                              "recipe or give a path", where)
        pack = Path(out).parent / ref[5:] / "pack"
    else:
        pack = recipe_path(recipe_file, ref)
    try:
        spec = CropSpec.from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(exc.reason, where) from exc
    if negatives < 0:
        raise ConfigError(f"negatives is {negatives}; give 0 or more", where)
    return WindowRecipe(pack=pack, spec=spec, negatives=negatives, lesions=lesions)


@dataclass(frozen=True)
class WindowSet:
    """Every window of every training image, at one preprocessing."""

    data: ArrayData              # one row per window; groups = the image's patient group
    owner: np.ndarray            # (M,) index of each window's image in the sample list
    windows: tuple[tuple[Box, ...], ...]   # per image


def read_windows(samples: Sequence[Sample], detector, spec: CropSpec, *, batch: int = 8,
                 progress: bool = True):
    """Read each image once and find its windows; yields (index, pixels, windows)."""
    from tqdm import tqdm

    bar = tqdm(total=len(samples), desc="windows", unit="img", file=sys.stderr,
               disable=None if progress else True, leave=False)
    for start in range(0, len(samples), batch):
        chunk = samples[start:start + batch]
        pixels = [read_radiograph(s.image_path).pixels for s in chunk]
        found = detector.predict(pixels, conf=spec.conf)
        for j, (px, boxes) in enumerate(zip(pixels, found)):
            yield start + j, px, vertebra_windows(vertebra_chain(boxes), px.shape[1],
                                                  px.shape[0], spec)
        bar.update(len(chunk))
    bar.close()


def load_windows(samples: Sequence[Sample], pres: Sequence[Preprocess], detector,
                 recipe: WindowRecipe, image_targets: Sequence[int], *,
                 progress: bool = True) -> dict[Preprocess, WindowSet]:
    """Window crops of every sample at each preprocessing (images are read once), labelled by
    :meth:`WindowRecipe.window_targets` from each image's target and lesion boxes."""
    spec = recipe.spec
    rows: dict[Preprocess, list[np.ndarray]] = {p: [] for p in pres}
    targets, ids, groups, owner, wins = [], [], [], [], []
    for i, px, windows in read_windows(samples, detector, spec, progress=progress):
        s = samples[i]
        wins.append(tuple(windows))
        targets += recipe.window_targets(windows, s.boxes, int(image_targets[i])).tolist()
        ids += [f"{s.image_id}#{k}" for k in range(len(windows))]
        groups += [str(s.group)] * len(windows)
        owner += [i] * len(windows)
        for pre in pres:
            rows[pre] += [to_uint16(resize_to_input(window_pixels(px, w, spec), pre))
                          for w in windows]
    if not targets:
        raise ConfigError("the vertebra detector found no windows in any training image",
                          "model.windows.pack")
    out = {}
    for pre in pres:
        data = ArrayData(pixels=np.stack(rows[pre]), targets=np.asarray(targets, np.int64),
                         ids=tuple(ids), groups=tuple(groups))
        out[pre] = WindowSet(data, np.asarray(owner, np.int64), tuple(wins))
    return out


def window_folds(image_folds: Sequence[tuple[np.ndarray, np.ndarray]], owner: np.ndarray,
                 targets: np.ndarray, negatives: int, seed: int
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Image folds -> window folds: training keeps abnormal windows and ``negatives`` normal
    windows per image (drawn with ``seed``), validation keeps every window of its images."""
    out = []
    for f, (tr, va) in enumerate(image_folds):
        out.append((train_windows(np.isin(owner, tr), owner, targets, negatives, seed + f),
                    np.flatnonzero(np.isin(owner, va))))
    return out


def train_windows(mask: np.ndarray, owner: np.ndarray, targets: np.ndarray, negatives: int,
                  seed: int) -> np.ndarray:
    """Indices of the training windows among ``mask``: every abnormal one (target > 0),
    ``negatives`` normal windows per image."""
    rng = np.random.default_rng(seed)
    keep = []
    for img in np.unique(owner[mask]):
        idx = np.flatnonzero(mask & (owner == img))
        pos, neg = idx[targets[idx] > 0], idx[targets[idx] == 0]
        keep += pos.tolist()
        if len(neg):
            keep += rng.choice(neg, size=min(negatives, len(neg)), replace=False).tolist()
    return np.asarray(sorted(keep), dtype=np.int64)


def pooled_oof(window_oof, owner: np.ndarray, image_targets: np.ndarray,
               image_folds: Sequence[tuple[np.ndarray, np.ndarray]], aggregate: str,
               head: str | None = None):
    """Image-level OOF from window-level OOF (each image keeps its most abnormal window;
    images without windows get :data:`~spinexr.models.spine_crops.NO_WINDOW_LOGIT`)."""
    n = len(image_targets)
    fold_of = np.full(n, -1, dtype=np.int64)
    for f, (_, va) in enumerate(image_folds):
        fold_of[va] = f
    logits = pool_logits(window_oof.logits, owner, n, aggregate, head)
    return OutOfFold(logits, np.asarray(image_targets, np.int64), fold_of,
                     window_oof.best_epochs, window_oof.fold_metrics)


def add_window_detector(pack_dir: Path, manifest: dict, windows: WindowRecipe,
                        keys: Sequence[str] | None = None) -> dict:
    """Copy the vertebra detector into the pack and describe the windows: on the models named
    by ``keys``, else in the triage ensemble, or in each classifier's spec (graders)."""
    import shutil

    source = load_pack(windows.pack)
    key = windows.spec.detector
    spec = dict(source.model_spec(key).raw)
    shutil.copyfile(source.root / spec["weights"], pack_dir / spec["weights"])
    manifest["models"][key] = spec
    if keys is not None:
        for name in keys:
            manifest["models"][name]["windows"] = windows.spec.to_dict()
    elif "ensemble" in manifest:
        manifest["ensemble"]["windows"] = windows.spec.to_dict()
    else:
        for model in manifest["models"].values():
            if model.get("kind") == "classifier":
                model["windows"] = windows.spec.to_dict()
    save_pack(pack_dir, manifest)
    return manifest
