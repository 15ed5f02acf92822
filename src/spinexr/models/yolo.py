"""YOLO11 detectors through ultralytics, fully offline, weights in safetensors.

ultralytics reads its settings from the environment at import, may download fonts and weights
and may pip-install packages. :func:`import_ultralytics` sets it up offline first (no hub, no
auto-install, a config directory we own with a bundled TrueType font) and only then imports it.
Weights are stored as a plain ``state_dict`` in safetensors (no pickles) next to the model yaml.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Mapping

from spinexr.errors import ConfigError

YOLO_ARCHS = tuple(f"yolo11{s}" for s in "nsmlx")


def default_config_dir() -> Path:
    """Where ultralytics keeps settings: ``$SPINEXR_CACHE/ultralytics`` or ``~/.cache/spinexr``."""
    base = os.environ.get("SPINEXR_CACHE") or Path.home() / ".cache" / "spinexr"
    return Path(base) / "ultralytics"


def _install_font(config_dir: Path) -> None:
    """ultralytics asks github.com for Arial.ttf unless one is there: give it matplotlib's DejaVu."""
    target = config_dir / "Ultralytics" / "Arial.ttf"
    if target.exists():
        return
    import matplotlib

    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def import_ultralytics(config_dir: Path | None = None):
    """Import and return the ``ultralytics`` module configured to never touch the network."""
    config_dir = Path(config_dir or default_config_dir())
    config_dir.mkdir(parents=True, exist_ok=True)
    _install_font(config_dir)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "0"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import ultralytics
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigError("ultralytics is not installed: pip install 'spinexr[detect]'") from exc
    ultralytics.settings.update({"sync": False})
    return ultralytics


def check_arch(arch: str) -> str:
    """Validate a YOLO11 size name such as ``yolo11n``."""
    if arch not in YOLO_ARCHS:
        raise ConfigError(f"unknown detector architecture {arch!r}; choose one of {YOLO_ARCHS}",
                          "model.arch")
    return arch


def build_detection_model(arch: str, names: Mapping[int, str] | list[str]):
    """An untrained ultralytics ``DetectionModel`` for ``arch`` with one output per class name."""
    import_ultralytics()
    from ultralytics.nn.tasks import DetectionModel, yaml_model_load

    cfg = yaml_model_load(f"{check_arch(arch)}.yaml")
    names = dict(enumerate(names)) if isinstance(names, (list, tuple)) else dict(names)
    cfg = {**cfg, "nc": len(names)}  # set here, so ultralytics has nothing to "override"
    model = DetectionModel(cfg, nc=len(names), verbose=False)
    model.names = names
    return model


def state_dict_from_checkpoint(path: Path) -> tuple[dict[str, Any], dict[int, str]]:
    """Read an ultralytics training checkpoint (``best.pt``) we wrote ourselves.

    Only for checkpoints produced by our own training run: ``torch.load`` unpickles.
    Returns the float32 state dict of the EMA model (as ultralytics validates it) and its names.
    """
    import torch

    import_ultralytics()
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = ckpt.get("ema") or ckpt["model"]
    return {k: v.float() for k, v in model.state_dict().items()}, dict(model.names)
