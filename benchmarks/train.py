"""Classifier training throughput: spinexr's engine against a plain timm loop, in the same run.

Both train the same timm architecture at the same input size and batch size on the same
phantom radiographs (8-bit PNGs of a realistic size, written once, not timed):

  * baseline, as the DERNet seed code does it: a ``Dataset`` that opens each PNG with PIL,
    converts it to RGB and runs torchvision transforms (Resize, flip, rotation, colour jitter,
    ToTensor, Normalize) on every step, batched by a ``DataLoader`` with worker processes;
    a 3-channel model in the default memory format; AdamW; BCE.
  * spinexr: images decoded once and cached at training resolution (uint16), batches indexed
    from memory and augmented on the batch tensor (``augment_batch``), a 1-channel model in
    channels_last, ``train_one_epoch`` of :mod:`spinexr.train.engine` (AdamW, cosine schedule,
    focal loss). The one-off cache build is timed and printed separately.

Throughput = images per second, wall clock, data loading included, in the best of several
rounds; the two sides alternate round by round so that both see the same background load.

    python benchmarks/train.py            # densenet121 @ 224 px, batch 16, 3 rounds x 6 steps
    python benchmarks/train.py --quick    # resnet18 @ 160 px, batch 16, 2 rounds x 4 steps
    python benchmarks/train.py --threads 1   # on a machine where another job holds a core
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def make_pngs(root: Path, n: int, size: tuple[int, int], seed: int) -> tuple[list[Path], list[int]]:
    """Write ``n`` phantom radiographs as 8-bit PNGs; returns paths and 0/1 labels."""
    from PIL import Image

    from spinexr.phantom import XrayConfig, generate_xray, render_display

    paths, labels = [], []
    for i in range(n):
        ph = generate_xray(seed + i, XrayConfig(size=size))
        path = root / f"img{i:04d}.png"
        Image.fromarray(np.rint(render_display(ph) * 255).astype(np.uint8)).save(path)
        paths.append(path)
        labels.append(int(ph.abnormal))
    return paths, labels


class Baseline:
    """The seed's loop: PIL + torchvision transforms every step, DataLoader, RGB model."""

    def __init__(self, paths, labels, arch: str, size: int, batch: int, workers: int) -> None:
        import timm
        from PIL import Image
        from torch.utils.data import DataLoader, Dataset
        from torchvision import transforms as T

        tf = T.Compose([T.Resize((size, size)), T.RandomHorizontalFlip(), T.RandomRotation(7),
                        T.ColorJitter(brightness=0.1, contrast=0.1), T.ToTensor(),
                        T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])

        class Folder(Dataset):
            def __len__(self):
                return len(paths)

            def __getitem__(self, i):
                with Image.open(paths[i]) as im:
                    return tf(im.convert("RGB")), torch.tensor(float(labels[i]))

        torch.manual_seed(0)
        self.model = timm.create_model(arch, pretrained=False, num_classes=1).train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        self.loader = DataLoader(Folder(), batch_size=batch, shuffle=True, num_workers=workers,
                                 drop_last=True, persistent_workers=workers > 0)
        self.it = iter(self.loader)

    def _next(self):
        try:
            return next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            return next(self.it)

    def run(self, steps: int) -> float:
        """Seconds for ``steps`` optimizer steps, data loading included."""
        t0 = time.perf_counter()
        for _ in range(steps):
            x, y = self._next()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(self.model(x)[:, 0], y)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
        return time.perf_counter() - t0


class Spinexr:
    """Our path: cached uint16 canvases, batch augmentation, 1-channel channels_last model,
    the engine's ``train_one_epoch``."""

    def __init__(self, paths, labels, arch: str, size: int, batch: int) -> None:
        from spinexr.models.classifier import Preprocess, create_classifier, normalize
        from spinexr.train.augment import AugmentConfig, augment_batch
        from spinexr.train.engine import EngineConfig, make_optimizer, make_scheduler
        from spinexr.train.images import load_images
        from spinexr.train.losses import make_loss
        from spinexr.types import Sample

        pre = Preprocess(size)
        samples = [Sample(image_id=p.stem, image_path=p, group=p.stem, label=y)
                   for p, y in zip(paths, labels)]
        t0 = time.perf_counter()
        self.data = load_images(samples, labels, pre, cache_dir=None, progress=False)
        self.cache_seconds = time.perf_counter() - t0
        torch.manual_seed(0)
        self.model = create_classifier(arch, 2, head="binary").to(
            memory_format=torch.channels_last)
        self.cfg = EngineConfig(epochs=1000, batch_size=batch, lr=1e-4, progress=False)
        opt = make_optimizer(self.model, self.cfg)
        aug = AugmentConfig()
        self.kwargs = dict(loss_fn=make_loss("binary"), opt=opt,
                           sched=make_scheduler(opt, self.cfg, steps=len(self.data) // batch),
                           scaler=torch.amp.GradScaler("cuda", enabled=False),
                           transform=lambda x, g: normalize(augment_batch(x, g, aug), pre),
                           gen=torch.Generator().manual_seed(0), device=torch.device("cpu"),
                           amp=None, progress=False)
        self.epoch, self.queue = 0, []

    def run(self, steps: int) -> float:
        from spinexr.train.engine import epoch_batches, train_one_epoch

        while len(self.queue) < steps:
            self.queue += epoch_batches(len(self.data), self.epoch, self.cfg)
            self.epoch += 1
        batches, self.queue = self.queue[:steps], self.queue[steps:]
        t0 = time.perf_counter()
        train_one_epoch(self.model, self.data, batches, **self.kwargs)
        return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small model, fewer steps (~2 min)")
    p.add_argument("--arch", default=None)
    p.add_argument("--size", type=int, default=None, help="model input side in pixels")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=None, help="timed steps per round and side")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds per side")
    p.add_argument("--images", type=int, default=None, help="phantom PNGs to write")
    p.add_argument("--workers", type=int, default=2, help="baseline DataLoader workers")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads for both sides (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    arch = args.arch or ("resnet18" if args.quick else "densenet121")
    size = args.size or (160 if args.quick else 224)
    steps = args.steps or (4 if args.quick else 6)
    args.rounds = args.rounds or (2 if args.quick else 3)
    n = args.images or (48 if args.quick else 96)
    torch.set_flush_denormal(True)
    print(f"{arch} @ {size} px, batch {args.batch}; {args.rounds} alternating rounds of {steps} "
          f"steps per side after 2 warm-up steps; {n} phantom PNGs of 1024 x 832; torch "
          f"threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        paths, labels = make_pngs(Path(tmp), n, (1024, 832), seed=0)
        sides = {"baseline": Baseline(paths, labels, arch, size, args.batch, args.workers),
                 "spinexr": Spinexr(paths, labels, arch, size, args.batch)}
        for side in sides.values():
            side.run(2)                                   # warm-up
        times: dict[str, list[float]] = {k: [] for k in sides}
        for _ in range(args.rounds):                      # alternate: same background load
            for name, side in sides.items():
                times[name].append(side.run(steps))
    rate = {k: steps * args.batch / min(v) for k, v in times.items()}  # best round
    median = {k: steps * args.batch / statistics.median(v) for k, v in times.items()}
    print(f"baseline (PIL + transforms per step, DataLoader x{args.workers}, RGB): "
          f"{rate['baseline']:.2f} images/s (median round {median['baseline']:.2f})")
    print(f"spinexr  (cached uint16, batch augment, 1-ch, channels_last):        "
          f"{rate['spinexr']:.2f} images/s (median round {median['spinexr']:.2f}; "
          f"+ {sides['spinexr'].cache_seconds:.1f} s once to cache {n} images)")
    print(f"ratio: {rate['spinexr'] / rate['baseline']:.2f}")

if __name__ == "__main__":
    main()
