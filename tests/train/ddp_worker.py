"""One training run of ``tests/train/test_ddp.py``: started by ``torchrun`` (2 ranks) or as a
plain script (1 process), it trains a timm model with :func:`spinexr.train.engine.fit` on the
cached phantom set in ``DATA`` and writes each rank's final weights and history to ``OUT``.

    python -m torch.distributed.run --standalone --nproc_per_node=2 ddp_worker.py DATA OUT 4
    python ddp_worker.py DATA OUT 8          # the same global batch in one process

Not collected by pytest (no ``test_`` prefix); it is the program ``torchrun`` runs.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from spinexr.models.classifier import create_classifier
from spinexr.train.engine import EngineConfig, fit, init_distributed
from spinexr.train.images import ArrayData
from spinexr.train.losses import binary_focal_loss, class_balanced_weights

MEAN, STD = 0.45, 0.23


def _loss(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return binary_focal_loss(z, y, alpha=None, gamma=0.0)


def _subset(doc, part: str) -> ArrayData:
    y = doc[f"{part}_y"]
    ids = tuple(f"{part}{i}" for i in range(len(y)))
    return ArrayData(doc[f"{part}_x"], y.astype(np.int64), ids, ids)


def main(data: Path, out: Path, batch: int) -> None:
    torch.set_num_threads(1)
    dist = init_distributed("cpu")
    doc = np.load(data)
    train, val = _subset(doc, "train"), _subset(doc, "val")
    for arch in str(doc["archs"]).split(","):
        for balanced in (False, True):
            torch.manual_seed(0)
            model = create_classifier(arch, 2, head="binary")
            cfg = EngineConfig(epochs=3, batch_size=batch, lr=2e-3, warmup_epochs=0.5,
                               balanced=balanced, seed=11, progress=False, tensorboard=False)
            run = out / f"run-{arch}-{int(balanced)}-w{dist.world_size}"
            res = fit(model, train, val, loss_fn=_loss, cfg=cfg, run_dir=run,
                      train_transform=lambda x, g: (x - MEAN) / STD,  # no augmentation:
                      eval_transform=lambda x: (x - MEAN) / STD,      # it is drawn per rank
                      sample_weights=class_balanced_weights(train.targets, 2), dist=dist)
            torch.save({"state": dict(res.state_dict), "history": list(res.history),
                        "world": dist.world_size}, run / f"rank{dist.rank}.pt")
    if dist.world_size > 1:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
