"""Models: detectors, classifiers, ensembles and model packs (card + safetensors weights)."""
from spinexr.models.pack import ModelPack, ModelPackError, load_pack, save_pack

__all__ = ["ModelPack", "ModelPackError", "load_pack", "save_pack"]
