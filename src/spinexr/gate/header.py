"""What the DICOM header says about an image: spine or not, which region, which view. Pure.

Reads the small PHI-free dict the reader keeps in ``Radiograph.meta`` (keys ``modality``,
``body_part_examined``, ``study_description``, ``series_description``, ``protocol_name``,
``view_position``; see :data:`spinexr.io.dicom_header.META_TAGS`) and matches its words against
the vocabulary of :mod:`spinexr.gate.header_terms`. Nothing here raises on odd values, and no
free text leaves: ``matched`` and ``reason`` quote vocabulary terms, never the header's text.

Regions are ``"cervical"``, ``"thoracic"``, ``"lumbar"`` (lumbosacral, sacrum and coccyx
included) and ``"whole"`` (the whole spine, a scoliosis series, or regions from cervical to
lumbar). A header naming two adjacent regions (CTSPINE, TLSPINE) has ``region`` ``None`` and
both in ``regions``: one of them alone would not be honest, and "whole" would overstate it.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from spinexr.gate.header_terms import (MODALITIES, NEAR_PARTS, NOT_ANATOMY, REGION_WORDS,
                                       REGIONS, SPECIFIC_VIEWS, TERMS, VIEW_TERMS)

#: meta key -> DICOM keyword, in the order evidence is trusted for the region and the view
#: (the series describes this image; the study may list several).
ATTRIBUTES = (("view_position", "ViewPosition"), ("series_description", "SeriesDescription"),
              ("protocol_name", "ProtocolName"), ("body_part_examined", "BodyPartExamined"),
              ("study_description", "StudyDescription"))
_ANATOMY = ATTRIBUTES[1:]
_SEPARATORS = re.compile(r"[\s_\-/.,;:()\[\]{}+&|\\'\"`*#=<>!?]+")
_LETTERS = str.maketrans({"Ł": "L", "ł": "L", "Đ": "D", "đ": "D", "Ø": "O", "ø": "O",
                          "Æ": "AE", "æ": "AE", "Œ": "OE", "œ": "OE", "ẞ": "SS", "ß": "SS",
                          "Þ": "TH", "þ": "TH", "Ħ": "H", "ħ": "H"})
_LEGACY_CODECS = ("utf-8", "gb18030", "shift_jis", "euc_kr", "iso8859_5", "cp1251")
_MAX_CHARS = 1024


@dataclass(frozen=True)
class HeaderEvidence:
    """The header's say on whether an image is a spine radiograph.

    Attributes:
        verdict: "spine", "other", "conflict" (header terms disagree, or name the spine and
            another part together) or "unknown" (the header names no body part).
        region: "cervical", "thoracic", "lumbar", "whole" or None (none named, or two
            adjacent regions: see ``regions``).
        view: "ap" (any frontal view), "lateral", "oblique", "odontoid", "flexion",
            "extension" or None.
        near_case: the other part named shows part of the spine (pelvis, hip, abdomen, neck,
            whole body), or the spine is named together with another part.
        modality: "radiograph" (CR, DX, RG, DR, RF, XA), "other" (CT, MR, US, NM, MG, IO,
            PX, ...) or "unknown" (absent, OT, unrecognised).
        matched: (DICOM keyword, vocabulary term) pairs, e.g. ("BodyPartExamined", "LSPINE").
        reason: one plain-English sentence.
        regions: every spine region named, cranial to caudal.
    """

    verdict: str
    region: str | None
    view: str | None
    near_case: bool
    modality: str
    matched: tuple[tuple[str, str], ...]
    reason: str
    regions: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Hit:
    keyword: str
    term: str
    verdict: str                # "spine" or "other"
    value: str | None           # spine region ("cervical+thoracic" for two) or body part


def header_evidence(meta: Mapping[str, Any]) -> HeaderEvidence:
    """Read the header values in ``meta`` (missing keys, None, bytes, numbers: all fine)."""
    try:
        texts = {key: _texts(meta.get(key)) for key, _ in ATTRIBUTES}
        modality_text = _texts(meta.get("modality"))
    except Exception:  # a Mapping whose .get raises: nothing usable was said
        texts, modality_text = {key: [] for key, _ in ATTRIBUTES}, []
    modality, code, implied = _modality(modality_text)
    hits: list[_Hit] = []
    regions_by_key: dict[str, set[str]] = {}
    together = False
    for key, keyword in _ANATOMY:
        found, regions = _anatomy(texts[key], keyword)
        hits += found
        if regions:
            regions_by_key[key] = regions
        together |= {h.verdict for h in found} == {"spine", "other"}
    if implied:
        hits.append(_Hit("Modality", code, "other", implied))
    view, view_hits = _view(texts)
    regions = _ordered(next(iter(regions_by_key.values()), set()))
    spine = [h for h in hits if h.verdict == "spine"]
    other = [h for h in hits if h.verdict == "other"]
    verdict = ("conflict" if spine and other else "spine" if spine else
               "other" if other else "unknown")
    near = bool(other) and (together or any(h.value in NEAR_PARTS for h in other))
    matched = tuple(dict.fromkeys((h.keyword, h.term) for h in (*hits, *view_hits)))
    if modality != "unknown" and not implied:
        matched = (("Modality", code), *matched)
    reason = _reason(verdict, hits, together, near, _summary(regions), regions, view,
                     modality, code)
    return HeaderEvidence(verdict, _summary(regions), view, near, modality, matched, reason,
                          regions)


# --------------------------------------------------------------------------- text


def normalise(text: str) -> str:
    """Upper case, accents stripped (Đ, Ł, ß and the like spelled out), separators -> spaces."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LETTERS))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_SEPARATORS.split(stripped.translate(_LETTERS).upper())).strip()


def _texts(value: Any) -> list[str]:
    """Readings of one header value: as given, and re-decoded when it looks like bytes of
    UTF-8, GB18030, Shift-JIS, EUC-KR or Cyrillic read as Latin-1 (how the reader keeps them)."""
    if value is None:
        return []
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _readings(bytes(value)[:_MAX_CHARS * 4].decode("latin-1"))
    if isinstance(value, str):
        return _readings(value[:_MAX_CHARS])
    if isinstance(value, (list, tuple)):
        return [t for v in value[:16] for t in _texts(v)]
    if isinstance(value, (int, float, bool)):
        return []
    try:
        return _readings(str(value)[:_MAX_CHARS])
    except Exception:
        return []


def _readings(text: str) -> list[str]:
    out = [text]
    if "\x1b" in text:
        try:
            out.append(text.encode("latin-1").decode("iso2022_jp"))
        except (UnicodeError, LookupError):
            pass
    elif any(0x80 <= ord(c) < 0x100 for c in text) and all(ord(c) < 0x100 for c in text):
        raw = text.encode("latin-1")
        for codec in _LEGACY_CODECS:
            try:
                out.append(raw.decode(codec))
            except UnicodeDecodeError:
                continue
            if codec == "utf-8":
                break  # Latin-1 text is almost never valid UTF-8: this is the reading
    return out


# --------------------------------------------------------------------------- matching


def _compile(terms: Iterable[str]) -> tuple[list[tuple[str, tuple[str, ...]]], list[str]]:
    """(word terms as normalised word tuples, longest first; CJK terms, longest first)."""
    words, cjk = [], []
    for term in terms:
        if _is_cjk(term):
            cjk.append(term)
            continue
        parts: list[str] = []
        for piece in term.split():
            normal = normalise(piece.rstrip("*")).split()
            parts += normal[:-1] + [normal[-1] + "*" * piece.endswith("*")]
        words.append((term, tuple(parts)))
    words.sort(key=lambda t: (-len(t[1]), -len(" ".join(t[1]))))
    cjk.sort(key=len, reverse=True)
    return words, cjk


def _is_cjk(term: str) -> bool:
    return any(unicodedata.name(c, "").startswith(("CJK", "HANGUL", "HIRAGANA", "KATAKANA"))
               for c in term)


_NOT_ANATOMY = _compile(NOT_ANATOMY)
_TERMS = _compile(TERMS)
_REGION_WORDS = _compile(REGION_WORDS)
_VIEWS = _compile(VIEW_TERMS)


def _find(text: str, compiled, used: list[bool] | None = None) -> list[str]:
    """Terms found in ``text`` in reading order; longer terms take their words first and no
    word serves two terms. ``used`` marks the words taken: pass the list a previous call
    filled to skip the words it took."""
    words, cjk = compiled
    tokens = normalise(text).split()
    used = [] if used is None else used
    if len(used) != len(tokens):
        used[:] = [False] * len(tokens)
    found: list[tuple[float, str]] = []
    for term, parts in words:
        for i in range(len(tokens) - len(parts) + 1):
            if not any(used[i:i + len(parts)]) and all(
                    _word(tokens[i + j], p) for j, p in enumerate(parts)):
                used[i:i + len(parts)] = [True] * len(parts)
                found.append((i, term))
    if cjk:
        rest = unicodedata.normalize("NFC", text).upper()
        for term in cjk:
            at = rest.find(term)
            if at >= 0:
                found.append((len(tokens) + at / (len(rest) + 1), term))
                rest = rest.replace(term, " " * len(term))
    return [term for _, term in sorted(found)]


def _word(token: str, pattern: str) -> bool:
    return token.startswith(pattern[:-1]) if pattern.endswith("*") else token == pattern


def _anatomy(texts: list[str], keyword: str) -> tuple[list[_Hit], set[str]]:
    """Body-part hits of one attribute, and the spine regions it names."""
    terms: dict[str, None] = {}
    spare: dict[str, None] = {}  # region words among the words no term took
    for text in texts:
        used: list[bool] = []
        _find(text, _NOT_ANATOMY, used)
        terms.update(dict.fromkeys(_find(text, _TERMS, used)))
        spare.update(dict.fromkeys(_find(text, _REGION_WORDS, used)))
    spine = [t for t in terms if TERMS[t][0] == "spine"]
    if not spine:
        return [_Hit(keyword, t, *TERMS[t]) for t in terms], set()
    # Beside a spine term, the words that are also a part alone (NGUC, BRUST, NECK) name a
    # region; other region words count only beside a bare spine word ("THORACIC SPINE", not
    # "L SPINE FULL SERIES").
    dual = [t for t in terms if TERMS[t][0] == "other" and t in REGION_WORDS]
    words = dual + (list(spare) if any(TERMS[t][1] is None for t in spine) else [])
    hits = [_Hit(keyword, t, "spine", REGION_WORDS[t]) if t in dual else
            _Hit(keyword, t, *TERMS[t]) for t in terms]
    hits += [_Hit(keyword, w, "spine", REGION_WORDS[w]) for w in words if w not in terms]
    regions = {r for h in hits if h.verdict == "spine" and h.value
               for r in h.value.split("+")}
    return hits, regions


def _ordered(regions: set[str]) -> tuple[str, ...]:
    return tuple(r for r in REGIONS if r in regions)


def _summary(regions: tuple[str, ...]) -> str | None:
    if "whole" in regions or {"cervical", "lumbar"} <= set(regions):
        return "whole"
    return regions[0] if len(regions) == 1 else None


def _modality(texts: list[str]) -> tuple[str, str | None, str | None]:
    """(kind, the code matched, the body part it implies)."""
    for text in texts:
        norm = normalise(text)
        for code in (norm, *norm.split()):
            if code in MODALITIES:
                kind, part = MODALITIES[code]
                return kind, code, part
    return "unknown", None, None


def _view(texts: dict[str, list[str]]) -> tuple[str | None, list[_Hit]]:
    """The first attribute (in ``ATTRIBUTES`` order) that names exactly one view."""
    for key, keyword in ATTRIBUTES:
        terms = list(dict.fromkeys(t for text in texts[key] for t in _find(text, _VIEWS)))
        if "EXT" in terms and any("oblique" in _views(t) for t in terms):
            terms.remove("EXT")  # "OBLIQUE EXT": external rotation, not extension
        views = {v for t in terms for v in _views(t)}
        views = (views & set(SPECIFIC_VIEWS)) or views
        if len(views) == 1:
            view = views.pop()
            return view, [_Hit(keyword, t, "view", view) for t in terms if view in _views(t)]
    return None, []


def _views(term: str) -> list[str]:
    return VIEW_TERMS[term].split("+")


# --------------------------------------------------------------------------- reason


def _quote(hits: list[_Hit]) -> str:
    """``BodyPartExamined 'L SPINE'; SeriesDescription 'COT SONG' 'THAT LUNG'``."""
    by_keyword: dict[str, dict[str, None]] = {}
    for h in hits:
        by_keyword.setdefault(h.keyword, {})[h.term] = None
    return "; ".join(f"{k} " + " ".join(f"'{t}'" for t in terms)
                     for k, terms in by_keyword.items())


def _spine_words(region: str | None, regions: tuple[str, ...]) -> str:
    if region:
        return f"{region} spine"
    if regions:
        return f"{' and '.join(regions)} spine"
    return "spine"


def _reason(verdict: str, hits: list[_Hit], together: bool, near: bool, region: str | None,
            regions: tuple[str, ...], view: str | None, modality: str, code: str | None) -> str:
    spine = [h for h in hits if h.verdict == "spine"]
    other = [h for h in hits if h.verdict == "other"]
    parts = sorted({h.value for h in other if h.value})
    if verdict == "spine":
        text = f"the header says {_spine_words(region, regions)} ({_quote(spine)})"
    elif verdict == "other":
        text = f"the header says {' and '.join(parts)}, not spine ({_quote(other)})"
        if near:
            text += ", a film that shows part of the spine"
    elif verdict == "conflict" and together:
        text = (f"the header names both {' and '.join(parts)} and the "
                f"{_spine_words(region, regions)} ({_quote(hits)})")
    elif verdict == "conflict":
        text = (f"the header disagrees: it names the {_spine_words(region, regions)} "
                f"({_quote(spine)}) and {' and '.join(parts)} ({_quote(other)})")
    else:
        text = "the header names no body part"
    if view and verdict != "other":
        text += f"; {view} view"
    if modality == "other":
        text += f"; modality {code} is not a projection radiograph"
    elif modality == "unknown" and verdict != "unknown":
        text += "; modality unknown"
    return text
