"""Model packs: one directory per pack, a manifest (the model card) and safetensors weights.

Layout::

    models/<name>/
      pack.json                  manifest: card, models, thresholds, metrics (see PACK_FORMAT)
      README.md                  the model card for people (written from the manifest)
      <model>.safetensors        one file per model, plain state_dict, fp16 where accuracy holds

Loading checks the format version, that every listed file exists and its sha256 matches, and
raises :class:`~spinexr.errors.ModelPackError` naming the file otherwise. No pickles are read.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from spinexr.errors import SpinexrError

PACK_FORMAT = "spinexr-pack"
PACK_FORMAT_VERSION = 1
MANIFEST = "pack.json"


class ModelPackError(SpinexrError):
    """A model pack is missing, incomplete, corrupt or of an unknown format version."""

    code = "model_pack_error"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelPack:
    """A loaded, verified pack. ``manifest`` is the parsed pack.json."""

    root: Path
    manifest: Mapping[str, Any]
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def synthetic(self) -> bool:
        return bool(self.manifest.get("synthetic", False))

    def model_spec(self, key: str) -> Mapping[str, Any]:
        models = self.manifest.get("models", {})
        if key not in models:
            raise ModelPackError(f"pack has no model {key!r} (has {sorted(models)})", str(self.root))
        return models[key]

    def state_dict(self, key: str) -> dict:
        """The float32 state dict of one model, read from its safetensors file."""
        from safetensors.torch import load_file

        spec = self.model_spec(key)
        path = self.root / spec["weights"]
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
            raise ModelPackError(f"weights do not fit {spec['arch']}: {exc}",
                                 str(self.root / spec["weights"])) from exc
        return model

    def detector(self, key: str, *, device: str = "cpu", engine: str = "auto"):
        """Build the :class:`~spinexr.models.detector.Detector` stored under ``key`` (cached).

        ``engine``: ``"auto"`` runs ONNX Runtime on CPU when ``<pack>/onnx`` holds a current
        export of this model (see :func:`~spinexr.models.onnx_engine.select_engine`), torch
        otherwise; ``"torch"`` / ``"onnx"`` force one. ``.model`` is the torch model either way.
        """
        if ("detector", key, device, engine) not in self._cache:
            from spinexr.models.detector import Detector
            from spinexr.models.onnx_engine import select_engine
            from spinexr.models.yolo import build_detection_model

            spec = self.model_spec(key)
            runtime = select_engine(self, key, engine, device)
            model = self._loaded(key, build_detection_model(spec["arch"],
                                                            list(spec["labels"])))
            self._cache[("detector", key, device, engine)] = Detector(
                model.float(), spec["labels"], spec["input"]["size"], device=device,
                engine=runtime, preprocess=spec["input"].get("preprocess"),
                tile_aspect=spec["input"].get("tile_aspect"))
        return self._cache[("detector", key, device, engine)]

    def classifier(self, key: str, *, device: str = "cpu", engine: str = "auto"):
        """Build the :class:`~spinexr.models.classifier.Classifier` stored under ``key`` (cached).

        The spec names ``arch``, ``head``, ``labels`` and ``input`` (the
        :class:`~spinexr.models.classifier.Preprocess` fields), as the classify recipe writes.
        ``engine`` as in :meth:`detector`; ``.model`` stays the torch module (explanations
        need its gradients).
        """
        if ("classifier", key, device, engine) not in self._cache:
            from spinexr.models.classifier import Classifier, Preprocess, create_classifier
            from spinexr.models.onnx_engine import select_engine

            spec = self.model_spec(key)
            if spec.get("kind") != "classifier":
                raise ModelPackError(f"model {key!r} is a {spec.get('kind')!r}, not a classifier",
                                     str(self.root))
            runtime = select_engine(self, key, engine, device)
            labels = list(spec["labels"])
            model = self._loaded(key, create_classifier(
                spec["arch"], len(labels), head=spec["head"],
                in_chans=int(spec["input"].get("channels", 1))))
            self._cache[("classifier", key, device, engine)] = Classifier(
                model.float(), labels, spec["head"], Preprocess.from_dict(spec["input"]),
                device=device, name=key, temperature=float(spec.get("temperature", 1.0)),
                engine=runtime)
        return self._cache[("classifier", key, device, engine)]

    def grader(self, key: str, *, device: str = "cpu", engine: str = "auto"):
        """The grading head stored under ``key``: its :meth:`classifier`, or a
        :class:`~spinexr.models.spine_crops.WindowGrader` when its spec has ``windows`` (it is
        then run on vertebra windows found by the pack's vertebra detector)."""
        clf = self.classifier(key, device=device, engine=engine)
        windows = self.model_spec(key).get("windows")
        if not windows:
            return clf
        from spinexr.models.spine_crops import CropSpec, WindowGrader

        crops = CropSpec.from_dict(windows)
        return WindowGrader(clf, self.detector(crops.detector, device=device, engine=engine),
                            crops)

    def triage(self, *, device: str = "cpu", engine: str = "auto"):
        """The :class:`~spinexr.models.ensemble.TriageEnsemble` described by ``ensemble``;
        its members run on ``engine`` (see :meth:`classifier`)."""
        from spinexr.models.ensemble import TriageEnsemble

        spec = self.manifest.get("ensemble")
        if not spec:
            raise ModelPackError("pack has no 'ensemble' entry (not a triage pack)",
                                 str(self.root / MANIFEST))
        members = {k: self.classifier(k, device=device, engine=engine) for k in spec["members"]}
        ensemble = TriageEnsemble(members, spec["weights"], spec.get("temperatures"),
                                  spec.get("operating_points"))
        if not spec.get("windows"):
            return ensemble
        from spinexr.models.spine_crops import CropSpec, WindowTriage

        crops = CropSpec.from_dict(spec["windows"])
        return WindowTriage(ensemble, self.detector(crops.detector, device=device, engine=engine),
                            crops)


def load_pack(root: Path | str) -> ModelPack:
    """Read and verify a pack directory (manifest, format version, files and checksums)."""
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        raise ModelPackError(f"no {MANIFEST}: not a spinexr model pack", str(root))
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelPackError(f"unreadable manifest: {exc}", str(path)) from exc
    if manifest.get("format") != PACK_FORMAT or manifest.get("format_version") != PACK_FORMAT_VERSION:
        raise ModelPackError(
            f"format {manifest.get('format')!r} version {manifest.get('format_version')!r}; "
            f"this spinexr reads {PACK_FORMAT!r} version {PACK_FORMAT_VERSION}", str(path))
    for key, spec in manifest.get("models", {}).items():
        weights = root / spec["weights"]
        if not weights.is_file():
            raise ModelPackError(f"model {key!r}: weights file missing", str(weights))
        if spec.get("sha256") and sha256_file(weights) != spec["sha256"]:
            raise ModelPackError(f"model {key!r}: sha256 mismatch, the file is corrupt or was "
                                 "replaced without updating pack.json", str(weights))
    return ModelPack(root=root, manifest=manifest)


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
    full = {"format": PACK_FORMAT, "format_version": PACK_FORMAT_VERSION, **manifest}
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
        lines.append(f"- `{key}`: {spec.get('kind')} `{spec.get('arch')}`, input "
                     f"{spec.get('input', {}).get('size')} px, labels {list(spec.get('labels', []))}, "
                     f"weights `{spec.get('weights')}` ({spec.get('dtype')}){extra}")
    lines += ["", "## Measured metrics", ""]
    for split, values in manifest.get("metrics", {}).items():
        shown = ", ".join(f"{k} = {v:.4f}" if isinstance(v, float) else f"{k} = {v}"
                          for k, v in values.items() if not isinstance(v, (dict, list)))
        lines.append(f"- {split}: {shown}")
    lines += _gate_card(manifest)
    if card.get("history"):
        lines += ["", "## History", ""] + [f"- {h}" for h in card["history"]]
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
