"""The input gate at inference: image checks, header evidence, the vertebra detector and the
spine classifier, batched; one :class:`GateVerdict` per image.

Which models judge: the first pack (the vertebra pack, then the main pack) whose manifest has
a fitted ``gate`` (:class:`~spinexr.gate.decision.GateModel`) gives the detector and the
classifier. Without one, a vertebra detector trained on real films (a pack not marked
``synthetic``) judges by the column rule of :class:`GateSettings`. A detector trained on
phantoms only never judges real input: the gate then analyses with a warning ("uncertain").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from spinexr.gate.decision import GateModel, decide
from spinexr.gate.evidence import chain_evidence, features
from spinexr.gate.header import header_evidence
from spinexr.io.contrast import apply_preprocess
from spinexr.levels import assign_levels, counted_naming, guess_region
from spinexr.types import Box, GateResult, LevelNaming, Radiograph


@dataclass(frozen=True)
class GateSettings:
    """Image checks and the column rule of packs without a fitted gate."""

    min_vertebrae: int = 5
    conf: float = 0.25
    min_strong: int = 3
    strong_conf: float = 0.5
    min_side: int = 64
    min_std: float = 0.02
    min_gray_levels: int = 64
    default_region: str = "lumbar"


@dataclass(frozen=True)
class GateVerdict:
    """The gate's result for one image, the named vertebrae of its column and how they were
    named (``levels`` is ``None`` when nothing was named)."""

    result: GateResult
    vertebrae: tuple[Box, ...] = ()
    levels: LevelNaming | None = None


def image_checks(pixels: np.ndarray, s: GateSettings) -> tuple[bool, str, dict]:
    """Usable-image checks on the normalized pixels; (ok, reason, measured values)."""
    h, w = pixels.shape
    sample = pixels[:: max(1, h // 512), :: max(1, w // 512)]
    std = float(sample.std())
    saturated = float(np.mean((sample <= 0.001) | (sample >= 0.999)))
    hist = np.bincount(np.clip((sample * 255).astype(np.int64), 0, 255).ravel(), minlength=256)
    levels = int((hist > 1e-4 * sample.size).sum())
    checks = {"width": w, "height": h, "std": round(std, 4), "saturated": round(saturated, 4),
              "gray_levels": levels}
    if min(h, w) < s.min_side:
        return False, f"unusable image: {w}x{h} px is below {s.min_side} px", checks
    if std < s.min_std:
        return False, f"unusable image: almost no contrast (std {std:.3f})", checks
    if saturated > 0.9:
        return False, f"unusable image: {saturated:.0%} of pixels are black or white", checks
    if levels < s.min_gray_levels:
        return False, (f"not a radiograph: only {levels} grey levels in use, as in a graphic "
                       "or test pattern"), checks
    return True, "", checks


def _vertebra_detector(pack) -> str | None:
    spec = pack.manifest.first("vertebra_detector")
    return spec.key if spec else None


class InputGate:
    """Judge images: build once from packs (:meth:`from_packs`), call :meth:`judge` per batch.

    Attributes:
        detector_ref: (pack, key) of the vertebra detector the gate runs, or ``None``.
        model: the fitted :class:`GateModel`, or ``None`` (column rule or no judgement).
    """

    def __init__(self, settings: GateSettings, *, detector=None, detector_ref=None,
                 classifier=None, model: GateModel | None = None, verified: bool = True):
        self.settings, self.detector, self.detector_ref = settings, detector, detector_ref
        self.classifier, self.model, self.verified = classifier, model, verified

    @classmethod
    def from_packs(cls, packs: Sequence[Any], settings: GateSettings, device: str = "cpu"
                   ) -> InputGate:
        """The gate of the first pack with a fitted ``gate``; else the first real-trained
        vertebra detector; else the first detector, kept only to name levels (unverified)."""
        packs = [p for p in packs if p is not None]
        for pack in packs:
            if pack.manifest.gate:
                model = GateModel.from_dict(pack.manifest.gate)
                return cls(settings, detector=pack.detector(model.detector, device=device),
                           detector_ref=(pack, model.detector), model=model,
                           classifier=pack.classifier(model.classifier, device=device))
        found = [(p, _vertebra_detector(p)) for p in packs]
        found = [(p, k) for p, k in found if k]
        real = [(p, k) for p, k in found if not p.synthetic]
        if real or found:
            pack, key = (real or found)[0]
            return cls(settings, detector=pack.detector(key, device=device),
                       detector_ref=(pack, key), verified=bool(real))
        return cls(settings, verified=False)

    @property
    def detector_conf(self) -> float:
        """The confidence the vertebra detector runs at: the fitted gate's, else the settings'."""
        return self.model.conf if self.model else self.settings.conf

    def judge(self, images: Sequence[Radiograph], *, region: str | None = None
              ) -> list[GateVerdict]:
        """One verdict per image; the detector and classifier run once on the batch of images
        that passed the image checks. ``region``: the spine region of images whose header
        names none (levels are counted from its anchor)."""
        checked = [image_checks(im.pixels, self.settings) for im in images]
        todo = [i for i, (ok, _, _) in enumerate(checked) if ok]
        pixels, done = self._shared_contrast([images[i].pixels for i in todo])
        conf = self.detector_conf
        boxes = (self.detector.predict(pixels, conf=conf, contrast_applied=done)
                 if self.detector is not None and todo else [None] * len(todo))
        logits = (self.classifier.predict_logits(pixels, contrast_applied=done)[:, 0]
                  if self.classifier is not None and todo else [None] * len(todo))
        found = {i: (b, z) for i, b, z in zip(todo, boxes, logits)}
        return [self._one(im, checked[i], *found.get(i, (None, None)), region=region)
                for i, im in enumerate(images)]

    def _shared_contrast(self, pixels: list[np.ndarray]) -> tuple[list[np.ndarray], bool]:
        """``(images, applied)``: when the detector's and the classifier's input contracts start
        with the same contrast step (the committed gate: ``"equalize"`` both), that step
        applied here once per image (``applied`` True), so that the two models do not compute
        it twice; else ``pixels`` unchanged and False (each model applies its own)."""
        step = getattr(self.detector, "preprocess", None)
        pre = getattr(self.classifier, "pre", None)
        if step is None or getattr(pre, "contrast", None) != step:
            return pixels, False
        return [apply_preprocess(p, step) for p in pixels], True

    def _one(self, image: Radiograph, checked, boxes, logit, *, region: str | None = None
             ) -> GateVerdict:
        ok, reason, checks = checked
        if not ok:
            return GateVerdict(GateResult(False, reason, checks))
        header = header_evidence(image.meta or {})
        checks = {**checks, "header": header.verdict}
        if boxes is None:
            return self._unjudged(image, checks, header)
        strong = self.model.strong_conf if self.model else self.settings.strong_conf
        ev, chain = chain_evidence(boxes, strong)
        checks = {**checks, **ev.as_checks()}
        if self.model is not None:
            p = float(self.model.p_spine(features(float(logit), ev)[None])[0])
            outcome, reason = decide(p, ev, self.model, header)
            checks["classifier_logit"] = round(float(logit), 4)
        else:
            p, (outcome, reason) = None, self._column_rule(ev, header)
        if not self.verified and outcome != "refused":
            outcome = "uncertain"
            reason = ("uncertain input: spine content checked only by a vertebra detector "
                      "trained on synthetic phantoms; " + reason)
        if outcome == "refused":
            return GateVerdict(GateResult(False, reason, checks, p_spine=p))
        return self._named(image, chain, checks, header,
                           GateResult(True, reason, checks, outcome == "uncertain", p), region)

    def _column_rule(self, ev, header) -> tuple[str, str]:
        s = self.settings
        if getattr(header, "modality", "unknown") == "other":
            return "refused", f"not a radiograph: {header.reason}"
        if ev.chain >= s.min_vertebrae and ev.confident >= s.min_strong:
            return "accepted", f"spine radiograph: {ev.chain} vertebral bodies in a column"
        if ev.coned_view or header.verdict == "spine":
            return "uncertain", (f"uncertain input: {ev.chain} vertebral bodies found "
                                 f"({ev.adjacent_pairs} adjacent pairs); analysed anyway: "
                                 "check that this is a spine radiograph")
        return "refused", (f"not a spine radiograph: found a column of {ev.chain} vertebral "
                           f"bodies, {ev.confident} of them confidently (need "
                           f"{s.min_vertebrae} and {s.min_strong})")

    def _unjudged(self, image, checks, header) -> GateVerdict:
        if getattr(header, "modality", "unknown") == "other":
            return GateVerdict(GateResult(False, f"not a radiograph: {header.reason}", checks))
        reason = ("uncertain input: image checks passed, but no vertebra detector is available "
                  "to check the spine content; analysed anyway")
        return GateVerdict(GateResult(True, reason, checks, uncertain=True))

    def _named(self, image, chain, checks, header, result: GateResult,
               given: str | None = None) -> GateVerdict:
        stated = header.region or _legacy_region(image.meta or {}) or given
        region = guess_region(len(chain), stated, self.settings.default_region)
        named = assign_levels(chain, region) if chain else ()
        result = GateResult(result.accepted, result.reason, {**checks, "level_region": region},
                            result.uncertain, result.p_spine)
        return GateVerdict(result, named, counted_naming(region) if named else None)


#: BodyPartExamined values the header vocabulary leaves without a region -> level region.
_LEGACY = {"NECK": "cervical"}


def _legacy_region(meta) -> str | None:
    return _LEGACY.get(str(meta.get("body_part_examined") or "").strip().upper())
