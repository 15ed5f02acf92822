"""Deterministic identities of the derived DICOM objects (SR, GSPS, Secondary Capture).

Re-running an image, or retrying a send, must give the same SOP Instance UID, or a PACS
stores the object twice. So every UID here is a hash of what the object is derived from:

- SOP Instance UID: source SOP Instance UID + pack name + pack version + kind;
- Series Instance UID: source Series Instance UID + pack name + pack version + kind, so the
  results of all images of one source series share one result series per kind, and different
  source series get different result series;
- tracking UIDs (SR Tracking Identifier, GSPS graphic tracking): the object's SOP Instance
  UID + the finding's index.

Without an organisation root a UID is ``2.25.<integer of a name-based UUID>`` (ISO/IEC
9834-8, PS3.5 B.2), the UUID being :func:`uuid.uuid5` of the inputs; with one it is the root
followed by the digits of a SHA-512 of the inputs (:func:`pydicom.uid.generate_uid`). Note
that ``generate_uid(prefix=None, entropy_srcs=...)`` is *random* in pydicom 3 (it ignores
``entropy_srcs``), hence the UUID is made here. Pure: no I/O, no globals read.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, replace

from pydicom import Dataset
from pydicom.config import IGNORE
from pydicom.multival import MultiValue
from pydicom.uid import UID, generate_uid

from spinexr.errors import ConfigError
from spinexr.report import _dicom
from spinexr.types import Analysis

#: Kind -> (series number without a source Series Number, description of the kind).
KINDS = {"sr": (_dicom.SR_SERIES_NUMBER, "AI findings (SR)"),
         "gsps": (_dicom.GSPS_SERIES_NUMBER, "AI findings (GSPS)"),
         "sc": (_dicom.SC_SERIES_NUMBER, "AI overlay (SC)")}
#: Series Number = kind number * SERIES_FACTOR + source Series Number (its last 5 digits).
SERIES_FACTOR = 100_000
#: Longest organisation root accepted: leaves at least 20 hash digits in a 64-character UID
#: (pydicom allows 54, which leaves 10 digits: collisions become likely in a large archive).
MAX_ROOT_LENGTH = 44
#: uuid5(NAMESPACE_OID, "spinexr DICOM results"): changing it changes every derived UID.
_NAMESPACE = uuid.UUID("91e5b6df-ff90-559d-bddc-dc563e2e95a2")
_ROOT = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*\.")
_IS_MAX = 2**31 - 1
_LO_MAX = 64


@dataclass(frozen=True)
class ResultUids:
    """The identity of one derived object; validated on construction.

    Attributes:
        series_instance_uid, sop_instance_uid: valid DICOM UIDs (at most 64 characters).
        series_number, instance_number: integers in ``[1, 2**31 - 1]`` (IS; highdicom
            refuses 0).
        series_description: at most 64 characters, no backslash or control character (LO),
            without the cautions the writers append (see :func:`fit_description`).
    """

    series_instance_uid: str
    sop_instance_uid: str
    series_number: int
    instance_number: int
    series_description: str

    def __post_init__(self) -> None:
        for name in ("series_instance_uid", "sop_instance_uid"):
            value = getattr(self, name)
            if not isinstance(value, str) or not UID(value, validation_mode=IGNORE).is_valid:
                raise ConfigError(f"ResultUids.{name} {value!r} is not a valid DICOM UID "
                                  "(digits and dots, no leading zeros, at most 64 characters)")
        for name in ("series_number", "instance_number"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _IS_MAX:
                raise ConfigError(f"ResultUids.{name} is {value!r}; give an integer from 1 to "
                                  f"{_IS_MAX}")
        text = self.series_description
        if (not isinstance(text, str) or len(text) > _LO_MAX or "\\" in text
                or any(ord(c) < 32 for c in text)):
            raise ConfigError(f"ResultUids.series_description {text!r} is not a Long String: "
                              "at most 64 characters, no backslash or control character")


def result_uids(header: Dataset, pack_name: str, pack_version: str, kind: str, *,
                root: str | None = None) -> ResultUids:
    """The identity of the ``kind`` object derived from the image of ``header``.

    Args:
        header: the source image's header; read, never modified.
        pack_name, pack_version: the model pack that made the result (a new version makes
            new objects, not replacements).
        kind: ``"sr"``, ``"gsps"`` or ``"sc"``.
        root: the organisation's UID root, e.g. ``"1.2.826.0.1.3680043.10.1234."``; ``None``
            for ``2.25.`` UUID-derived UIDs.

    Returns:
        Series Number ``kind number * 100000 + source Series Number % 100000`` (e.g.
        990100003 for an SR of source series 3; 9901/9902/9903 without a source Series
        Number); Series Description ``"spinexr AI findings (SR) of series 3 L-SPINE LAT"``
        (source number and description as present, in the source's character set);
        Instance Number the source's when it is from 1 to 2**31 - 1, else 1.
        Without a source SOP Instance UID (resp. Series Instance UID) the SOP (resp.
        Series) Instance UID is random, so it changes from call to call.

    Raises:
        ConfigError: an unknown ``kind`` or an invalid ``root``.
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown result kind {kind!r}; give one of {', '.join(KINDS)}")
    root = check_root(root)
    fallback_number, label = KINDS[kind]
    derived = (str(pack_name), str(pack_version), kind)
    series_number = _positive_int(header.get("SeriesNumber"))
    instance_number = _positive_int(header.get("InstanceNumber"))
    return ResultUids(
        series_instance_uid=_derived_uid(header.get("SeriesInstanceUID"), derived, root),
        sop_instance_uid=_derived_uid(header.get("SOPInstanceUID"), derived, root),
        series_number=(fallback_number if series_number is None
                       else fallback_number * SERIES_FACTOR + series_number % SERIES_FACTOR),
        instance_number=instance_number or 1,
        series_description=_description(label, header))


def tracking_uid(object_uid: str, index: int, *, root: str | None = None) -> str:
    """The tracking UID of finding ``index`` (0: the image-level result) of the object
    ``object_uid`` (its SOP Instance UID): the same for the same object and index.

    Raises:
        ConfigError: an invalid ``root``.
    """
    return _uid(("tracking", str(object_uid), str(int(index))), check_root(root))


def check_root(root: str | None) -> str | None:
    """``root`` if it is a usable UID root (digits and dots, no leading zeros, ends with a
    dot, at most :data:`MAX_ROOT_LENGTH` characters), else ConfigError naming it."""
    if root is None:
        return None
    if not isinstance(root, str) or not _ROOT.fullmatch(root) or len(root) > MAX_ROOT_LENGTH:
        raise ConfigError(f"UID root {root!r} is not usable: give digits and dots without "
                          f"leading zeros, ending with '.', at most {MAX_ROOT_LENGTH} "
                          "characters (e.g. '1.2.826.0.1.3680043.10.1234.')")
    return root


def fit_description(base: str, suffix: str) -> str:
    """``base + suffix`` in 64 characters: ``suffix`` (the cautions, e.g. ``" UNCERTAIN
    INPUT"``) is kept whole and ``base`` loses whole words from its end, with a dangling
    ``" of series"`` or ``" of"``; characters are cut only when no word boundary fits."""
    budget = _LO_MAX - len(suffix)
    if len(base) <= budget:
        return base + suffix
    if budget <= 0:
        return suffix[:_LO_MAX]
    cut = base[:budget + 1]
    head = cut.rsplit(" ", 1)[0] if " " in cut else base[:budget]
    return re.sub(r"( of( series)?)+$", "", head.rstrip()) + suffix


def _derived_uid(source_uid, derived: tuple[str, ...], root: str | None) -> str:
    if not source_uid:      # nothing stable to derive from
        return str(generate_uid(prefix=root))
    return _uid((str(source_uid), *derived), root)


def _uid(parts: tuple[str, ...], root: str | None) -> str:
    name = json.dumps(parts)            # unambiguous: ("ab", "c") differs from ("a", "bc")
    if root is None:
        return f"2.25.{uuid.uuid5(_NAMESPACE, name).int}"
    return str(generate_uid(prefix=root, entropy_srcs=[name]))


def _positive_int(value) -> int | None:
    """An IS value as an int when it is one number from 1 to 2**31 - 1, else None."""
    try:
        number = int(value)
    except (TypeError, ValueError):     # absent, empty, multi-valued, not a number
        return None
    return number if 1 <= number <= _IS_MAX else None


def _description(label: str, header: Dataset) -> str:
    number = _positive_int(header.get("SeriesNumber"))
    raw = header.get("SeriesDescription")            # a backslash made it multi-valued
    raw = " ".join(map(str, raw)) if isinstance(raw, (list, MultiValue)) else str(raw or "")
    text = " ".join("".join(c if c.isprintable() else " " for c in raw).split())
    source = " ".join(p for p in (str(number) if number else "", text) if p)
    base = f"spinexr {label}" + (f" of series {source}" if source else "")
    return fit_description(_dicom.encodable(base, header), "")


def writer_uids(a: Analysis, header: Dataset, kind: str, *, given: ResultUids | None = None,
                root: str | None = None) -> ResultUids:
    """What a writer files its ``kind`` object under: ``given`` (the caller's), else
    :func:`result_uids` of ``a``'s pack, with the Series Description made encodable in the
    source's character set and ending with ``a``'s cautions (:func:`fit_description`).

    Raises:
        ConfigError: an invalid ``root`` (checked even when ``given``: tracking UIDs use it).
    """
    root = check_root(root)
    ids = given or result_uids(header, a.pack.name, a.pack.version, kind, root=root)
    text = fit_description(_dicom.encodable(ids.series_description, header),
                           _dicom.description_flags(a))
    return replace(ids, series_description=text)
