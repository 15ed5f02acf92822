"""A pack's manifest (``pack.json``) as typed data, parsed and validated once when a pack loads.

:func:`parse_manifest` turns the JSON document into a :class:`PackManifest`: one
:class:`ModelSpec` per model with its **role** (what the analyzer does with it), the triage
:class:`EnsembleSpec`, the card, metrics and the fitted input gate. Every other layer reads these
types, never the raw dict.

Format versions: version 2 stores each model's ``role``. Version 1 manifests (packs written
before roles existed) are upgraded on read: roles are inferred once, here, from kinds, labels,
parts and ensemble membership (:func:`infer_role`). Anything else fails with one
:class:`~spinexr.models.pack.ModelPackError` naming the file and the field.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from spinexr.errors import ConfigError, SpinexrError
from spinexr.labels import LESION_CLASSES, STENOSIS_GRADES, STENOSIS_REGIONS
from spinexr.models.spine_crops import CropSpec

PACK_FORMAT = "spinexr-pack"
#: What :func:`~spinexr.models.pack.save_pack` writes; :data:`READABLE_VERSIONS` load.
PACK_FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)

#: Roles of the models in a pack, and the kind each must be.
ROLES: dict[str, str] = {
    "vertebra_detector": "detector",      # vertebral bodies: gate, levels, windows
    "lesion_detector": "detector",        # the 7 VinDr-SpineXR lesion classes
    "triage_member": "classifier",        # a member of the triage ensemble
    "grader": "classifier",               # image-level grade (degeneration, cervical injury)
    "spine_classifier": "classifier",     # the input gate's spine / other classifier
    "mri_region_detector": "detector",    # MRI: central canal, lateral recesses, foramina
    "mri_region_grader": "classifier",    # MRI: stenosis grade of each region's crop
}
KINDS = ("classifier", "detector")
VERTEBRA_LABELS = ("Vertebra",)


class ModelPackError(SpinexrError):
    """A model pack is missing, incomplete, corrupt or of an unknown format version (while
    parsing a manifest, ``source`` is the field; :func:`~spinexr.models.pack.load_pack`
    re-raises it naming the file)."""

    code = "model_pack_error"


@dataclass(frozen=True)
class DetectorThresholds:
    """A detector's operating thresholds: box confidence and NMS IoU."""

    conf: float = 0.25
    iou: float = 0.6


@dataclass(frozen=True)
class InputSpec:
    """A model's input contract. ``size`` is the square input side in pixels; ``preprocess``
    a whole-image contrast step (``"equalize"``) detectors apply before letterboxing;
    ``tile_aspect`` the aspect ratio above which a detector also runs on overlapping tiles.
    ``raw`` keeps every stored field (a classifier's :class:`Preprocess` is built from it)."""

    size: int
    channels: int = 1
    preprocess: str | None = None
    tile_aspect: float | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class ModelSpec:
    """One model of a pack.

    Attributes:
        key: its name in the pack; ``role``: see :data:`ROLES`; ``kind``: classifier/detector.
        arch, labels, head: architecture (timm or ultralytics name), class names, classifier
            head (``binary``, ``softmax``, ``ordinal``; ``None`` for detectors).
        weights, sha256, dtype: the safetensors file, its checksum, its stored float type.
        input: the input contract; ``thresholds``: a detector's conf/IoU.
        part: the training part that made it (e.g. ``degeneration``); ``task`` the grade's
            name in results (``part`` or the key).
        temperature: calibration temperature of a classifier's logits.
        windows: the vertebra-window crops it runs on, or ``None`` for whole images.
        regions: spine regions it applies to (e.g. cervical injury: ``("cervical",)``), or
            ``None`` for all. ``crop``: region-crop settings of an MRI region grader.
        target: what the model was trained to predict (e.g. ``grades.degeneration``, ``label``);
            ``class_map``: dataset class name -> the model's label, for evaluation.
    """

    key: str
    role: str
    kind: str
    arch: str
    labels: tuple[str, ...]
    weights: str
    input: InputSpec
    head: str | None = None
    sha256: str | None = None
    dtype: str | None = None
    part: str | None = None
    temperature: float = 1.0
    thresholds: DetectorThresholds = DetectorThresholds()
    windows: CropSpec | None = None
    regions: tuple[str, ...] | None = None
    crop: Mapping[str, Any] | None = None
    target: str | None = None
    class_map: Mapping[str, str | None] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def task(self) -> str:
        return self.part or self.key


@dataclass(frozen=True)
class EnsembleSpec:
    """The triage ensemble: members (model keys), weights, temperatures, operating points
    (name -> threshold on the fused probability) and the optional vertebra windows."""

    members: tuple[str, ...]
    weights: Mapping[str, float]
    temperatures: Mapping[str, float] | None = None
    operating_points: Mapping[str, float] = field(default_factory=dict)
    windows: CropSpec | None = None


@dataclass(frozen=True)
class PackManifest:
    """A parsed pack.json. ``raw`` is the document as stored (for writers that derive a new
    pack from this one); readers use the typed fields."""

    name: str
    version: str
    format_version: int
    synthetic: bool
    models: Mapping[str, ModelSpec]
    ensemble: EnsembleSpec | None = None
    card: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    gate: Mapping[str, Any] | None = None
    test_set: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def with_role(self, role: str) -> tuple[ModelSpec, ...]:
        """The models holding ``role``, in manifest order."""
        if role not in ROLES:
            raise ConfigError(f"role {role!r} is not one of {sorted(ROLES)}", "role")
        return tuple(s for s in self.models.values() if s.role == role)

    def first(self, role: str) -> ModelSpec | None:
        """The first model holding ``role``, or ``None``."""
        found = self.with_role(role)
        return found[0] if found else None


def infer_role(key: str, spec: Mapping[str, Any], members: frozenset[str]) -> str:
    """The role of a version-1 model spec (which stored none), from its kind and labels."""
    labels, part = tuple(spec.get("labels") or ()), spec.get("part")
    if spec.get("kind") == "detector":
        if labels == tuple(LESION_CLASSES):
            return "lesion_detector"
        if labels == VERTEBRA_LABELS:
            return "vertebra_detector"
        if part == "stenosis_regions" or labels == tuple(STENOSIS_REGIONS):
            return "mri_region_detector"
        raise ModelPackError(f"model {key!r}: a detector of {list(labels)} has no known role; "
                            "add \"role\" to its spec")
    if key in members:
        return "triage_member"
    if part == "stenosis_grades" or labels == tuple(STENOSIS_GRADES):
        return "mri_region_grader"   # by its classes when trained alone (no part yet)
    if part == "gate" or labels == ("other", "spine"):
        return "spine_classifier"
    return "grader"


def upgrade(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A version-1 document as version 2 (roles filled in); version 2 unchanged (a copy)."""
    version = doc.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ModelPackError(f"format_version {version!r}; this spinexr reads "
                            f"{list(READABLE_VERSIONS)}")
    members = frozenset((doc.get("ensemble") or {}).get("members", ()))
    models = {k: dict(s) if not isinstance(s, Mapping) or "role" in s
              else {**s, "role": infer_role(k, s, members)}
              for k, s in dict(doc.get("models") or {}).items()}
    return {**doc, "models": models, "format_version": PACK_FORMAT_VERSION}


def parse_manifest(doc: Mapping[str, Any]) -> PackManifest:
    """Validate a pack.json document (upgrading version 1) into a :class:`PackManifest`.

    Raises:
        ModelPackError: a missing or ill-typed field (the message names it).
    """
    if doc.get("format") != PACK_FORMAT:
        raise ModelPackError(f"format {doc.get('format')!r} is not {PACK_FORMAT!r}")
    source_version = int(doc["format_version"]) if isinstance(doc.get("format_version"), int) \
        else doc.get("format_version")
    doc = upgrade(doc)
    for name in ("name", "version"):
        if not isinstance(doc.get(name), str) or not doc[name]:
            raise ModelPackError(f"{name!r} must be a non-empty string")
    models = {k: _model(k, s) for k, s in dict(doc.get("models") or {}).items()}
    ensemble = _ensemble(doc.get("ensemble"), models)
    return PackManifest(
        name=doc["name"], version=doc["version"], format_version=source_version,
        synthetic=bool(doc.get("synthetic", False)), models=models, ensemble=ensemble,
        card=dict(doc.get("card") or {}), metrics=dict(doc.get("metrics") or {}),
        gate=dict(doc["gate"]) if doc.get("gate") else None,
        test_set=dict(doc["test_set"]) if doc.get("test_set") else None, raw=doc)


def _model(key: str, s: Any) -> ModelSpec:
    where = f"models.{key}"
    if not isinstance(s, Mapping):
        raise ModelPackError(f"{where} must be an object")
    for name in ("kind", "arch", "labels", "weights", "input", "role"):
        if not s.get(name):
            raise ModelPackError(f"{where}.{name} is missing")
    kind, role = s["kind"], s["role"]
    if kind not in KINDS:
        raise ModelPackError(f"{where}.kind {kind!r} is not one of {KINDS}")
    if ROLES.get(role) != kind:
        raise ModelPackError(f"{where}.role {role!r}: a {kind} can be one of "
                            f"{sorted(r for r, k in ROLES.items() if k == kind)}")
    if kind == "classifier" and not s.get("head"):
        raise ModelPackError(f"{where}.head is missing (a classifier needs one)")
    try:
        inp = dict(s["input"])
        spec_input = InputSpec(size=int(inp["size"]), channels=int(inp.get("channels", 1)),
                               preprocess=inp.get("preprocess"),
                               tile_aspect=(float(inp["tile_aspect"])
                                            if inp.get("tile_aspect") else None), raw=inp)
        th = dict(s.get("thresholds") or {})
        return ModelSpec(
            key=key, role=role, kind=kind, arch=str(s["arch"]),
            labels=tuple(str(x) for x in s["labels"]), weights=str(s["weights"]),
            input=spec_input, head=s.get("head"), sha256=s.get("sha256"), dtype=s.get("dtype"),
            part=s.get("part"), temperature=float(s.get("temperature", 1.0)),
            thresholds=DetectorThresholds(float(th.get("conf", 0.25)),
                                          float(th.get("iou", 0.6))),
            windows=CropSpec.from_dict(s["windows"]) if s.get("windows") else None,
            regions=tuple(s["regions"]) if s.get("regions") else None,
            crop=dict(s["crop"]) if s.get("crop") else None,
            target=str(s["target"]) if s.get("target") else None,
            class_map={str(k): None if v is None else str(v)
                       for k, v in dict(s.get("class_map") or {}).items()},
            raw=dict(s))
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise ModelPackError(f"{where}: {exc}") from exc


def _ensemble(e: Any, models: Mapping[str, ModelSpec]) -> EnsembleSpec | None:
    if not e:
        return None
    members = tuple(e.get("members") or ())
    missing = [m for m in members if m not in models]
    if not members or missing:
        raise ModelPackError(f"ensemble.members {list(members)}: "
                            + (f"{missing} not in models" if missing else "empty"))
    try:
        return EnsembleSpec(
            members=members, weights={k: float(v) for k, v in dict(e["weights"]).items()},
            temperatures=({k: float(v) for k, v in dict(e["temperatures"]).items()}
                          if e.get("temperatures") else None),
            operating_points={k: float(v) for k, v in
                              dict(e.get("operating_points") or {}).items()},
            windows=CropSpec.from_dict(e["windows"]) if e.get("windows") else None)
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise ModelPackError(f"ensemble: {exc}") from exc
