"""The MRI stenosis path: axial lumbar MR slices in, one :class:`Analysis` each out.

The radiograph :class:`~spinexr.analyze.Analyzer` runs triage, lesions and levels; an axial
lumbar MR slice gets instead (seed 003, Lu et al., Radiology 2021):

1. **Image checks**: :func:`spinexr.gate.runtime.image_checks` with default settings (size,
   contrast, saturation, grey levels). An unusable slice is refused with the plain reason and
   nothing else is run on it.
2. **Regions**: the pack's ``mri_region_detector`` finds the central canal, the lateral recesses
   and the neural foramina; the ``mri_region_grader`` grades a square crop of each
   (:class:`~spinexr.models.grading.RegionGrader`). Each region label keeps its best-scoring box
   (a slice has one central canal, one left foramen, ...). The result is one
   :class:`~spinexr.types.Grade` per region: ``task="stenosis"``, the grade name and index,
   the class probabilities, and ``box`` = the region (label, detector score, coordinates in
   source pixels). A slice where no region is found is analysed but marked *uncertain*: it is
   probably not an axial lumbar slice at a disc level.
3. **Explanations** on request: per method (``"ig"``, or any of
   :data:`spinexr.explain.METHODS`), ONE whole-image heatmap per slice. Each region's crop is
   explained with :func:`spinexr.explain.explain` (ordinal head: the expected grade), scaled by
   that region's expected grade over the highest grade, and pasted back where the crop was
   taken (the maximum where crops overlap). A slice graded all normal thus gets a dim map; the
   bright spots sit in the regions that drove a worse grade.

No triage, findings, vertebrae or levels: ``Analysis.modality == "mri"`` tells every output.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from spinexr.errors import ConfigError
from spinexr.geometry import scale_box, source_scale
from spinexr.labels import STENOSIS_REGIONS
from spinexr.types import Analysis, Box, GateResult, Grade, Heatmap, PackInfo, Radiograph

#: Roles of the two models (see :data:`spinexr.models.manifest.ROLES`).
DETECTOR_ROLE = "mri_region_detector"
GRADER_ROLE = "mri_region_grader"
#: ``Grade.task`` of every region grade.
STENOSIS_TASK = "stenosis"
#: ``Analysis.modality`` of this path's results.
MODALITY = "mri"
NO_REGION_REASON = ("uncertain input: no stenosis region found on this MR slice; check that it "
                    "is an axial lumbar slice at a disc level")


#: SOP classes of MR images: MR Image Storage (single-frame; the enhanced multi-frame
#: classes are refused by the reader).
MR_SOP_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.4"})


def is_mri(image: Radiograph) -> bool:
    """Whether ``image`` goes down this path: its header says (0008,0060) Modality ``MR`` or
    its SOP class is MR Image Storage. Raster files (no header) and CR/DX/RG go to the
    radiograph analyzer. Read such files with a policy that admits MR (e.g. ``MRI_POLICY``,
    or one allowing CR, DX, RG, DR and MR) first."""
    modality = str((image.meta or {}).get("modality") or "").strip().upper()
    return modality == "MR" or image.source.sop_class_uid in MR_SOP_CLASSES


class MriUnavailableError(ConfigError):
    """The model pack cannot grade MR slices: it lacks a region detector or a region grader."""

    code = "mri_unavailable"


class MriPath:
    """Grade stenosis regions on axial lumbar MR slices. Build once (models load once) with
    :meth:`from_pack`, then call :meth:`analyze_batch` per batch.

    Args:
        grader: the detector + crop classifier.
        settings: image-check settings (:class:`~spinexr.gate.runtime.GateSettings`); default
            the gate's defaults.
    """

    def __init__(self, grader, *, settings=None) -> None:
        from spinexr.gate.runtime import GateSettings

        self.grader = grader
        self.settings = settings or GateSettings()

    @staticmethod
    def available(pack) -> bool:
        """Whether ``pack`` holds both MRI models (so :meth:`from_pack` will not raise)."""
        return bool(pack.manifest.first(DETECTOR_ROLE) and pack.manifest.first(GRADER_ROLE))

    @classmethod
    def from_pack(cls, pack, *, device: str = "cpu", settings=None) -> MriPath:
        """The MRI path of a loaded :class:`~spinexr.models.pack.ModelPack`.

        Raises:
            MriUnavailableError: the pack has no ``mri_region_detector`` or no
                ``mri_region_grader`` model.
        """
        from spinexr.models.grading import RegionGrader

        detector, grader = (pack.manifest.first(DETECTOR_ROLE), pack.manifest.first(GRADER_ROLE))
        missing = [r for r, s in ((DETECTOR_ROLE, detector), (GRADER_ROLE, grader)) if s is None]
        if missing:
            raise MriUnavailableError(
                f"model pack {pack.name!r} cannot grade MR slices: it has no "
                f"{' and no '.join(missing)} model; use a pack with the stenosis parts "
                "(e.g. models/demo)", str(getattr(pack, "root", pack.name)))
        return cls(RegionGrader.from_pack(pack, detector.key, grader.key, device=device),
                   settings=settings)

    def analyze_batch(self, images: Sequence[Radiograph], *, explain: tuple[str, ...] = (),
                      info: PackInfo) -> list[Analysis]:
        """Analyse MR slices, running each model once on the batch of usable ones.

        Args:
            images: MR slices (``read_radiograph(..., policy=MRI_POLICY)``), pixels (H, W)
                float32 in [0, 1].
            explain: explanation methods, e.g. ``("ig",)``: one whole-image heatmap each.
            info: the pack's name, version and synthetic flag, as the results carry them.

        Returns:
            One :class:`Analysis` per image, in order, with ``modality == "mri"``; boxes in
            source pixels.
        """
        from spinexr.gate.runtime import image_checks

        t0 = time.perf_counter()
        checked = [image_checks(im.pixels, self.settings) for im in images]
        ok = [i for i, (good, _, _) in enumerate(checked) if good]
        t1 = time.perf_counter()
        graded = self.grader.predict([images[i].pixels for i in ok]) if ok else []
        regions = {i: _best_per_region(g) for i, g in zip(ok, graded)}
        t2 = time.perf_counter()
        heatmaps = {i: [self.heatmap(images[i].pixels, regions[i], m) for m in explain]
                    for i in ok}
        n = max(len(images), 1)
        timings = {"gate": (t1 - t0) / n, "regions": (t2 - t1) / n}
        if explain:
            timings["explain"] = (time.perf_counter() - t2) / n
        return [self._assemble(image, checked[i], regions.get(i), heatmaps.get(i, []), info,
                               timings) for i, image in enumerate(images)]

    def heatmap(self, pixels: np.ndarray, regions: Sequence, method: str) -> Heatmap:
        """One whole-image map of ``method`` over graded ``regions`` (``GradedBox`` list, in
        the coordinates of ``pixels``): float32 (H, W) in [0, 1], see the module docstring."""
        from spinexr.explain import explain
        from spinexr.geometry import crop_bounds

        full = np.zeros(pixels.shape, dtype=np.float32)
        clf = self.grader.classifier
        target = "expected grade"
        top = max(len(clf.labels) - 1, 1)
        for g in regions:
            y0, y1, x0, x1 = crop_bounds(pixels.shape, g.box, self.grader.margin)
            heat = explain(clf, pixels[y0:y1, x0:x1], method)
            target = heat.target
            weight = float(np.dot(np.arange(len(g.probabilities)), g.probabilities)) / top
            np.maximum(full[y0:y1, x0:x1], heat.array * np.float32(weight),
                       out=full[y0:y1, x0:x1])
        return Heatmap(method=method, target=f"{STENOSIS_TASK} {target}",
                       array=np.clip(full, 0.0, 1.0), model=clf.name)

    def _assemble(self, image: Radiograph, checked, regions, heatmaps, info: PackInfo,
                  timings) -> Analysis:

        ok, reason, checks = checked
        sx, sy = source_scale(image)
        spacing = image.spacing_mm and (image.spacing_mm[0] / sy, image.spacing_mm[1] / sx)
        base = dict(image_id=image.image_id, source=image.source,
                    image_size=(round(image.width * sx), round(image.height * sy)),
                    spacing_mm=spacing, pack=info, timings=dict(timings), modality=MODALITY)
        if not ok:
            return Analysis(**base, gate=GateResult(False, _mr_reason(reason), checks))
        checks = {**checks, "regions": len(regions)}
        gate = (GateResult(True, f"axial MR slice: {len(regions)} stenosis region(s) found",
                           checks) if regions
                else GateResult(True, NO_REGION_REASON, checks, uncertain=True))
        grades = tuple(_grade(g, self.grader.classifier.labels, sx, sy) for g in regions)
        return Analysis(**base, gate=gate, grades=grades, heatmaps=tuple(heatmaps))


def _mr_reason(reason: str) -> str:
    """An image-check refusal worded for MR (the checks speak of radiographs)."""
    return reason.replace("not a radiograph:", "not a usable MR image:")


def _best_per_region(graded: Sequence) -> list:
    """The best-scoring graded box of each region label, in :data:`STENOSIS_REGIONS` order
    (labels outside it after, by name)."""
    best: dict[str, object] = {}
    for g in graded:
        if g.box.label not in best or (g.box.score or 0.0) > (best[g.box.label].box.score or 0.0):
            best[g.box.label] = g
    order = {name: i for i, name in enumerate(STENOSIS_REGIONS)}
    return [best[k] for k in sorted(best, key=lambda k: (order.get(k, len(order)), k))]


def _grade(g, labels: Sequence[str], sx: float, sy: float) -> Grade:

    b = g.box
    box = Box(round(float(b.x1), 2), round(float(b.y1), 2), round(float(b.x2), 2),
              round(float(b.y2), 2), str(b.label),
              None if b.score is None else round(float(b.score), 4), b.level)
    return Grade(task=STENOSIS_TASK, label=g.grade_name, index=int(g.grade),
                 probabilities={str(k): float(p) for k, p in zip(labels, g.probabilities)},
                 box=scale_box(box, sx, sy))


__all__ = ["DETECTOR_ROLE", "GRADER_ROLE", "MODALITY", "MR_SOP_CLASSES", "MriPath",
           "MriUnavailableError", "STENOSIS_TASK", "is_mri"]
