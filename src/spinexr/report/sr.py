"""DICOM Comprehensive SR (TID 1500 Measurement Report) of an analysis, built with highdicom.

Content tree::

    Imaging Measurement Report (TID 1500)
      observation context: device observer "spinexr"; procedure: Plain radiography
      Imaging Measurements
        Measurement Group (TID 1501): the image-level result, always present
          tracking id, algorithm id, source image
          gate verdict (99SPINEXR GATE = ACCEPTED / UNCERTAIN / REFUSED)
          P(abnormal), threshold, each ensemble member's probability   [analysed only]
          triage result (= SCT Normal / Abnormal), grades               [analysed only]
          Comment per warning (TEXT; TID 1501 is extensible): "Uncertain input: <reason>;
            check that this is a spine radiograph", "Level naming: levels counted,
            unconfirmed (<assumption>)"                                  [when they apply]
          Comment: the gate reason / the triage sentence (TEXT)
        Measurement Group (TID 1410) per finding
          tracking id "Finding <n>: <label> at <level>" (level "L4?" when counted,
            unconfirmed), algorithm id
          Image Region: closed POLYLINE rectangle on the source image (SCOORD, pixels)
          Finding = lesion code; Finding Site = vertebra / disc code
          Probability (DCM 122157), width and height in mm when the spacing is known
          Comment "Level naming: levels counted, unconfirmed (...)" beside an unconfirmed
            Finding Site (TEXT)

For an axial lumbar MR slice (``a.modality == "mri"``) the procedure reported is SCT Magnetic
resonance imaging, the image-level group carries no region grade, and each graded stenosis
region gets a Measurement Group (TID 1410): tracking id "Region <n>: <region>", the box as a
closed POLYLINE, Finding = the region (SCT Vertebral canal, or 99SPINEXR LATREC / NFORAMEN),
Finding Site = SCT Lumbar spine with laterality, Severity (SCT 246112005) = Normal / Mild /
Moderate / Severe, the detector's Probability and the grade probabilities as a Comment.

MeasurementReport needs at least one group, hence the image-level group even for a refused
input; such an SR has no planar ROI groups.
"""
from __future__ import annotations

from pydicom import Dataset
from pydicom.uid import generate_uid

from spinexr.report import _dicom, codes, notices
from spinexr.report.uids import ResultUids, tracking_uid, writer_uids
from spinexr.types import Analysis, Finding, Grade


def make_sr(a: Analysis, source_header: Dataset, *, uids: ResultUids | None = None,
            uid_root: str | None = None) -> Dataset:
    """A Comprehensive SR with the findings, triage and gate verdict of ``a``.

    Args:
        a: the analysis; boxes in source pixels.
        source_header: the source image's DICOM header (``Radiograph.header``); it is copied,
            never modified. Patient and study modules are taken from it.
        uids: the SR's Series/SOP Instance UIDs, numbers and description; default
            :func:`~spinexr.report.uids.result_uids` (the same for the same image and pack).
        uid_root: the organisation's UID root for the derived and tracking UIDs; default
            ``2.25.`` UUID-derived UIDs.

    Returns:
        A ``highdicom.sr.ComprehensiveSR`` (a pydicom Dataset with file meta) in the source
        study; validated by highdicom on construction. Tracking UIDs derive from its SOP
        Instance UID and the finding's index (0: the image-level group).

    Raises:
        ConfigError: no header, a header without the UIDs to reference, a header of
            another image than ``a``, or an invalid ``uid_root``.
    """
    import highdicom as hd

    header = _dicom.source_header(source_header, what="DICOM SR")
    _dicom.check_same_image(a, header, "DICOM SR")
    ids = writer_uids(a, header, "sr", given=uids, root=uid_root)
    algo = _algorithm(a, header)
    groups = [_image_group(a, header, algo, tracking_uid(ids.sop_instance_uid, 0, root=uid_root))]
    region_source = hd.sr.SourceImageForRegion(header.SOPClassUID, header.SOPInstanceUID)
    for n, finding in enumerate(a.findings, start=1):
        track = tracking_uid(ids.sop_instance_uid, n, root=uid_root)
        groups.append(_roi_group(n, finding, a, header, region_source, algo, track))
    if a.modality == "mri":     # one planar ROI group per graded stenosis region
        for n, g in enumerate(_region_grades(a), start=len(a.findings) + 1):
            track = tracking_uid(ids.sop_instance_uid, n, root=uid_root)
            groups.append(_region_group(n, g, header, region_source, algo, track))
    report = hd.sr.MeasurementReport(
        observation_context=_observation_context(a, header),
        procedure_reported=codes.procedure_code(a.modality),
        imaging_measurements=groups,
        title=hd.sr.CodedConcept("126000", "DCM", "Imaging Measurement Report"))
    with _dicom.quiet_person_names():
        return hd.sr.ComprehensiveSR(
            evidence=[header], content=report[0],
            series_instance_uid=ids.series_instance_uid, series_number=ids.series_number,
            sop_instance_uid=ids.sop_instance_uid, instance_number=ids.instance_number,
            manufacturer=_dicom.MANUFACTURER, manufacturer_model_name="spinexr",
            software_versions=_dicom.software_version(),
            series_description=ids.series_description,
            is_complete=True, is_final=False, is_verified=False,
            coding_schemes=[codes.coding_scheme_item()])


def _algorithm(a: Analysis, header: Dataset):
    import highdicom as hd

    params = [f"spinexr {_dicom.software_version()}", f"synthetic-trained: {a.pack.synthetic}"]
    if a.triage is not None:
        params.append(f"operating point: {a.triage.operating_point} "
                      f"(threshold {a.triage.threshold:.6g})")
    return hd.sr.AlgorithmIdentification(
        name=_dicom.encodable(f"spinexr {a.pack.name}", header),
        version=_dicom.encodable(a.pack.version, header),
        parameters=[_dicom.encodable(p, header) for p in params],
        manufacturer=_dicom.MANUFACTURER)


def _observation_context(a: Analysis, header: Dataset):
    import highdicom as hd

    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=generate_uid(entropy_srcs=["spinexr", a.pack.name, a.pack.version]),
        name="spinexr", manufacturer_name=_dicom.MANUFACTURER,
        model_name=_dicom.encodable(a.pack.name, header)[:64])
    return hd.sr.ObservationContext(observer_device_context=hd.sr.ObserverContext(
        observer_type=codes.DEVICE_OBSERVER, observer_identifying_attributes=device))


def _probability(name, value: float, algo=None):
    import highdicom as hd

    return hd.sr.Measurement(name=name, value=float(value), unit=codes.UNIT_PROBABILITY,
                             algorithm_id=algo)


def _image_group(a: Analysis, header: Dataset, algo, track: str):
    import highdicom as hd

    measurements, evaluations = [], [hd.sr.QualitativeEvaluation(
        codes.GATE, codes.GATE_OUTCOME_CODES[a.gate.outcome])]
    t = a.triage if a.gate.accepted else None
    if t is not None:
        measurements += [_probability(codes.ABNORMALITY_PROBABILITY, t.probability),
                         _probability(codes.THRESHOLD, t.threshold)]
        for model, p in t.per_model.items():
            member = hd.sr.AlgorithmIdentification(
                name=_dicom.encodable(str(model), header),
                version=_dicom.encodable(a.pack.version, header))
            measurements.append(_probability(codes.MODEL_PROBABILITY, p, member))
        evaluations.append(hd.sr.QualitativeEvaluation(
            codes.TRIAGE_RESULT, codes.ABNORMAL if t.abnormal else codes.NORMAL))
    if a.gate.accepted:
        for g in (g for g in a.grades if g.box is None):     # regions have their own groups
            evaluations.append(hd.sr.QualitativeEvaluation(*codes.grade_codes(g.task, g.index,
                                                                               g.label)))
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=track,
                                                      identifier="Image-level result"),
        algorithm_id=algo, measurements=measurements or None,
        qualitative_evaluations=evaluations,
        source_images=[hd.sr.SourceImageForMeasurementGroup(header.SOPClassUID,
                                                            header.SOPInstanceUID)])
    for text in [*notices.warnings(a), _dicom.triage_text(a)]:
        group[0].ContentSequence.append(_comment(text, header))
    return group


def _comment(text: str, header: Dataset):
    import highdicom as hd

    return hd.sr.TextContentItem(name=codes.COMMENT, value=_dicom.encodable(text, header),
                                 relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)


def _roi_group(n: int, f: Finding, a: Analysis, header: Dataset, region_source, algo,
               track: str):
    import highdicom as hd

    width, height = int(header.Columns), int(header.Rows)
    region = hd.sr.ImageRegion(graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
                               graphic_data=_dicom.rectangle(f.box, width, height),
                               source_image=region_source)
    site = codes.level_code(f.level)
    measurements = [_probability(codes.PROBABILITY, f.score)]
    if f.size_mm is not None:
        measurements += [hd.sr.Measurement(name=codes.WIDTH, value=float(f.size_mm[0]),
                                           unit=codes.UNIT_MM),
                         hd.sr.Measurement(name=codes.HEIGHT, value=float(f.size_mm[1]),
                                           unit=codes.UNIT_MM)]
    at = f" at {notices.level_label(f.level, a)}" if f.level else ""
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=track, identifier=_dicom.encodable(f"Finding {n}: {f.label}{at}", header)),
        referenced_region=region, finding_type=codes.lesion_code(f.label), algorithm_id=algo,
        finding_sites=[hd.sr.FindingSite(site)] if site is not None else None,
        measurements=measurements)
    qualifier = notices.level_warning(a) if f.level else None
    if qualifier:
        group[0].ContentSequence.append(_comment(qualifier, header))
    return group


def _region_grades(a: Analysis) -> list[Grade]:
    return [g for g in a.grades if g.box is not None]


def _region_group(n: int, g: Grade, header: Dataset, region_source, algo, track: str):
    """TID 1410 group of one graded stenosis region (MRI): the box as a closed POLYLINE,
    Finding = the region, Finding Site = lumbar spine (with laterality), Severity = the grade,
    the detector's score as Probability, and the grade probabilities as a comment."""
    import highdicom as hd

    width, height = int(header.Columns), int(header.Rows)
    region, side = codes.region_codes(g.box.label)
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=track, identifier=_dicom.encodable(f"Region {n}: {g.box.label}", header)),
        referenced_region=hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE, source_image=region_source,
            graphic_data=_dicom.rectangle(g.box, width, height)),
        finding_type=region, algorithm_id=algo,
        finding_sites=[hd.sr.FindingSite(codes.LUMBAR_SPINE, laterality=side)],
        measurements=([_probability(codes.PROBABILITY, g.box.score)]
                      if g.box.score is not None else None),
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(
            codes.SEVERITY, codes.severity_code(g.index, g.label))])
    probs = ", ".join(f"{k} {v:.3f}" for k, v in g.probabilities.items())
    group[0].ContentSequence.append(_comment(f"{g.task} grade {g.label}: {probs}", header))
    return group
