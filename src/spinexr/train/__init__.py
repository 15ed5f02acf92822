"""Training: recipes (YAML), dataset export and engines."""
from spinexr.train.config import TrainConfig, load_config

__all__ = ["TrainConfig", "load_config"]
