"""The one inference path: :class:`Analyzer` turns a :class:`Radiograph` into an :class:`Analysis`.

Used unchanged by the CLI, the web service, the DICOM node and batch jobs. Steps:

1. **Gate**: is this a usable spine radiograph? Image checks (size, dynamic range, saturation),
   then the vertebra detector must find a chain of vertebral bodies stacked along a column.
   A refused image gets a verdict with the reason and nothing else.
2. **Triage**: the pack's ensemble gives per-model and fused P(abnormal) and the decision at
   every operating point.
3. **Lesions**: the lesion detector, gated by triage: ``"dernet"`` detects only when triage is
   abnormal; ``"vindr"`` always detects but keeps only boxes scoring at least
   ``negative_keep_conf`` when triage is normal.
4. **Levels**: each finding is named after the nearest vertebra, disc or implant span.
5. **Grades** from the pack's grading heads.
6. **Explanations** on request (see :mod:`spinexr.explain`).

MR slices (DICOM Modality MR) go down the MRI stenosis path instead
(:class:`~spinexr.analyze_mri.MriPath`: region detection, a grade per region, Integrated
Gradients on request) when the pack has its models; radiographs and MR slices can be mixed in
one batch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from spinexr.analyze_mri import MriPath, is_mri
from spinexr.errors import ConfigError
from spinexr.geometry import scale_box, source_scale
from spinexr.levels import REGION_ANCHORS, level_of
from spinexr.models.ensemble import TriageScores
from spinexr.models.manifest import PackManifest
from spinexr.types import (WINDOW_LABEL, Analysis, Box, Finding, GateResult, Grade, Heatmap,
                           PackInfo, Radiograph, TriageResult)

GATING = ("dernet", "vindr")


@dataclass(frozen=True)
class AnalyzerConfig:
    """Settings of the inference path (the pack holds the models and their thresholds)."""

    operating_point: str = "youden"
    gating: str = "vindr"
    negative_keep_conf: float = 0.5
    lesion_conf: float | None = None          # None: the pack's threshold
    gate_min_vertebrae: int = 5        # a column of at least this many vertebral bodies ...
    gate_conf: float = 0.25            # ... detected at this confidence,
    gate_min_strong: int = 3           # of which at least this many ...
    gate_strong_conf: float = 0.5      # ... score this much
    gate_min_side: int = 64             # the real vertebra set holds 91 x 416 px crops
    gate_min_std: float = 0.02
    gate_min_gray_levels: int = 64     # radiographs use most of 256 levels; graphics use few
    default_region: str = "lumbar"
    explain: tuple[str, ...] = ()
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.gating not in GATING:
            raise ConfigError(f"gating {self.gating!r}: use one of {GATING}", "gating")


@dataclass(frozen=True)
class Roles:
    """Which model of the pack does what, from the roles its manifest states.

    Attributes:
        lesion_detector: key of the lesion detector, or ``None``.
        vertebra_detector: (pack, key) of the gate's vertebra detector (it may come from a
            second pack), or ``None``.
        graders: keys of the image-level grading heads.
        mri_regions: (region detector key, region grader key) of the MRI stenosis path, or
            ``None`` when the pack has no such pair.
    """

    lesion_detector: str | None
    vertebra_detector: tuple[Any, str] | None = None
    graders: tuple[str, ...] = ()
    mri_regions: tuple[str, str] | None = None

    @classmethod
    def of(cls, manifest: PackManifest, gate_detector=None) -> Roles:
        """The roles of a pack; ``gate_detector`` is the gate's (pack, key), see
        :class:`~spinexr.gate.runtime.InputGate`."""
        lesions = manifest.first("lesion_detector")
        region_det, region_grader = (manifest.first("mri_region_detector"),
                                     manifest.first("mri_region_grader"))
        return cls(lesion_detector=lesions.key if lesions else None,
                   vertebra_detector=gate_detector,
                   graders=tuple(s.key for s in manifest.with_role("grader")),
                   mri_regions=(region_det.key, region_grader.key)
                   if region_det and region_grader else None)


def gate_settings(cfg: AnalyzerConfig):
    """The gate's settings from the analyzer's."""
    from spinexr.gate.runtime import GateSettings

    return GateSettings(min_vertebrae=cfg.gate_min_vertebrae, conf=cfg.gate_conf,
                        min_strong=cfg.gate_min_strong, strong_conf=cfg.gate_strong_conf,
                        min_side=cfg.gate_min_side, min_std=cfg.gate_min_std,
                        min_gray_levels=cfg.gate_min_gray_levels,
                        default_region=cfg.default_region)


def image_checks(pixels: np.ndarray, cfg: AnalyzerConfig) -> tuple[bool, str, dict]:
    """Usable-image checks on the normalized pixels; (ok, reason, measured values)."""
    from spinexr.gate.runtime import image_checks as checks

    return checks(pixels, gate_settings(cfg))



#: Why an MR slice is refused by a pack without the MRI stenosis models.
MRI_MISSING = ("an MR slice, but this model pack has no MRI stenosis models (an "
               "mri_region_detector and an mri_region_grader); use a pack that has them")

#: Longer image side per pixel of a window-triage crop input (see Analyzer.decode_side).
WINDOW_SIDE_FACTOR = 8


class Analyzer:
    """Run a model pack on radiographs. Build once (models load once), call many times.

    Args:
        pack: the main pack (triage ensemble, lesion detector, grading heads: any subset).
        vertebrae_pack: a pack with the vertebra detector, if the main pack has none.
        config: the inference settings.
    """

    def __init__(self, pack, *, vertebrae_pack=None, config: AnalyzerConfig | None = None):
        self.config = config or AnalyzerConfig()
        self.pack = pack
        dev = self.config.device
        from spinexr.gate.runtime import InputGate

        self.input_gate = InputGate.from_packs([vertebrae_pack, pack], gate_settings(self.config),
                                               device=dev)
        self.roles = Roles.of(pack.manifest, self.input_gate.detector_ref)
        self.triage_model = pack.triage(device=dev) if pack.manifest.ensemble else None
        if self.triage_model is not None and \
                self.config.operating_point not in self.triage_model.operating_points:
            raise ConfigError(f"operating point {self.config.operating_point!r} is not in the "
                              f"pack (has {sorted(self.triage_model.operating_points)})",
                              "operating_point")
        self.lesion_detector = (pack.image_detector(self.roles.lesion_detector, device=dev)
                                if self.roles.lesion_detector else None)
        self.vertebra_detector = self.input_gate.detector
        self.graders = {k: pack.grader(k, device=dev) for k in self.roles.graders}
        synthetic = pack.synthetic or bool(vertebrae_pack is not None and vertebrae_pack.synthetic)
        self.info = PackInfo(pack.name, pack.version, synthetic)
        self.mri = (MriPath.from_pack(pack, device=dev, settings=gate_settings(self.config))
                    if MriPath.available(pack) else None)

    @property
    def read_policy(self):
        """The modality policy files are read with (see :mod:`spinexr.io.policy`): radiographs,
        and MR slices too when the pack has the MRI models."""
        from spinexr.io.policy import RADIOGRAPH_OR_MRI_POLICY, RADIOGRAPH_POLICY

        return RADIOGRAPH_OR_MRI_POLICY if self.mri is not None else RADIOGRAPH_POLICY

    @property
    def gate_thresholds(self) -> dict[str, float]:
        """The fitted gate's P(spine) thresholds (``uncertain``, ``accept``); empty when the
        packs hold no fitted gate (column rule)."""
        m = self.input_gate.model
        return {"uncertain": m.uncertain, "accept": m.accept} if m else {}

    def decode_side(self) -> int:
        """The smallest longer image side that loses nothing for this analyzer's models: the
        largest whole-image input (detectors, classifiers), and for a window triage
        :data:`WINDOW_SIDE_FACTOR` times its crops' input (a window spans about a ninth of a
        spine radiograph's height). Readers may decode JPEG 2000 down to it
        (``read_radiograph(min_side=...)``); results stay in source pixels."""
        specs = [self.pack.model_spec(k) for k in (self.roles.lesion_detector,
                                                    *self.roles.graders) if k]
        sides = [s.input.size * (WINDOW_SIDE_FACTOR if s.windows else 1) for s in specs]
        if self.vertebra_detector is not None:
            vp = self.roles.vertebra_detector
            sides.append(vp[0].model_spec(vp[1]).input.size)
        if self.triage_model is not None:
            factor = WINDOW_SIDE_FACTOR if self._windowed else 1
            sides += [factor * self.pack.model_spec(k).input.size
                      for k in self.triage_model.members]
        # at least the image checks' minimum side on the shorter side of a view up to 4:1
        return max(max([s for s in sides if s] or [1024]), 4 * self.config.gate_min_side)

    @classmethod
    def from_dirs(cls, pack_dir, vertebrae_dir=None, config: AnalyzerConfig | None = None):
        from spinexr.models.pack import load_pack

        return cls(load_pack(pack_dir),
                   vertebrae_pack=load_pack(vertebrae_dir) if vertebrae_dir else None,
                   config=config)

    def analyze(self, image: Radiograph) -> Analysis:
        """Analyse one radiograph."""
        return self.analyze_batch([image])[0]

    def analyze_batch(self, images: Sequence[Radiograph], *,
                      explain: Sequence[str] | None = None,
                      region: str | None = None) -> list[Analysis]:
        """Analyse several radiographs, batching every model over the accepted ones.

        Args:
            images: the radiographs.
            explain: explanation methods for this call (``None``: the configured ones).
            region: the spine region of images whose header names none (``None``: the
                configured default, or the count of vertebrae for a whole spine).
        """
        methods = tuple(self.config.explain if explain is None else explain)
        if region is not None and region not in REGION_ANCHORS:
            raise ConfigError(f"region {region!r}: use one of {sorted(REGION_ANCHORS)}",
                              "region")
        mr = [i for i, im in enumerate(images) if is_mri(im)]
        if mr:
            return self._mixed(images, mr, methods, region)
        timings: dict[str, float] = {}
        with _timed(timings, "gate"):
            gates, chains, namings = self._gate_batch(images, region)
        ok = [i for i, g in enumerate(gates) if g.accepted]
        pixels = [images[i].pixels for i in ok]
        bodies = [chains[i] for i in ok]
        with _timed(timings, "triage"):
            triage = self._triage(pixels, bodies)
        with _timed(timings, "lesions"):
            lesions = self._lesions(pixels, bodies, triage)
        with _timed(timings, "grades"):
            grades = self._grades(pixels, bodies,
                                  [gates[i].checks.get("level_region") for i in ok])
        with _timed(timings, "explain"):
            heatmaps = self._explain(pixels, bodies, methods)
        per_image = {k: v / max(len(images), 1) for k, v in timings.items()}
        results = []
        for i, image in enumerate(images):
            j = ok.index(i) if i in ok else None
            results.append(self._assemble(image, gates[i], chains[i], j, triage, lesions,
                                          grades, heatmaps, per_image, namings[i]))
        return results

    def _mixed(self, images: Sequence[Radiograph], mr: list[int], methods: tuple[str, ...],
               region: str | None) -> list[Analysis]:
        """A batch holding MR slices: those go down the MRI path (or are refused when the pack
        has none), the radiographs down this one; results in input order."""
        taken = set(mr)
        xr = [i for i in range(len(images)) if i not in taken]
        slices = [images[i] for i in mr]
        if self.mri is not None:
            done = self.mri.analyze_batch(slices, explain=methods, info=self.info)
        else:
            done = [refused_analysis(im.source.path or im.image_id, MRI_MISSING, self.info,
                                     image_id=im.image_id) for im in slices]
        out = dict(zip(mr, done))
        if xr:
            out.update(zip(xr, self.analyze_batch([images[i] for i in xr], explain=methods,
                                                  region=region)))
        return [out[i] for i in range(len(images))]

    def gate(self, images: Sequence[Radiograph]) -> list[GateResult]:
        """Only the input gate's verdict for each image (what ``spinexr evaluate --task gate``
        measures): the same decision :meth:`analyze_batch` takes first."""
        return self._gate_batch(images)[0]

    # ------------------------------------------------------------------ stages
    def _gate_batch(self, images: Sequence[Radiograph], region: str | None = None
                    ) -> tuple[list[GateResult], list[tuple[Box, ...]], list]:
        """The gate's verdicts, the named vertebrae and the level naming of each image."""
        verdicts = self.input_gate.judge(images, region=region)
        return ([v.result for v in verdicts], [v.vertebrae for v in verdicts],
                [v.levels for v in verdicts])

    @property
    def _windowed(self) -> bool:
        """Whether the triage runs on vertebra windows (a WindowTriage)."""
        from spinexr.models.spine_crops import WindowTriage

        return isinstance(self.triage_model, WindowTriage)

    def _window_bodies(self, bodies: list[tuple[Box, ...]], spec=None
                       ) -> list[tuple[Box, ...]] | None:
        """The gate's vertebrae, when a window model (the triage's, or one with crop ``spec``)
        would find the very same ones (same detector, same confidence): it then skips its own
        detector run."""
        spec = spec or self.triage_model.spec
        vp = self.roles.vertebra_detector
        if vp is None or vp[0] is not self.pack or vp[1] != spec.detector \
                or self.input_gate.detector_conf != spec.conf:
            return None
        return bodies

    def _triage(self, pixels: list[np.ndarray], bodies: list[tuple[Box, ...]]
                ) -> TriageScores | None:
        if self.triage_model is None or not pixels:
            return None
        if self._windowed:
            return self.triage_model.predict(pixels, self._window_bodies(bodies))
        return self.triage_model.predict(pixels)

    def _lesions(self, pixels: list[np.ndarray], bodies: list[tuple[Box, ...]],
                 triage: TriageScores | None) -> list[list[Box]]:
        if self.lesion_detector is None or not pixels:
            return [[] for _ in pixels]
        cfg, op = self.config, self.config.operating_point
        abnormal = (triage.decisions[op] if triage is not None
                    else np.ones(len(pixels), dtype=bool))
        todo = [i for i in range(len(pixels)) if abnormal[i] or cfg.gating == "vindr"]
        spec = self.pack.model_spec(self.roles.lesion_detector)
        conf = cfg.lesion_conf if cfg.lesion_conf is not None else spec.thresholds.conf
        images = [pixels[i] for i in todo]
        if spec.windows is None:
            found = self.lesion_detector.predict(images, conf=conf)
        else:   # on vertebra windows: reuse the gate's bodies when they are the same ones
            known = self._window_bodies(bodies, spec.windows)
            found = self.lesion_detector.predict(
                images, conf=conf, vertebrae=None if known is None else [known[i] for i in todo])
        out: list[list[Box]] = [[] for _ in pixels]
        for i, boxes in zip(todo, found):
            out[i] = boxes if abnormal[i] else [b for b in boxes
                                                if (b.score or 0) >= cfg.negative_keep_conf]
        return out

    def _grades(self, pixels: list[np.ndarray], bodies: list[tuple[Box, ...]],
                regions: Sequence[str | None]) -> list[list[Grade]]:
        """Each grading head on the images of the spine regions it applies to (a spec's
        ``regions``, e.g. cervical injury on cervical studies only; default all)."""
        from spinexr.models.spine_crops import WindowGrader

        out: list[list[Grade]] = [[] for _ in pixels]
        for key, clf in self.graders.items() if pixels else ():
            spec = self.pack.model_spec(key)
            task, allowed = spec.task, spec.regions
            todo = [i for i in range(len(pixels)) if not allowed or regions[i] in allowed]
            if not todo:
                continue
            sub = [pixels[i] for i in todo]
            if isinstance(clf, WindowGrader):
                probs, where = clf.predict_located(
                    sub, self._window_bodies([bodies[i] for i in todo], clf.spec))
            else:
                probs, where = clf.predict_proba(sub), [None] * len(sub)
            for i, p, win in zip(todo, probs, where):
                k = int(np.argmax(p))
                box = None if win is None else replace(   # named after the gate's vertebrae
                    win, label=WINDOW_LABEL, level=win.level or level_of(win, bodies[i]))
                out[i].append(Grade(task=task, label=clf.labels[k], index=k, box=box,
                                    probabilities={n: float(v) for n, v in zip(clf.labels, p)}))
        return out

    def _explain(self, pixels: list[np.ndarray], bodies: list[tuple[Box, ...]],
                 methods: tuple[str, ...]) -> list[list[Heatmap]]:
        if not methods or self.triage_model is None:
            return [[] for _ in pixels]
        from spinexr.explain import explain_ensemble, explain_windows

        if self._windowed:
            given = self._window_bodies(bodies)
            return [[explain_windows(self.triage_model, p, m,
                                     vertebrae=None if given is None else given[j])
                     for m in methods] for j, p in enumerate(pixels)]
        return [[explain_ensemble(self.triage_model, p, m) for m in methods] for p in pixels]

    def _assemble(self, image: Radiograph, gate: GateResult, vertebrae: tuple[Box, ...],
                  j: int | None, triage, lesions, grades, heatmaps, timings,
                  levels=None) -> Analysis:
        sx, sy = source_scale(image)
        spacing = image.spacing_mm and (image.spacing_mm[0] / sy, image.spacing_mm[1] / sx)
        base = dict(image_id=image.image_id, source=image.source,
                    image_size=(round(image.width * sx), round(image.height * sy)),
                    spacing_mm=spacing, gate=gate, pack=self.info, timings=timings)
        if j is None:
            return Analysis(**base)
        findings = [self._finding(b, vertebrae, image) for b in lesions[j]]  # mm: as analysed
        return Analysis(**base, triage=self._triage_result(triage, j),
                        findings=tuple(replace(f, box=scale_box(f.box, sx, sy))
                                       for f in findings),
                        vertebrae=tuple(scale_box(b, sx, sy) for b in vertebrae),
                        grades=tuple(g if g.box is None else replace(g, box=scale_box(g.box, sx,
                                                                                      sy))
                                     for g in grades[j]), heatmaps=tuple(heatmaps[j]), levels=levels)

    def _triage_result(self, triage: TriageScores | None, j: int) -> TriageResult | None:
        if triage is None:
            return None
        op = self.config.operating_point
        return triage.result(j, op, self.triage_model.operating_points[op])

    @staticmethod
    def _finding(box: Box, vertebrae: Sequence[Box], image: Radiograph) -> Finding:
        named = replace(box, level=level_of(box, vertebrae))
        size = None
        if image.spacing_mm is not None:
            size = (round(box.width * image.spacing_mm[1], 2),
                    round(box.height * image.spacing_mm[0], 2))
        return Finding(box=named, size_mm=size)


def refused_analysis(path, reason: str, pack: PackInfo, *, image_id: str | None = None
                     ) -> Analysis:
    """The result for an input that could not be read as a radiograph (``reason`` says why)."""
    from pathlib import Path

    from spinexr.types import SourceRef

    stem = image_id or Path(path).stem or "input"
    return Analysis(image_id=stem, source=SourceRef(path=str(path)), image_size=None,
                    spacing_mm=None, gate=GateResult(False, reason), pack=pack)


class _timed:
    """Add the wall time of a ``with`` block to ``timings[name]``."""

    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc) -> None:
        self.timings[self.name] = self.timings.get(self.name, 0.0) + time.perf_counter() - self.t0
