"""Model packs: one directory per pack, a manifest (the model card) and safetensors weights.

Layout::

    models/<name>/
      pack.json                  manifest: card, models, thresholds, metrics (see PACK_FORMAT)
      README.md                  the model card for people (written from the manifest)
      <model>.safetensors        one file per model, plain state_dict, fp16 where accuracy holds

Loading checks the format version, that every listed file exists and its sha256 matches, and
raises :class:`ModelPackError` naming the file otherwise. No pickles are read. The manifest is
parsed once into a typed :class:`~spinexr.models.manifest.PackManifest`.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from spinexr.models.card import curve_lines, history_lines, measured_lines
from spinexr.models.manifest import (PACK_FORMAT, PACK_FORMAT_VERSION, ModelPackError,
                                     ModelSpec, PackManifest, parse_manifest, upgrade)

MANIFEST = "pack.json"
#: Environment variable naming the folder that holds the packs (``demo``, ``vertebrae``, ...).
MODELS_ENV = "SPINEXR_MODELS"
__all__ = ["MANIFEST", "MODELS_ENV", "PACK_FORMAT", "PACK_FORMAT_VERSION", "ModelPack",
           "ModelPackError", "load_pack", "models_dir", "resolve_packs", "save_pack",
           "save_weights", "sha256_file"]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelPack:
    """A loaded, verified pack. ``manifest`` is the parsed, typed pack.json."""

    root: Path
    manifest: PackManifest
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def synthetic(self) -> bool:
        return self.manifest.synthetic

    def model_spec(self, key: str) -> ModelSpec:
        models = self.manifest.models
        if key not in models:
            raise ModelPackError(f"pack has no model {key!r} (has {sorted(models)})", str(self.root))
        return models[key]

    def state_dict(self, key: str) -> dict:
        """The float32 state dict of one model, read from its safetensors file."""
        from safetensors.torch import load_file

        path = self.root / self.model_spec(key).weights
        try:
            tensors = load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types for corrupt headers
            raise ModelPackError(f"cannot read weights: {exc}", str(path)) from exc
        return {k: v.float() for k, v in tensors.items()}

    def _loaded(self, key: str, model):
        """``model`` with the weights of ``key`` loaded (strict), or a ModelPackError."""
        spec = self.model_spec(key)
        try:
            model.load_state_dict(self.state_dict(key), strict=True)
        except RuntimeError as exc:
            raise ModelPackError(f"weights do not fit {spec.arch}: {exc}",
                                 str(self.root / spec.weights)) from exc
        return model

    def _kind(self, key: str, kind: str) -> ModelSpec:
        spec = self.model_spec(key)
        if spec.kind != kind:
            raise ModelPackError(f"model {key!r} is a {spec.kind!r}, not a {kind}",
                                 str(self.root))
        return spec

    def detector(self, key: str, *, device: str = "cpu", engine: str = "auto"):
        """Build the :class:`~spinexr.models.detector.Detector` stored under ``key`` (cached).

        ``engine``: ``"auto"`` runs ONNX Runtime on CPU when ``<pack>/onnx`` holds a current
        export of this model (see :func:`~spinexr.models.onnx_runtime.select_engine`), torch
        otherwise; ``"torch"`` / ``"onnx"`` force one. ``.model`` is the torch model either way.
        """
        if ("detector", key, device, engine) not in self._cache:
            from spinexr.models.detector import Detector
            from spinexr.models.onnx_runtime import select_engine
            from spinexr.models.yolo import build_detection_model

            spec = self._kind(key, "detector")
            runtime = select_engine(self, key, engine, device)
            model = self._loaded(key, build_detection_model(spec.arch, list(spec.labels)))
            self._cache[("detector", key, device, engine)] = Detector(
                model.float(), list(spec.labels), spec.input.size, device=device,
                engine=runtime, preprocess=spec.input.preprocess,
                tile_aspect=spec.input.tile_aspect)
        return self._cache[("detector", key, device, engine)]

    def image_detector(self, key: str, *, device: str = "cpu", engine: str = "auto"):
        """The detector stored under ``key`` as it runs on whole images: its :meth:`detector`,
        or a :class:`~spinexr.models.window_detector.WindowDetector` when its spec has
        ``windows`` (it then runs on vertebra windows found by the pack's vertebra detector,
        and on the whole image when ``windows.whole``)."""
        from spinexr.models.window_detector import WindowDetector

        return self._on_windows(key, self.detector(key, device=device, engine=engine),
                                WindowDetector, device, engine)

    def _on_windows(self, key: str, model, wrap, device: str, engine: str):
        """``model`` as stored under ``key``, wrapped by ``wrap(model, vertebra detector,
        crops)`` when its spec has ``windows`` (the pack's vertebra detector finds them)."""
        crops = self.model_spec(key).windows
        if crops is None:
            return model
        return wrap(model, self.detector(crops.detector, device=device, engine=engine), crops)

    def classifier(self, key: str, *, device: str = "cpu", engine: str = "auto"):
        """Build the :class:`~spinexr.models.classifier.Classifier` stored under ``key`` (cached).

        The spec names ``arch``, ``head``, ``labels`` and ``input`` (the
        :class:`~spinexr.models.classifier.Preprocess` fields), as the classify recipe writes.
        ``engine`` as in :meth:`detector`; ``.model`` stays the torch module (explanations
        need its gradients).
        """
        if ("classifier", key, device, engine) not in self._cache:
            from spinexr.models.classifier import Classifier, Preprocess, create_classifier
            from spinexr.models.onnx_runtime import select_engine

            spec = self._kind(key, "classifier")
            runtime = select_engine(self, key, engine, device)
            model = self._loaded(key, create_classifier(
                spec.arch, len(spec.labels), head=spec.head, in_chans=spec.input.channels))
            self._cache[("classifier", key, device, engine)] = Classifier(
                model.float(), list(spec.labels), spec.head,
                Preprocess.from_dict(spec.input.raw), device=device, name=key,
                temperature=spec.temperature, engine=runtime)
        return self._cache[("classifier", key, device, engine)]

    def grader(self, key: str, *, device: str = "cpu", engine: str = "auto"):
        """The grading head stored under ``key``: its :meth:`classifier`, or a
        :class:`~spinexr.models.spine_crops.WindowGrader` when its spec has ``windows`` (it is
        then run on vertebra windows found by the pack's vertebra detector)."""
        from spinexr.models.spine_crops import WindowGrader

        return self._on_windows(key, self.classifier(key, device=device, engine=engine),
                                WindowGrader, device, engine)

    def triage(self, *, device: str = "cpu", engine: str = "auto"):
        """The :class:`~spinexr.models.ensemble.TriageEnsemble` described by ``ensemble``;
        its members run on ``engine`` (see :meth:`classifier`)."""
        from spinexr.models.ensemble import TriageEnsemble

        spec = self.manifest.ensemble
        if spec is None:
            raise ModelPackError("pack has no 'ensemble' entry (not a triage pack)",
                                 str(self.root / MANIFEST))
        members = {k: self.classifier(k, device=device, engine=engine) for k in spec.members}
        ensemble = TriageEnsemble(members, spec.weights, spec.temperatures,
                                  spec.operating_points)
        if spec.windows is None:
            return ensemble
        from spinexr.models.spine_crops import WindowTriage

        return WindowTriage(ensemble, self.detector(spec.windows.detector, device=device,
                                                    engine=engine), spec.windows)


def load_pack(root: Path | str) -> ModelPack:
    """Read and verify a pack directory: the manifest (format version, fields; version 1 is
    upgraded on read), that every weights file exists and matches its sha256."""
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        raise ModelPackError(f"no {MANIFEST}: not a spinexr model pack", str(root))
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelPackError(f"unreadable manifest: {exc}", str(path)) from exc
    if not isinstance(doc, dict):
        raise ModelPackError("the manifest is not a JSON object", str(path))
    try:
        manifest = parse_manifest(doc)
    except ModelPackError as exc:
        raise ModelPackError(exc.reason, str(path)) from exc
    for key, spec in manifest.models.items():
        weights = root / spec.weights
        if not weights.is_file():
            raise ModelPackError(f"model {key!r}: weights file missing", str(weights))
        if spec.sha256 and sha256_file(weights) != spec.sha256:
            raise ModelPackError(f"model {key!r}: sha256 mismatch, the file is corrupt or was "
                                 "replaced without updating pack.json", str(weights))
    return ModelPack(root=root, manifest=manifest)


def models_dir(explicit: Path | str | None = None) -> Path:
    """Where the packs live: ``explicit`` if given, else ``$SPINEXR_MODELS``, else the
    installed package's default: the ``models`` folder of the checkout it is installed from
    (``pip install -e``, as ``make setup`` does). The same rule for the CLI, the service, the
    DICOM node and batch jobs."""
    if explicit:
        return Path(explicit)
    if os.environ.get(MODELS_ENV):
        return Path(os.environ[MODELS_ENV])
    return Path(__file__).resolve().parents[3] / "models"


def resolve_packs(pack: Path | str | None = None, vertebrae: Path | str | None = None, *,
                  models: Path | str | None = None) -> tuple[ModelPack, ModelPack | None]:
    """Load the main pack and the vertebra pack beside it.

    Args:
        pack: the main pack's folder; default ``<models>/demo``.
        vertebrae: the vertebra detector pack; default ``<models>/vertebrae`` when present.
            ``None`` is returned for it when it is the main pack itself.
        models: the folder of packs (see :func:`models_dir`).

    Raises:
        ModelPackError: a pack folder is missing or invalid (the message names it and says
            how to point at another one).
    """
    base = models_dir(models)
    pack_dir = Path(pack) if pack else base / "demo"
    if not pack_dir.is_dir():
        raise ModelPackError(f"model pack folder not found; pass --pack DIR or set {MODELS_ENV}",
                             str(pack_dir))
    vert_dir = Path(vertebrae) if vertebrae else (base / "vertebrae" if (base / "vertebrae")
                                                  .is_dir() else None)
    if vert_dir is not None and not vert_dir.is_dir():
        raise ModelPackError("vertebra pack folder not found; pass --vertebrae DIR",
                             str(vert_dir))
    main = load_pack(pack_dir)
    same = vert_dir is None or vert_dir.resolve() == pack_dir.resolve()
    return main, None if same else load_pack(vert_dir)


def save_weights(state_dict: Mapping[str, Any], path: Path, *, fp16: bool = True) -> str:
    """Write a state dict as safetensors (fp16 floats when ``fp16``); returns its sha256."""
    import torch
    from safetensors.torch import save_file

    tensors = {k: (v.detach().to(torch.float16) if fp16 and v.is_floating_point() else v.detach())
               .contiguous().cpu() for k, v in state_dict.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"format": "pt"})
    return sha256_file(path)


def save_pack(root: Path, manifest: Mapping[str, Any]) -> Path:
    """Write pack.json (sorted, stable) and README.md (the card) into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    # roles a recipe did not state are inferred as on reading a version-1 pack
    full = upgrade({**manifest, "format": PACK_FORMAT, "format_version": PACK_FORMAT_VERSION})
    parse_manifest(full)                          # refuse to write a pack that cannot load
    (root / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    (root / "README.md").write_text(render_card(full))
    return root


def render_card(manifest: Mapping[str, Any]) -> str:
    """The model card as Markdown, from the manifest."""
    card = manifest.get("card", {})
    lines = [f"# Model pack `{manifest['name']}` {manifest['version']}", ""]
    if manifest.get("synthetic"):
        lines += ["> **Trained on synthetic phantom images. Not for clinical use.**", ""]
    for title, key in (("Intended use", "intended_use"), ("Training data", "training_data"),
                       ("Training command", "command"), ("Limitations", "limitations"),
                       ("Licence and attribution", "licence")):
        if card.get(key):
            body = f"```\n{card[key]}\n```" if key == "command" else str(card[key])
            lines += [f"## {title}", "", body, ""]
    lines += ["## Models", ""]
    for key, spec in manifest.get("models", {}).items():
        extra = "".join(
            [f", part `{spec['part']}`" if spec.get("part") else "",
             f", run on vertebra windows found by `{spec['windows'].get('detector')}`"
             if spec.get("windows") else "",
             f", for {' / '.join(spec['regions'])} studies only" if spec.get("regions") else ""])
        lines.append(f"- `{key}` ({spec.get('role', 'no role')}): {spec.get('kind')} "
                     f"`{spec.get('arch')}`, input "
                     f"{spec.get('input', {}).get('size')} px, labels {list(spec.get('labels', []))}, "
                     f"weights `{spec.get('weights')}` ({spec.get('dtype')}){extra}")
    lines += ["", "## Measured metrics", ""]
    measured = set(card.get("measured") or ())          # shown in their own section
    for split, values in manifest.get("metrics", {}).items():
        if split in measured:
            continue
        shown = ", ".join(f"{k} = {v:.4f}" if isinstance(v, float) else f"{k} = {v}"
                          for k, v in values.items() if not isinstance(v, (dict, list)))
        lines.append(f"- {split}: {shown}")
    lines += (measured_lines(manifest) + _gate_card(manifest) + curve_lines(manifest)
              + history_lines(manifest))
    return "\n".join(lines) + "\n"


def _gate_card(manifest: Mapping[str, Any]) -> list[str]:
    """The input gate's section of the card: what it fuses, its thresholds, its test table."""
    gate = manifest.get("gate")
    if not gate:
        return []
    card = manifest.get("card", {})
    lines = ["", "## Input gate", "",
             f"P(spine) = logistic fusion of {', '.join(gate['features'])} (classifier "
             f"`{gate['classifier']}`, detector `{gate['detector']}`); accepted at >= "
             f"{gate['accept']:.3f}, uncertain (analysed with a warning) at >= "
             f"{gate['uncertain']:.3f}, refused below. Fitted on validation data only.", ""]
    if card.get("gate_data"):
        lines += [str(card["gate_data"]), ""]
    if card.get("gate_command"):
        lines += ["```", str(card["gate_command"]), "```", ""]
    test = manifest.get("gate_report", {}).get("test", {})
    rows = [(k, v) for k, v in test.items() if isinstance(v, Mapping)]
    if rows:
        lines += ["| test images | n | accepted | uncertain | refused |", "|---|---|---|---|---|"]
        lines += [f"| {k} | {v['n']} | {v['accepted']} | {v['uncertain']} | {v['refused']} |"
                  for k, v in rows]
    return lines
