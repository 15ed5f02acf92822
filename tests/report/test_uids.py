"""Deterministic identities of the SR, GSPS and SC: build, save to memory, read back, compare."""
from __future__ import annotations

from copy import deepcopy
from dataclasses import replace
from io import BytesIO

import numpy as np
import pydicom
import pytest
from pydicom.uid import UID
from report_factory import PACK, make_analysis, make_uncertain

from spinexr.errors import ConfigError
from spinexr.report import make_gsps, make_sc, make_sr, render_outputs
from spinexr.report.uids import (ResultUids, fit_description, result_uids, tracking_uid,
                                 writer_uids)

KINDS = ("sr", "gsps", "sc")
ROOT = "1.2.826.0.1.3680043.10.1234."
#: The SR's image-level group, its three finding groups and its grade group; the GSPS's
#: three findings (a whole-image grade is text, not tracked).
N_TRACKING = {"sr": 5, "gsps": 3, "sc": 0}


def _make(kind: str, a, image, **kwargs) -> pydicom.Dataset:
    """Build the ``kind`` object, save it to memory and read it back."""
    if kind == "sr":
        ds = make_sr(a, image.header, **kwargs)
    elif kind == "gsps":
        ds = make_gsps(a, image.header, **kwargs)
    else:
        ds = make_sc(a, image, np.zeros((64, 50, 3), np.uint8), **kwargs)
    buf = BytesIO()
    ds.save_as(buf)
    return pydicom.dcmread(BytesIO(buf.getvalue()))


def _identity(ds) -> tuple:
    return (ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber,
            ds.SeriesDescription)


def _tracking(ds) -> list[str]:
    """Every tracking UID in ``ds``: GSPS ``TrackingUID`` elements (graphic and text of a
    finding share one), SR UIDREF items named DCM 112040 Tracking Unique Identifier."""
    found: list[str] = []
    for item in [ds, *_items(ds)]:
        if "TrackingUID" in item and item.TrackingUID not in found:
            found.append(item.TrackingUID)
        name = item.get("ConceptNameCodeSequence")
        if item.get("ValueType") == "UIDREF" and name and name[0].CodeValue == "112040":
            found.append(item.UID)
    return found


def _items(ds):
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                yield item
                yield from _items(item)


def _other_image(header, **changes) -> pydicom.Dataset:
    copy = deepcopy(header)
    for keyword, value in changes.items():
        if value is None:
            delattr(copy, keyword)
        else:
            setattr(copy, keyword, value)
    return copy


@pytest.mark.parametrize("kind", KINDS)
def test_rendering_twice_gives_the_same_identity_and_tracking_uids(kind, analysis, radiograph):
    first, again = (_make(kind, analysis, radiograph) for _ in range(2))
    assert _identity(first) == _identity(again)
    assert _tracking(first) == _tracking(again)
    assert len(set(_tracking(first))) == N_TRACKING[kind]
    assert (first.SeriesNumber, first.InstanceNumber) == (990100001 + 100000 * KINDS.index(kind),
                                                          1)


def test_the_three_kinds_have_distinct_uids_numbers_and_descriptions(analysis, radiograph):
    made = [_make(kind, analysis, radiograph) for kind in KINDS]
    uids = [u for ds in made for u in (ds.SOPInstanceUID, ds.SeriesInstanceUID, *_tracking(ds))]
    assert len(set(uids)) == len(uids) == 6 + 5 + 3
    assert [ds.SeriesNumber for ds in made] == [990100001, 990200001, 990300001]
    # the synthetic-trained caution stays whole; the source description gives way (SC: fits)
    assert [ds.SeriesDescription for ds in made] == [
        "spinexr AI findings (SR) of series 1 L-SPINE SYNTHETIC-TRAINED",
        "spinexr AI findings (GSPS) of series 1 L-SPINE SYNTHETIC-TRAINED",
        "spinexr AI overlay (SC) of series 1 L-SPINE AP SYNTHETIC-TRAINED"]


def test_a_new_pack_version_makes_new_objects_in_a_new_series(analysis, radiograph):
    newer = make_analysis(radiograph, pack=replace(PACK, version="0.3.2"))
    for kind in KINDS:
        old, new = _make(kind, analysis, radiograph), _make(kind, newer, radiograph)
        assert old.SOPInstanceUID != new.SOPInstanceUID
        assert old.SeriesInstanceUID != new.SeriesInstanceUID
        assert not set(_tracking(old)) & set(_tracking(new))
        assert (old.SeriesNumber, old.SeriesDescription) == (new.SeriesNumber,
                                                             new.SeriesDescription)


def test_images_of_one_source_series_share_the_result_series(radiograph):
    header = radiograph.header
    other = _other_image(header, SOPInstanceUID="1.2.3.4.5", InstanceNumber=2)
    for kind in KINDS:
        one, two = (result_uids(h, "demo", "1.0", kind) for h in (header, other))
        assert one.sop_instance_uid != two.sop_instance_uid
        assert one.series_instance_uid == two.series_instance_uid
        assert (one.series_number, one.series_description) == (two.series_number,
                                                               two.series_description)
        assert (one.instance_number, two.instance_number) == (1, 2)


def test_two_source_series_get_different_series_numbers_and_descriptions(radiograph):
    header = radiograph.header
    lateral = _other_image(header, SeriesInstanceUID="1.2.3.4.6", SOPInstanceUID="1.2.3.4.7",
                           SeriesNumber=2, SeriesDescription="L-SPINE LAT")
    ap, lat = (result_uids(h, "demo", "1.0", "sr") for h in (header, lateral))
    assert ap.series_instance_uid != lat.series_instance_uid
    assert (ap.series_number, lat.series_number) == (990100001, 990100002)
    assert (ap.series_description, lat.series_description) == (
        "spinexr AI findings (SR) of series 1 L-SPINE AP",
        "spinexr AI findings (SR) of series 2 L-SPINE LAT")


@pytest.mark.parametrize(("changes", "number", "description"), [
    ({"SeriesNumber": None}, 9902, "spinexr AI findings (GSPS) of series L-SPINE AP"),
    ({"SeriesNumber": None, "SeriesDescription": None}, 9902, "spinexr AI findings (GSPS)"),
    ({"SeriesNumber": 0}, 9902, "spinexr AI findings (GSPS) of series L-SPINE AP"),
    ({"SeriesNumber": 1234567}, 990234567,
     "spinexr AI findings (GSPS) of series 1234567 L-SPINE AP"),
    ({"SeriesDescription": "Th\u1eaft l\u01b0ng nghi\u00eang\\x", "SpecificCharacterSet": None},
     990200001, "spinexr AI findings (GSPS) of series 1 That lung nghieng x"),  # ASCII, 2 values
    ({"SeriesDescription": "LUMBAR " * 9}, 990200001,
     "spinexr AI findings (GSPS) of series 1 LUMBAR LUMBAR LUMBAR"),
])
def test_series_number_and_description_fall_back_and_stay_valid(radiograph, changes, number,
                                                                description):
    ids = result_uids(_other_image(radiograph.header, **changes), "demo", "1.0", "gsps")
    assert (ids.series_number, ids.series_description) == (number, description)


def test_uid_root_puts_every_uid_under_it(analysis, radiograph):
    for kind in KINDS:
        ds = _make(kind, analysis, radiograph, uid_root=ROOT)
        uids = [ds.SOPInstanceUID, ds.SeriesInstanceUID, *_tracking(ds)]
        assert all(u.startswith(ROOT) and len(u) == 64 for u in uids)
        assert ds.SOPInstanceUID == result_uids(radiograph.header, PACK.name, PACK.version,
                                                kind, root=ROOT).sop_instance_uid
    files = render_outputs(analysis, radiograph, uid_root=ROOT)
    for name in ("sr.dcm", "gsps.dcm", "sc.dcm"):
        assert pydicom.dcmread(BytesIO(files[name])).SOPInstanceUID.startswith(ROOT)


@pytest.mark.parametrize("root", ["1.2.3", "1.02.3.", "1.a.", ".1.", "1..2.", "", "1." * 23])
def test_an_invalid_root_is_refused_by_name(root, analysis, radiograph):
    with pytest.raises(ConfigError, match=f"UID root {root!r}"):
        result_uids(radiograph.header, "demo", "1.0", "sr", root=root)
    with pytest.raises(ConfigError, match="UID root"):
        make_gsps(analysis, radiograph.header, uid_root=root)


def test_passed_in_uids_are_used_as_given(analysis, uncertain, radiograph):
    ids = ResultUids("1.2.3.4.100", "1.2.3.4.101", 42, 7, "my series")
    for kind in KINDS:
        ds = _make(kind, analysis, radiograph, uids=ids)
        assert _identity(ds) == ("1.2.3.4.101", "1.2.3.4.100", 42, 7,
                                 "my series SYNTHETIC-TRAINED")   # the caution is added
    ds = _make("sr", uncertain, radiograph, uids=ids, uid_root=ROOT)
    assert ds.SeriesDescription == "my series UNCERTAIN INPUT SYNTHETIC-TRAINED"
    assert _tracking(ds) == [tracking_uid("1.2.3.4.101", n, root=ROOT) for n in range(5)]


@pytest.mark.parametrize(("field", "value"), [
    ("sop_instance_uid", "1.02.3"), ("series_instance_uid", "1." * 40), ("series_number", 0),
    ("instance_number", 2**31), ("series_number", True), ("series_description", "a\\b"),
    ("series_description", "x" * 65)])
def test_invalid_result_uids_cannot_be_made(field, value):
    valid = dict(series_instance_uid="1.2.3", sop_instance_uid="1.2.4", series_number=1,
                 instance_number=1, series_description="ok")
    with pytest.raises(ConfigError, match=f"ResultUids.{field}"):
        ResultUids(**{**valid, field: value})


def test_every_uid_is_valid_with_and_without_a_root(analysis, radiograph):
    longest_root = "1.2.3." + "9" * 37 + "."       # 44 characters: 20 hash digits follow
    for root in (None, ROOT, longest_root):
        for kind in KINDS:
            ds = _make(kind, analysis, radiograph, uid_root=root)
            for uid in (ds.SOPInstanceUID, ds.SeriesInstanceUID, *_tracking(ds)):
                assert UID(uid).is_valid and len(uid) <= 64, uid
                assert root is not None or uid.startswith("2.25.")


def test_without_a_source_sop_uid_the_uid_is_random(radiograph):
    header = _other_image(radiograph.header, SOPInstanceUID=None)
    one, two = (result_uids(header, "demo", "1.0", "sr") for _ in range(2))
    assert one.sop_instance_uid != two.sop_instance_uid
    assert one.series_instance_uid == two.series_instance_uid
    assert UID(one.sop_instance_uid).is_valid


def test_tracking_uids_differ_by_object_and_index():
    uids = {tracking_uid(obj, n) for obj in ("1.2.3", "1.2.4") for n in range(3)}
    assert len(uids) == 6 and tracking_uid("1.2.3", 1) == tracking_uid("1.2.3", 1)


@pytest.mark.parametrize(("base", "suffix", "expected"), [
    ("spinexr AI findings (GSPS) of series 1 L-SPINE LAT", " UNCERTAIN INPUT",
     "spinexr AI findings (GSPS) of series 1 L-SPINE UNCERTAIN INPUT"),
    ("spinexr AI findings (GSPS) of series 1 L-SPINE LAT", " UNCERTAIN INPUT SYNTHETIC-TRAINED",
     "spinexr AI findings (GSPS) UNCERTAIN INPUT SYNTHETIC-TRAINED"),
    ("x" * 70, " UNCERTAIN INPUT", "x" * 48 + " UNCERTAIN INPUT"),
    ("short", "", "short"),
])
def test_fit_description_keeps_the_cautions_whole(base, suffix, expected):
    assert fit_description(base, suffix) == expected
    assert len(expected) <= 64


def test_writer_uids_flags_an_uncertain_input(radiograph):
    a = make_uncertain(radiograph, pack=replace(PACK, synthetic=False))
    ids = writer_uids(a, radiograph.header, "sc")
    assert ids.series_description == (
        "spinexr AI overlay (SC) of series 1 L-SPINE AP UNCERTAIN INPUT")
