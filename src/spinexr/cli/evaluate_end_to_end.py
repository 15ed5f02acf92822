"""``spinexr evaluate``'s end-to-end pass: the test images through the one process step
(:class:`spinexr.process.Processor` around an :class:`spinexr.analyze.Analyzer`, as
``spinexr analyze`` runs it), measured by :mod:`spinexr.evaluate.end_to_end`.

What is measured is what a user gets: the input gate's verdicts, triage where a refused image
is never flagged, lesion boxes after the triage gating (``--gating``) and the pack's thresholds,
and the grades given. Images the analyzer took as MR slices (``Analysis.modality == "mri"``)
are measured apart, by :mod:`spinexr.evaluate.stenosis` (their region grades against the
dataset's regions and grades); the radiograph blocks count the radiographs only.
"""
from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from spinexr.analyze import Analyzer, AnalyzerConfig
from spinexr.analyze_mri import MODALITY as MRI, STENOSIS_TASK
from spinexr.cli.evaluate_plan import Plan, binary_labels, default_operating_point
from spinexr.errors import ConfigError
from spinexr.evaluate.end_to_end import (GradeTruth, LesionTruth, TriageTruth, UserResult,
                                         end_to_end_metrics, gate_counts)
from spinexr.evaluate.stenosis import StenosisTruth, stenosis_metrics
from spinexr.labels import STENOSIS_GRADES
from spinexr.process import ProcessOptions, Processor
from spinexr.types import Grade

#: The radiograph blocks, each noted as not measured when the set holds MR slices only.
_RADIOGRAPH_BLOCKS = ("triage", "lesions", "grades")


def build_analyzer(pack, vertebrae_pack, args) -> Analyzer:
    """The analyzer ``spinexr analyze`` would build with these ``--gating``,
    ``--operating-point`` and ``--device`` (default point: ``youden``, else the pack's first)."""
    ensemble = pack.manifest.ensemble
    op = (default_operating_point(ensemble.operating_points, args.operating_point)
          if ensemble is not None and ensemble.operating_points
          else args.operating_point or AnalyzerConfig.operating_point)
    return Analyzer(pack, vertebrae_pack=vertebrae_pack, config=AnalyzerConfig(
        operating_point=op, gating=args.gating, device=args.device))


def _process(analyzer, samples, args) -> tuple[list[UserResult], list[tuple[int, int]]]:
    """Each sample's result, and its (width, height) in source pixels."""
    from tqdm import tqdm

    processor = Processor(analyzer)
    paths = [s.image_path for s in samples]
    results, sizes = [], []
    with tqdm(total=len(paths), desc="evaluate end to end", unit="img", file=sys.stderr,
              disable=None) as bar:
        for batch in processor.stream(paths, batch=args.batch, workers=args.decode_workers,
                                      options=ProcessOptions(render=False)):
            for done in batch:
                s = samples[len(results)]
                a = done.analysis
                results.append(UserResult.of(a))
                sizes.append(a.image_size or (s.width or 1, s.height or 1))
                bar.update(1)
    return results, sizes


def _truths(analyzer, plan: Plan, dataset, samples, sizes, args, index: list[int]
            ) -> tuple[TriageTruth | None, LesionTruth | None, list[GradeTruth], list[str]]:
    """The truth of each radiograph block the analyzer produces and the dataset labels, over
    the samples at ``index`` (the radiographs); notes say why a block is left out."""
    if not index:
        return None, None, [], [f"{b}: not measured on MR slices" for b in _RADIOGRAPH_BLOCKS]
    samples, sizes = [samples[i] for i in index], [sizes[i] for i in index]
    notes: list[str] = []
    triage = None
    if analyzer.triage_model is not None:
        y = binary_labels(dataset, samples)
        op = analyzer.config.operating_point
        if np.isnan(y).all():
            notes.append("triage: no sample has a normal/abnormal label")
        else:
            triage = TriageTruth(y, op, analyzer.triage_model.operating_points[op],
                                 groups=[s.group for s in samples])
    lesions, key = None, analyzer.roles.lesion_detector
    if key is None:
        notes.append("lesions: the pack has no lesion detector")
    elif args.boxes != "lesions":
        notes.append("lesions: not measured with --boxes vertebrae (the truth is vertebral "
                     "bodies, the findings are lesions)")
    elif key not in plan.detectors:
        notes.append(f"lesions: not measured, {plan.skipped[key]}")
    else:
        mapping, labels = plan.detectors[key]
        lesions = LesionTruth([s.boxes for s in samples], sizes, mapping, labels)
    grades = []
    for key in analyzer.roles.graders:
        if key in plan.classifiers:
            _, labels, y = plan.classifiers[key]
            grades.append(GradeTruth(analyzer.pack.model_spec(key).task, labels, y[index]))
        else:
            notes.append(f"grades {key}: not measured, the dataset has no labels for it")
    return triage, lesions, grades, notes


def _region_truth(sample) -> tuple[Grade, ...]:
    """A sample's region boxes that have a grade (an MR slice's stenosis regions) as grades."""
    return tuple(Grade(STENOSIS_TASK, STENOSIS_GRADES[sample.grades[b.label]],
                       sample.grades[b.label], box=b)
                 for b in sample.boxes if isinstance(sample.grades.get(b.label), int))


def _stenosis(results: list[UserResult], samples, args, index: list[int]) -> dict | None:
    """The stenosis block over the MR slices at ``index`` (``None`` when there are none)."""
    if not index:
        return None
    truth = StenosisTruth([_region_truth(samples[i]) for i in index],
                          groups=[samples[i].group for i in index])
    block = stenosis_metrics([results[i].regions for i in index], truth, n_boot=args.n_boot,
                             seed=args.seed)
    if not block["n_truth"]:
        block["notes"].append("no MR slice of the set has region grades (the VinDr MRI "
                              "layout: annotations/<split>.csv with region and grade columns)")
    return block


def _check_mri(analyzer, samples) -> None:
    """MR slices with region grades need a pack that grades them."""
    if analyzer.mri is None and any(_region_truth(s) for s in samples):
        raise ConfigError(f"the dataset holds MR slices with stenosis grades, but model pack "
                          f"{analyzer.pack.name!r} has no MRI stenosis models (an "
                          "mri_region_detector and an mri_region_grader); use a pack that has "
                          "them, e.g. models/demo", str(analyzer.pack.root))


def end_to_end(analyzer, plan: Plan, dataset, samples, args) -> dict[str, Any]:
    """The ``end_to_end`` block of metrics.json (see :func:`end_to_end_metrics`; ``stenosis``
    from :func:`~spinexr.evaluate.stenosis.stenosis_metrics` on the MR slices), with the
    settings it was measured at, the images of each modality, notes and timing."""
    _check_mri(analyzer, samples)
    t0 = time.perf_counter()
    results, sizes = _process(analyzer, samples, args)
    t1 = time.perf_counter()
    mr = [i for i, r in enumerate(results) if r.modality == MRI]
    xr = [i for i, r in enumerate(results) if r.modality != MRI]
    triage, lesions, grades, notes = _truths(analyzer, plan, dataset, samples, sizes, args, xr)
    block = {**end_to_end_metrics([results[i] for i in xr], triage=triage, lesions=lesions,
                                  grades=grades, n_boot=args.n_boot, seed=args.seed),
             "gate": gate_counts(results), "modality": {"radiograph": len(xr), "mri": len(mr)},
             "stenosis": _stenosis(results, samples, args, mr)}
    cfg = analyzer.config
    lesion_key = analyzer.roles.lesion_detector
    lesion_conf = cfg.lesion_conf if cfg.lesion_conf is not None else (
        analyzer.pack.model_spec(lesion_key).thresholds.conf if lesion_key else None)
    gate_ref = analyzer.input_gate.detector_ref
    settings = {"gating": cfg.gating, "operating_point": cfg.operating_point,
                "negative_keep_conf": cfg.negative_keep_conf, "lesion_conf": lesion_conf,
                "gate_detector": f"{gate_ref[0].name}/{gate_ref[1]}" if gate_ref else None,
                "gate_verified": analyzer.input_gate.verified}
    return {**block, "settings": settings, "notes": notes,
            "timing_s": {"analysis": t1 - t0, "metrics": time.perf_counter() - t1,
                         "images_per_s": len(samples) / max(t1 - t0, 1e-9)}}
