"""Which received images are analysed: a filter on the header, before any pixel is decoded.

A film sent to the node by mistake (a chest, a hand) is acknowledged to the sender (C-STORE
success: the modality must not retry it), skipped and audited, not analysed. The decision reads
only the header values spinexr's reader keeps (:data:`spinexr.io.dicom_header.META_TAGS`) and
reports a reason that quotes the configuration or coded values (Modality, Body Part Examined),
never the free-text descriptions, which a person may have typed anything into.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from pydicom import Dataset

from spinexr.errors import ConfigError
from spinexr.gate.header import header_evidence, normalise
from spinexr.io.dicom_header import META_TAGS, text

_DESCRIPTIONS = ("study_description", "series_description", "protocol_name")


@dataclass(frozen=True)
class FilterConfig:
    """The incoming filter. Every rule must pass for an image to be analysed.

    Attributes:
        modalities: Modality (0008,0060) values analysed; an image without one passes.
        body_parts: if given, Body Part Examined (0018,0015) must be one of these; an image
            without one passes unless ``require_body_part``.
        skip_body_parts: Body Part Examined values always skipped.
        skip_words: words or phrases that skip an image when a description (study, series,
            protocol name) contains them (case and accents ignored, whole words).
        header_check: skip images whose header names a body part other than the spine only
            (the gate's header vocabulary: CHEST, HAND, SKULL, ..., in 20 languages).
        require_body_part: skip images without Body Part Examined.
    """

    modalities: tuple[str, ...] = ("CR", "DX", "DR", "RG", "MR")
    body_parts: tuple[str, ...] = ()
    skip_body_parts: tuple[str, ...] = ()
    skip_words: tuple[str, ...] = ()
    header_check: bool = True
    require_body_part: bool = False

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "filter") -> "FilterConfig":
        """From a JSON/YAML mapping with the attribute names as keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown filter key(s) {unknown}; known: {sorted(known)}", source)
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in ("header_check", "require_body_part"):
                if not isinstance(value, bool):
                    raise ConfigError(f"{key} must be true or false, not {value!r}", source)
                kwargs[key] = value
            else:
                if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                    raise ConfigError(f"{key} must be a list of strings, not {value!r}", source)
                kwargs[key] = tuple(v.strip().upper() for v in value if v.strip())
        return cls(**kwargs)

    @classmethod
    def load(cls, path: Path) -> "FilterConfig":
        """From a ``.json`` or ``.yaml`` file."""
        try:
            raw = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the filter file ({exc.strerror or exc})",
                              str(path)) from None
        try:
            if Path(path).suffix.lower() in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(raw)
            else:
                data = json.loads(raw)
        except Exception as exc:  # noqa: BLE001 - any parse error is the file's fault
            raise ConfigError(f"not valid JSON/YAML ({exc})", str(path)) from None
        if not isinstance(data, dict):
            raise ConfigError("the filter file must hold a mapping", str(path))
        return cls.from_mapping(data, str(path))


@dataclass(frozen=True)
class FilterDecision:
    """``analyse`` or not, with a reason free of patient data (``rule``: which rule)."""

    analyse: bool
    rule: str = ""
    reason: str = ""


def header_meta(ds: Dataset) -> dict[str, str | None]:
    """The header values the filter and the gate read (no patient attributes)."""
    return {key: text(ds, tag) for key, tag in META_TAGS}


def decide(meta: Mapping[str, Any], config: FilterConfig) -> FilterDecision:
    """Apply ``config`` to the header values ``meta`` (see :func:`header_meta`)."""
    modality = (meta.get("modality") or "").strip().upper()
    if modality and config.modalities and modality not in config.modalities:
        return FilterDecision(False, "modality", f"Modality {modality!r} is not one of "
                                                 f"{list(config.modalities)}")
    part = (meta.get("body_part_examined") or "").strip().upper()
    if part and part in config.skip_body_parts:
        return FilterDecision(False, "body_part", f"Body Part Examined {part!r} is skipped")
    if config.body_parts and part and part not in config.body_parts:
        return FilterDecision(False, "body_part", f"Body Part Examined {part!r} is not one "
                                                  f"of {list(config.body_parts)}")
    if not part and config.require_body_part:
        return FilterDecision(False, "body_part", "no Body Part Examined")
    words = [normalise(w) for w in config.skip_words]
    for key in _DESCRIPTIONS:
        value = f" {normalise(str(meta.get(key) or ''))} "
        hit = next((w for w in words if w and f" {w} " in value), None)
        if hit:
            return FilterDecision(False, "description", f"{key} contains the skip word "
                                                        f"{hit!r}")
    if config.header_check:
        evidence = header_evidence(meta)
        if evidence.verdict == "other" and not evidence.near_case:
            return FilterDecision(False, "header", evidence.reason)
    return FilterDecision(True)


__all__ = ["FilterConfig", "FilterDecision", "decide", "header_meta"]
