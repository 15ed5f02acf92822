"""Train a YOLO11 detector (lesions or vertebrae) from any spinexr dataset layout.

Steps: read the dataset through :mod:`spinexr.data`; export it in ultralytics' layout under
``<out>/yolo-data`` (raster images are linked, DICOMs rendered once to 16-bit-derived 8-bit PNG
since ultralytics' loader is 8-bit); train with ultralytics (offline, seeded, no vertical flips,
model selection on the ``val`` split only); convert the best EMA weights to a safetensors pack;
evaluate the pack with our own inference path and pycocotools on ``val`` and ``test``.
"""
from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Mapping, Sequence

from spinexr.data import load_dataset
from spinexr.errors import ConfigError
from spinexr.evaluate import coco_map
from spinexr.io import read_radiograph, save_png
from spinexr.labels import VERTEBRA_CLASS
from spinexr.models.pack import load_pack, save_pack, save_weights
from spinexr.models.yolo import import_ultralytics, state_dict_from_checkpoint
from spinexr.types import Sample
from spinexr.train.config import TrainConfig, hold_out, recipe_path, relative_to_cwd
from spinexr.train.copy_paste import cut_patch, paste, rare_classes
from spinexr.train.curves import detector_curve, with_curves, yolo_train_images
from spinexr.train.vertebra_set import build_joint_set
from spinexr.train.window_detect import export_window_yolo
from spinexr.train.windows import WindowRecipe, add_window_detector, parse_windows
from spinexr.train.yolo_labels import mapped, yolo_line

log = logging.getLogger("spinexr.train")

#: ultralytics augmentation keys we allow a recipe to set; vertical flips stay off (radiographs
#: have a head end) and colour jitter stays off (grayscale).
AUGMENT_KEYS = ("fliplr", "degrees", "translate", "scale", "shear", "perspective", "mosaic",
                "mixup", "hsv_v", "close_mosaic", "erasing")
_RASTER = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


def _place_image(sample: Sample, target: Path) -> tuple[int, int]:
    """Link a raster image or render a DICOM to PNG at ``target``; returns (width, height)."""
    from PIL import Image

    if sample.image_path.suffix.lower() in _RASTER:
        target = target.parent / (target.name + sample.image_path.suffix.lower())
        if not target.exists():
            os.symlink(sample.image_path.resolve(), target)
        if sample.width and sample.height:
            return sample.width, sample.height
        with Image.open(sample.image_path) as im:
            return im.size
    image = read_radiograph(sample.image_path)
    save_png(image.pixels, target.parent / (target.name + ".png"))
    return image.width, image.height


def copy_paste_samples(samples: Sequence[Sample], out: Path, *, n_images: int,
                       patches_per_image: int = 2, ratio: float = 0.25, seed: int = 0
                       ) -> list[Sample]:
    """Make ``n_images`` extra training images with rare-class lesions pasted in (PNG in ``out``).

    Rare = fewer boxes than ``ratio`` x the most frequent class (see
    :func:`spinexr.train.copy_paste.rare_classes`). Backgrounds and donors are training images
    only, so nothing from validation or test leaks in.
    """
    from collections import Counter

    import numpy as np

    rare = rare_classes(dict(Counter(b.label for s in samples for b in s.boxes)), ratio)
    donors = [(s, b) for s in samples for b in s.boxes if b.label in rare]
    if not donors or n_images <= 0:
        return []
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(n_images):
        base = samples[int(rng.integers(len(samples)))]
        picks = [donors[int(j)] for j in rng.integers(len(donors), size=patches_per_image)]
        patches = [cut_patch(read_radiograph(s.image_path).pixels, b) for s, b in picks]
        pixels, boxes = paste(read_radiograph(base.image_path).pixels, base.boxes, patches, rng)
        path = out / f"copy-paste-{i:05d}.png"
        save_png(pixels, path)
        made.append(Sample(image_id=path.stem, image_path=path, group=base.group, boxes=boxes,
                           label=1, width=pixels.shape[1], height=pixels.shape[0]))
    return made


def export_yolo(splits: Mapping[str, Sequence[Sample]], names: Sequence[str],
                class_map: Mapping[str, str], out: Path) -> Path:
    """Write an ultralytics dataset (images linked, labels as txt) and return its data.yaml."""
    import yaml

    index = {name: i for i, name in enumerate(names)}
    for split, samples in splits.items():
        (out / split / "images").mkdir(parents=True, exist_ok=True)
        (out / split / "labels").mkdir(parents=True, exist_ok=True)
        for s in samples:
            w, h = _place_image(s, out / split / "images" / s.image_id)
            lines = [yolo_line(b, index[mapped(b.label, class_map)], w, h) for b in s.boxes]
            (out / split / "labels" / f"{s.image_id}.txt").write_text("\n".join(lines) + "\n"
                                                                       if lines else "")
    data_yaml = out / "data.yaml"
    doc = {"path": str(out.resolve()), "names": dict(enumerate(names)),
           **{k: f"{k}/images" for k in splits}}
    data_yaml.write_text(yaml.safe_dump(doc, sort_keys=True))
    return data_yaml


def _device(requested: str | None) -> str:
    import torch

    if requested in (None, "auto"):
        return "0" if torch.cuda.is_available() else "cpu"
    return str(requested)


def _train_args(cfg: TrainConfig, data_yaml: Path, out: Path) -> dict:
    t, m = cfg.train, cfg.model
    unknown = set(t.get("augment", {})) - set(AUGMENT_KEYS)
    if unknown:
        raise ConfigError(f"train.augment keys {sorted(unknown)} not allowed; use {AUGMENT_KEYS}",
                          str(cfg.source))
    device = _device(t.get("device"))
    return dict(data=str(data_yaml), epochs=int(t.get("epochs", 100)), imgsz=int(m["imgsz"]),
                batch=int(t.get("batch", 16)), patience=int(t.get("patience", 30)),
                seed=int(t.get("seed", 0)), deterministic=True, workers=int(t.get("workers", 2)),
                device=device, amp=device != "cpu", pretrained=False, plots=True,
                lr0=float(t.get("lr0", 0.01)), optimizer=str(t.get("optimizer", "auto")),
                cos_lr=bool(t.get("cos_lr", False)), fraction=float(t.get("fraction", 1.0)),
                warmup_epochs=float(t.get("warmup_epochs", 3.0)),
                warmup_bias_lr=float(t.get("warmup_bias_lr", 0.1)),
                project=str(out.resolve()), name="yolo",
                exist_ok=True, verbose=False, flipud=0.0, hsv_h=0.0, hsv_s=0.0,
                **{k: v for k, v in t.get("augment", {}).items()})


def names_of(cfg: TrainConfig, classes: Sequence[str]) -> list[str]:
    """Class names after the recipe's class_map, in the dataset's order, without duplicates."""
    return list(dict.fromkeys(mapped(c, cfg.data.class_map) for c in classes))


def _load_splits(cfg: TrainConfig) -> tuple[dict[str, tuple[Sample, ...]], tuple[str, ...]]:
    splits, classes = {}, ()
    for role, split in cfg.data.splits.items():
        loaded = load_dataset(cfg.data.root, cfg.data.format, split=split)
        splits[role] = loaded.samples
        classes = classes or loaded.classes
    splits = hold_out(splits, cfg.data.holdout)   # data.splits.val: {holdout: ...}
    if cfg.data.boxes == "vertebrae":
        return vertebra_targets(splits, cfg.source), (VERTEBRA_CLASS,)
    return splits, classes


def vertebra_targets(splits: Mapping[str, Sequence[Sample]], where: Path,
                     asked_by: str = "data.boxes is 'vertebrae'"
                     ) -> dict[str, tuple[Sample, ...]]:
    """Samples whose boxes are their vertebral bodies (``data.boxes: vertebrae``, or
    ``spinexr evaluate --boxes vertebrae``: ``asked_by`` names the setting in the error)."""
    from dataclasses import replace

    if not any(s.vertebrae for samples in splits.values() for s in samples):
        raise ConfigError(f"{asked_by} but no sample has vertebra boxes (the coco layout keeps "
                          "them; yolo and vindr do not)", str(where))
    return {role: tuple(replace(s, boxes=tuple(replace(b, label=VERTEBRA_CLASS)
                                               for b in s.vertebrae)) for s in samples)
            for role, samples in splits.items()}


def evaluate_detector(detector, samples: Sequence[Sample], class_map: Mapping[str, str],
                      *, conf: float = 0.001, batch: int = 8) -> dict:
    """COCO mAP of ``detector`` on ``samples`` through the shared inference path."""
    from dataclasses import replace

    from tqdm import tqdm

    truth, preds, sizes = [], [], []
    for start in tqdm(range(0, len(samples), batch), desc="evaluate", unit="batch",
                      file=sys.stderr, disable=None):
        chunk = samples[start:start + batch]
        images = [read_radiograph(s.image_path) for s in chunk]
        preds += detector.predict([im.pixels for im in images], conf=conf, max_det=300)
        truth += [[replace(b, label=mapped(b.label, class_map)) for b in s.boxes] for s in chunk]
        sizes += [(im.width, im.height) for im in images]
    return coco_map(truth, preds, sizes, detector.names)


def train_detector(cfg: TrainConfig, out: Path, *, resume: bool = False) -> Path:
    """Train, pack and evaluate; returns the pack directory ``<out>/pack``."""
    splits, classes = _load_splits(cfg)
    names = names_of(cfg, classes)
    train_splits = {k: v for k, v in splits.items() if k in ("train", "val")}
    cp = dict(cfg.train.get("copy_paste") or {})
    if cp.get("images", 0):
        extra = copy_paste_samples(train_splits["train"], out / "copy-paste",
                                   n_images=int(cp["images"]),
                                   patches_per_image=int(cp.get("per_image", 2)),
                                   ratio=float(cp.get("ratio", 0.25)),
                                   seed=int(cfg.train.get("seed", 0)))
        train_splits["train"] = tuple(train_splits["train"]) + tuple(extra)
    preprocess = cfg.model.get("preprocess")
    windows = parse_windows(cfg.model.get("windows"), cfg.source, out)
    if windows is not None and cfg.data.joint:
        raise ConfigError("model.windows and data.joint do not go together (window lesion "
                          "detection trains on one dataset's lesion boxes)", str(cfg.source))
    if cfg.data.joint:
        data_yaml = build_joint_set(cfg.data.root, cfg.data.splits, cfg.data.joint,
                                    out / "joint-data", preprocess,
                                    resolve=lambda p: recipe_path(cfg.source, p))
    else:
        if preprocess not in (None, "none"):
            raise ConfigError("model.preprocess needs data.joint (the joint set writer applies "
                              "it to every training image)", str(cfg.source))
        data_yaml = (export_yolo(train_splits, names, cfg.data.class_map, out / "yolo-data")
                     if windows is None else
                     _window_data(cfg, train_splits, names, out / "window-data", windows, resume))
    ul = import_ultralytics()
    last = out / "yolo" / "weights" / "last.pt"
    if resume:
        if not last.is_file():
            raise ConfigError("nothing to resume: no checkpoint", str(last))
        if not _finished(last):  # a finished run is only packed and evaluated again
            ul.YOLO(str(last)).train(resume=True)
    else:
        yolo = ul.YOLO(f"{cfg.model['arch']}.yaml", task="detect")
        args = _train_args(cfg, data_yaml, out)
        if cfg.model.get("init"):  # fine-tune: ultralytics copies every tensor whose shape fits
            yolo.load(init_model(cfg, names))
            args["pretrained"] = True
        yolo.train(**args)
    state, _ = state_dict_from_checkpoint(out / "yolo" / "weights" / "best.pt")
    pack_dir = out / "pack"
    key = str(cfg.model.get("key", "detector"))
    weights = f"{key}.safetensors"
    spec = {"kind": "detector", "arch": cfg.model["arch"], "weights": weights, "dtype": "float16",
            "labels": names, "input": _input_contract(cfg, preprocess),
            "thresholds": {"conf": float(cfg.model.get("conf", 0.25)), "iou": 0.6},
            "sha256": save_weights(state, pack_dir / weights, fp16=True)}
    models = {key: spec}
    manifest = _manifest(cfg, models, {})
    save_pack(pack_dir, manifest)
    if windows is not None:   # the vertebra detector joins the pack; the spec names the windows
        models = add_window_detector(pack_dir, manifest, windows, keys=[key])["models"]
    pack = load_pack(pack_dir)
    metrics = {role: evaluate_detector(pack.image_detector(key), splits[role], cfg.data.class_map)
               for role in ("val", "test") if role in splits}
    curve = detector_curve(out / "yolo" / "results.csv", planned_epochs=int(
        cfg.train.get("epochs", 100)), unit="images" if windows is None else "windows",
        train_images=yolo_train_images(data_yaml, float(cfg.train.get("fraction", 1.0))))
    save_pack(pack_dir, with_curves(_manifest(cfg, models, metrics), {key: curve}))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return pack_dir


def _window_data(cfg: TrainConfig, splits: Mapping[str, Sequence[Sample]], names: Sequence[str],
                 out: Path, windows: WindowRecipe, resume: bool) -> Path:
    """The window views' dataset (``model.windows``); a resumed run keeps the one it began
    with (cutting windows runs the vertebra detector over every image)."""
    if resume and (out / "data.yaml").is_file():
        return out / "data.yaml"
    return export_window_yolo(splits, names, cfg.data.class_map, out, windows,
                              imgsz=int(cfg.model["imgsz"]), seed=int(cfg.train.get("seed", 0)))


def _input_contract(cfg: TrainConfig, preprocess: str | None) -> dict:
    """The packed detector's input: ``size`` is the letterbox side used at inference
    (``model.infer_imgsz``, chosen on the validation split; default the training ``imgsz``,
    kept as ``train_size``), plus the contrast step and the tiling of tall films."""
    m = cfg.model
    out = {"size": int(m.get("infer_imgsz", m["imgsz"])), "train_size": int(m["imgsz"]),
           "channels": 3, "range": [0.0, 1.0], "letterbox": True}
    if preprocess:
        out["preprocess"] = preprocess
    if m.get("tile_aspect"):
        out["tile_aspect"] = float(m["tile_aspect"])
    return out


def init_model(cfg: TrainConfig, names: Sequence[str]):
    """The torch detector of ``model.init`` (a pack directory, relative to the recipe, or
    ``{pack: DIR, key: KEY}``), to start training from instead of random weights."""
    raw = cfg.model["init"]
    ref, key = (raw.get("pack"), raw.get("key")) if isinstance(raw, dict) else (raw, None)
    root = recipe_path(cfg.source, ref)
    pack = load_pack(root)
    detectors = [k for k, s in pack.manifest.models.items()
                 if s.kind == "detector" and s.arch == cfg.model["arch"]]
    key = key or (detectors[0] if len(detectors) == 1 else None)
    if key not in detectors:
        raise ConfigError(f"model.init: pack {root} has {len(detectors)} {cfg.model['arch']} "
                          f"detector(s) {detectors}; name one with 'key'", str(cfg.source))
    model = pack.detector(key, engine="torch").model
    log.info("initialising %s from %s/%s (%s -> %s)", cfg.model["arch"], root, key,
             list(model.names.values()), list(names))
    return model


def _finished(checkpoint: Path) -> bool:
    """ultralytics marks a checkpoint of a completed run with epoch -1 (optimizer stripped)."""
    import torch

    return torch.load(checkpoint, map_location="cpu", weights_only=False).get("epoch") == -1


def _manifest(cfg: TrainConfig, models: dict, metrics: dict) -> dict:
    card = dict(cfg.card)
    card.setdefault("command", "spinexr train " + shlex.quote(relative_to_cwd(cfg.source)))
    summary = {role: {k: v for k, v in m.items() if k != "per_class"} for role, m in metrics.items()}
    return {"name": cfg.name, "version": str(cfg.card.get("version", "1.0.0")),
            "synthetic": bool(cfg.card.get("synthetic", False)), "card": card, "models": models,
            "metrics": summary,
            "per_class": {role: m.get("per_class", {}) for role, m in metrics.items()},
            "test_set": {"format": cfg.data.format, "split": cfg.data.splits.get("test"),
                         "root": relative_to_cwd(cfg.data.root),
                         "class_map": dict(cfg.data.class_map)}}

