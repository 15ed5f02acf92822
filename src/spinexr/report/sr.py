"""DICOM Comprehensive SR (TID 1500 Measurement Report) of an analysis, built with highdicom.

Content tree::

    Imaging Measurement Report (TID 1500)
      observation context: device observer "spinexr"; procedure: Plain radiography
      Image Library (TID 1600): the source image (modality, size, orientation, spacing)
      Imaging Measurements
        Measurement Group (TID 1501): the image-level result, always present
          tracking id "Image-level result", algorithm id, source image
          Finding = SCT Abnormal                                         [analysed only]
          Probability (DCM 122157) of it, Threshold Value (DCM 122411), and each ensemble
            member's Probability with the member's own algorithm id      [analysed only]
          gate verdict (99SPINEXR GATE = ACCEPTED / UNCERTAIN / REFUSED)
          Normality (DCM 121402) = SCT Normal / Abnormal                 [analysed only]
          Comment per caution (TEXT; TID 1501 is extensible): uncertain input, level naming
            counted, unconfirmed, heads that disagree ("The models disagree: ...")
          Comment: the triage sentence, or "Not analysed: the input was refused (<reason>)."
        Measurement Group (TID 1410) per finding
          tracking id "Finding <n>: <label> at <level>" (level "L4?" when counted,
            unconfirmed), algorithm id
          Image Region: closed POLYLINE rectangle on the source image (SCOORD, pixels)
          Finding = lesion code; Finding Site = vertebra / disc code
          Probability (DCM 122157), width and height in mm when the spacing is known
          Comment "Level naming: levels counted, unconfirmed (...)" beside an unconfirmed
            Finding Site (TEXT)
        Measurement Group per grade: TID 1501 for a whole-image grade, TID 1410 (with the
          box as a closed POLYLINE) for a graded region or window
          tracking id "Grade <n>: <task> <label> (<location>)" or, for an MR region,
            "Region <n>: <region>"
          Finding and Finding Site (e.g. SCT Spondylosis at SCT Lumbar spine, SCT Fracture of
            bone at SCT Cervical spine, SCT Spinal stenosis at the MR region with laterality)
          Severity (SCT 246112005) = Normal / Equivocal / Minimal / Mild / Moderate / Severe
            where the grade is a severity (see :func:`spinexr.report.codes.grade_codes`)
          Probability of the grade (an MR region: the detector's score)
          Comment: the grade's class probabilities (TEXT)

A refused input gets the image-level group only: gate REFUSED and the comment "Not analysed:
..."; MeasurementReport needs at least one group, hence that group.
"""
from __future__ import annotations

from pydicom import Dataset
from pydicom.uid import generate_uid

from spinexr.report import _dicom, codes, notices
from spinexr.report.uids import ResultUids, tracking_uid, writer_uids
from spinexr.types import Analysis, Finding, Grade

IMAGE_GROUP_ID = "Image-level result"
_PROJECTION = frozenset({"CR", "DX", "IO", "MG", "PX", "RF", "RG", "XA"})
_CROSS_SECTIONAL = frozenset({"CT", "MR", "PT"})
#: The attributes (and value counts) TID 1603 / 1604 descriptors read, per kind of modality.
_DESCRIPTORS = {"projection": {"PatientOrientation": 2, "ImagerPixelSpacing": 2},
                "cross": {"PixelSpacing": 2, "ImageOrientationPatient": 6,
                          "ImagePositionPatient": 3, "SliceThickness": 1}}


def make_sr(a: Analysis, source_header: Dataset, *, uids: ResultUids | None = None,
            uid_root: str | None = None) -> Dataset:
    """A Comprehensive SR with the findings, grades, triage and gate verdict of ``a``.

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
        Instance UID and the group's index (0: the image-level group, then the findings, then
        the grades).

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
    if a.gate.accepted:
        region_source = hd.sr.SourceImageForRegion(header.SOPClassUID, header.SOPInstanceUID)
        for n, finding in enumerate(a.findings, start=1):
            track = tracking_uid(ids.sop_instance_uid, n, root=uid_root)
            groups.append(_roi_group(n, finding, a, header, region_source, algo, track))
        for n, g in enumerate(a.grades, start=1):
            track = tracking_uid(ids.sop_instance_uid, len(a.findings) + n, root=uid_root)
            groups.append(_grade_group(n, g, a, header, (region_source, algo), track))
    library = library_image(header)
    report = hd.sr.MeasurementReport(
        observation_context=_observation_context(a, header),
        procedure_reported=codes.procedure_code(a.modality),
        imaging_measurements=groups,
        title=hd.sr.CodedConcept("126000", "DCM", "Imaging Measurement Report"),
        referenced_images=[library] if library is not None else None)
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


def library_image(header: Dataset) -> Dataset | None:
    """What the Image Library (TID 1600) says of the source: SOP Class/Instance, Rows,
    Columns, Frame of Reference, and the projection (TID 1603: orientation, imager spacing)
    or cross-sectional (TID 1604: spacing, orientation, position, thickness) descriptors
    when the header has every one of them; ``None`` when highdicom cannot describe the SOP
    class (not an image). A new Dataset: ``header`` is not modified."""
    import highdicom as hd

    view = Dataset()
    for keyword in ("SOPClassUID", "SOPInstanceUID", "Rows", "Columns", "FrameOfReferenceUID"):
        if header.get(keyword) not in (None, ""):
            setattr(view, keyword, header.get(keyword))
    modality = str(header.get("Modality") or "")
    kind = ("projection" if modality in _PROJECTION else
            "cross" if modality in _CROSS_SECTIONAL else None)
    view.Modality = "OT"            # no modality-specific descriptors unless all are there
    if kind is not None and all(_has(header, k, n) for k, n in _DESCRIPTORS[kind].items()):
        view.Modality = modality
        for keyword in _DESCRIPTORS[kind]:
            setattr(view, keyword, header.get(keyword))
    try:                            # what MeasurementReport will build: refused for non-images
        hd.sr.ImageLibraryEntryDescriptors(view)
    except (ValueError, TypeError, AttributeError):
        return None
    return view


def _has(header: Dataset, keyword: str, count: int) -> bool:
    """Whether ``keyword`` holds exactly ``count`` non-empty values."""
    value = header.get(keyword)
    if value in (None, ""):
        return False
    values = [value] if count == 1 else list(value) if not isinstance(value, str) else [value]
    return len(values) == count and all(str(v).strip() for v in values)


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
        measurements += [_probability(codes.PROBABILITY, t.probability),
                         _probability(codes.THRESHOLD, t.threshold)]
        for model, p in t.per_model.items():
            member = hd.sr.AlgorithmIdentification(
                name=_dicom.encodable(str(model), header),
                version=_dicom.encodable(a.pack.version, header))
            measurements.append(_probability(codes.PROBABILITY, p, member))
        evaluations.append(hd.sr.QualitativeEvaluation(
            codes.NORMALITY, codes.ABNORMAL if t.abnormal else codes.NORMAL))
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=track, identifier=IMAGE_GROUP_ID),
        finding_type=codes.ABNORMAL if t is not None else None,
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


def _grade_group(n: int, g: Grade, a: Analysis, header: Dataset, context, track: str):
    """The group of one grade: TID 1501 for a whole-image grade, TID 1410 with the box for a
    graded region (MR stenosis) or window; Finding, Finding Site and Severity as coded by
    :func:`~spinexr.report.codes.grade_codes`, the grade's probability, and its class
    probabilities as a comment."""
    import highdicom as hd

    region_source, algo = context
    coded = codes.grade_codes(g.task, g.index, g.label)
    mri_region = a.modality == "mri" and g.box is not None
    identifier = (f"Region {n}: {g.box.label}" if mri_region
                  else f"Grade {n}: {notices.grade_text(g, a)}")
    p = g.box.score if mri_region else g.probabilities.get(g.label)
    kwargs = dict(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=track, identifier=_dicom.encodable(identifier, header)),
        finding_type=coded.finding, algorithm_id=algo,
        finding_sites=_grade_sites(g, a, coded),
        measurements=[_probability(codes.PROBABILITY, p)] if p is not None else None,
        qualitative_evaluations=([hd.sr.QualitativeEvaluation(*coded.evaluation)]
                                 if coded.evaluation else None))
    if g.box is None:
        group = hd.sr.MeasurementsAndQualitativeEvaluations(
            **kwargs, source_images=[hd.sr.SourceImageForMeasurementGroup(
                header.SOPClassUID, header.SOPInstanceUID)])
    else:
        group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            **kwargs, referenced_region=hd.sr.ImageRegion(
                graphic_type=hd.sr.GraphicTypeValues.POLYLINE, source_image=region_source,
                graphic_data=_dicom.rectangle(g.box, int(header.Columns), int(header.Rows))))
    probs = ", ".join(f"{k} {v:.3f}" for k, v in g.probabilities.items())
    group[0].ContentSequence.append(_comment(f"{g.task} grade {g.label}: {probs}", header))
    return group


def _grade_sites(g: Grade, a: Analysis, coded: codes.GradeCodes) -> list:
    """Finding Sites of a grade: the lumbar spine and the region (with laterality) of an MR
    region; the window's vertebra or disc when it has a coded level; else the anatomic
    region the grade belongs to (cervical injury: the cervical spine) or that the levels were
    counted in (``SCT Spine`` when unknown)."""
    import highdicom as hd

    if a.modality == "mri" and g.box is not None:
        region, side = codes.region_codes(g.box.label)
        return [hd.sr.FindingSite(codes.LUMBAR_SPINE),
                hd.sr.FindingSite(region, laterality=side)]
    level = codes.level_code(g.box.level) if g.box is not None else None
    if level is not None:
        return [hd.sr.FindingSite(level)]
    region = a.levels.region if a.levels is not None else None
    return [hd.sr.FindingSite(coded.site or codes.region_site(region))]
