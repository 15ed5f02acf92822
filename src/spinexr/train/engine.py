"""A small, generic training engine for image models on cached tensors.

:func:`fit` runs epochs of AdamW with a per-step cosine or one-cycle schedule, evaluates on a
validation set after each epoch, stops early when the monitored metric stops improving, and
writes, on rank 0 only:

    <run_dir>/last.pt          everything needed to resume (model, optimizer, scheduler, scaler,
                               epoch, best metric, patience counter, history, RNG states)
    <run_dir>/best.pt          the best model's weights, epoch, metric and validation logits
    <run_dir>/metrics.csv      one row per epoch
    <run_dir>/tensorboard/     the same numbers for TensorBoard

Reproducibility: every epoch reseeds Python, NumPy and torch from ``(seed, epoch, rank)`` and
draws its sample order and augmentations from generators seeded the same way, so a run resumed
from ``last.pt`` continues exactly as the uninterrupted run would have (tested bit for bit on
CPU). Mixed precision is used on CUDA only. Launched by ``torchrun`` (``WORLD_SIZE`` > 1) the
model is wrapped in ``DistributedDataParallel`` and each rank trains on its shard of every epoch.
"""
from __future__ import annotations

import csv
import math
import os
import random
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from spinexr.errors import ConfigError
from spinexr.evaluate.curves import improves
from spinexr.train.images import ArrayData

SCHEDULES = ("cosine", "onecycle", "constant")
Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
MetricFn = Callable[[np.ndarray, np.ndarray], Mapping[str, float]]


@dataclass(frozen=True)
class EngineConfig:
    """Optimisation settings of one :func:`fit` call.

    Attributes:
        epochs: length of the learning-rate schedule in epochs.
        stop_after: run only this many epochs of that schedule (retraining for a fixed count).
        patience: stop after this many epochs without improvement (``None``: never).
        monitor, mode: the validation metric and whether higher (``max``) or lower is better.
        balanced: draw training samples with class-balanced weights (with replacement).
        amp: mixed precision (bf16 where supported, else fp16 + loss scaling); CUDA only.
    """

    epochs: int
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.05
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    min_lr_ratio: float = 0.01
    patience: int | None = None
    min_delta: float = 0.0
    monitor: str = "val_loss"
    mode: str = "min"
    seed: int = 0
    balanced: bool = False
    grad_clip: float | None = None
    amp: bool = True
    device: str = "cpu"
    eval_batch_size: int = 64
    stop_after: int | None = None
    progress: bool = True
    tensorboard: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"epochs={self.epochs}, batch={self.batch_size}: need >= 1",
                              "train")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule {self.schedule!r} is not one of {SCHEDULES}",
                              "train.schedule")
        if self.mode not in ("min", "max"):
            raise ConfigError(f"mode {self.mode!r}: 'min' or 'max'", "train.mode")

    @property
    def last_epoch(self) -> int:
        return min(self.epochs, self.stop_after) if self.stop_after else self.epochs


@dataclass(frozen=True)
class Dist:
    """This process's place in a distributed run (1 process: rank 0 of 1)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit` found. ``best_epoch`` is 0-based; without validation, the last epoch."""

    best_epoch: int
    best_metric: float | None
    epochs_run: int
    history: tuple[Mapping[str, float], ...]
    state_dict: Mapping[str, torch.Tensor]
    val_logits: np.ndarray | None = None


@dataclass
class _State:
    epoch: int = 0                 # epochs completed
    best_metric: float | None = None
    best_loss: float | None = None  # validation loss at the best epoch (breaks metric ties)
    best_epoch: int = -1
    bad_epochs: int = 0
    stopped: bool = False
    history: list[dict] = field(default_factory=list)


def init_distributed(device: str = "cpu") -> Dist:
    """Read ``torchrun``'s environment and join the process group when ``WORLD_SIZE`` > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as td

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not td.is_initialized():
        if device.startswith("cuda"):
            torch.cuda.set_device(local_rank)
        td.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Dist(rank=td.get_rank(), local_rank=local_rank, world_size=td.get_world_size())


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, and ask torch for deterministic kernels (warn otherwise)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def derived_seed(*parts: int) -> int:
    """A 63-bit seed derived from integers, e.g. ``(seed, epoch, rank)``."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def steps_per_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
    """Optimizer steps per epoch: full global batches (``world_size * batch_size`` samples)
    only, or one partial batch for sets smaller than one global batch."""
    return max(1, n // (world_size * batch_size))


def epoch_batches(n: int, epoch: int, cfg: EngineConfig, dist: Dist = Dist(),
                  weights: np.ndarray | None = None) -> list[np.ndarray]:
    """This rank's batches of row indices for one epoch (a pure function of its arguments).

    One sample order per epoch, drawn by a generator seeded from ``(cfg.seed, epoch)`` (the
    same on every rank): a permutation, or ``WeightedRandomSampler`` draws when ``weights`` are
    given. The draws past the last full global batch (``W * cfg.batch_size``) are dropped; a
    set smaller than one global batch is one partial batch (padded to a multiple of ``W``).
    Rank ``r`` of ``W`` takes every ``W``-th draw from the ``r``-th, so step ``k``'s batches
    of all ranks together hold exactly the ``k``-th batch a single process with ``W`` times
    the batch size draws: DDP with the same global batch and seed sees the same samples at
    each step as one process (``tests/train/test_ddp.py``).
    """
    from torch.utils.data import BatchSampler, WeightedRandomSampler

    gen = torch.Generator().manual_seed(derived_seed(cfg.seed, epoch, 7))
    if weights is not None:
        order = list(WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.float64), n,
                                           replacement=True, generator=gen))
    else:
        order = torch.randperm(n, generator=gen).tolist()   # = RandomSampler's order
    world = dist.world_size
    if n >= world * cfg.batch_size:
        order = order[:steps_per_epoch(n, cfg.batch_size, world) * world * cfg.batch_size]
    else:                                       # one partial batch per rank
        order += order[:(-len(order)) % world]
    return [np.asarray(b, dtype=np.int64)
            for b in BatchSampler(order[dist.rank::world], cfg.batch_size, drop_last=False)]


def make_optimizer(model: nn.Module, cfg: EngineConfig) -> torch.optim.Optimizer:
    """AdamW; biases, norm weights and 1-d parameters get no weight decay."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def make_scheduler(opt: torch.optim.Optimizer, cfg: EngineConfig, steps: int):
    """Per-step schedule over ``cfg.epochs * steps`` steps, with linear warm-up."""
    total = cfg.epochs * steps
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=total,
            pct_start=max(cfg.warmup_epochs * steps / total, 1e-3))
    warm = int(round(cfg.warmup_epochs * steps))
    floor = cfg.min_lr_ratio

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / (warm + 1)
        if cfg.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warm) / max(1, total - warm))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _amp_dtype(cfg: EngineConfig, device: torch.device) -> torch.dtype | None:
    if not cfg.amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def train_one_epoch(net: nn.Module, data: ArrayData, batches: Sequence[np.ndarray], *,
                    loss_fn: Callable, opt, sched, scaler, transform: Transform,
                    gen: torch.Generator, device: torch.device, amp: torch.dtype | None,
                    grad_clip: float | None = None, desc: str = "train",
                    progress: bool = True) -> float:
    """One pass over ``batches``; returns the mean training loss."""
    from tqdm import tqdm

    net.train()
    total, count = torch.zeros((), dtype=torch.float64, device=device), 0
    bar = tqdm(batches, desc=desc, unit="batch", file=sys.stderr, leave=False,
               disable=None if progress else True)
    for step, idx in enumerate(bar):
        x = transform(data.batch(idx).to(device, non_blocking=True), gen)
        x = x.contiguous(memory_format=torch.channels_last)
        y = torch.from_numpy(data.targets[idx]).to(device)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            logits = net(x)
        loss = loss_fn(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if grad_clip:
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
        scaler.step(opt)
        scaler.update()
        sched.step()
        total += loss.detach() * len(idx)  # no host sync per step
        count += len(idx)
        if step % 10 == 0 and not bar.disable:
            bar.set_postfix(loss=f"{float(total) / count:.4f}", refresh=False)
    return float(total) / max(count, 1)


def predict_logits(model: nn.Module, data: ArrayData, transform: Callable[[torch.Tensor],
                   torch.Tensor], *, device: torch.device, batch_size: int = 64) -> np.ndarray:
    """Logits (N, K) of every row of ``data``, in order, in eval mode without gradients."""
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(data), batch_size):
            x = transform(data.batch(np.arange(start, min(start + batch_size, len(data)))))
            x = x.to(device).contiguous(memory_format=torch.channels_last)
            out.append(model(x).float().reshape(x.shape[0], -1).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 1), np.float32)


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, model: nn.Module, opt, sched, scaler, state: _State,
                    cfg: EngineConfig) -> None:
    """Write ``last.pt`` atomically (a crash mid-write leaves the previous one intact)."""
    doc = {"model": model.state_dict(), "optimizer": opt.state_dict(),
           "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
           "state": asdict(state), "rng": _rng_state(), "config": asdict(cfg)}
    _atomic_save(doc, path)


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".part")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, model: nn.Module, opt, sched, scaler,
                    cfg: EngineConfig) -> _State:
    """Restore everything :func:`save_checkpoint` wrote; refuses a changed recipe."""
    doc = torch.load(path, map_location="cpu", weights_only=True)
    saved = dict(doc["config"])
    mine = asdict(cfg)
    changed = sorted(k for k in ("epochs", "batch_size", "lr", "weight_decay", "schedule",
                                 "warmup_epochs", "seed", "balanced", "monitor", "mode")
                     if saved.get(k) != mine.get(k))
    if changed:
        raise ConfigError(f"cannot resume: {changed} changed since the checkpoint "
                          f"(was {[saved.get(k) for k in changed]}); use a new --out",
                          str(path))
    model.load_state_dict(doc["model"])
    opt.load_state_dict(doc["optimizer"])
    sched.load_state_dict(doc["scheduler"])
    scaler.load_state_dict(doc["scaler"])
    _set_rng_state(doc["rng"])
    return _State(**doc["state"])


class _EpochLog:
    """metrics.csv (rewritten from the whole history, so a resumed run stays consistent) and
    TensorBoard scalars. Writes nothing unless ``enabled`` (rank 0)."""

    def __init__(self, run_dir: Path, enabled: bool, tensorboard: bool) -> None:
        self.run_dir, self.enabled, self.tb = run_dir, enabled, None
        if enabled and tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard"))

    def write(self, history: Sequence[Mapping[str, float]]) -> None:
        if not self.enabled:
            return
        columns = list(dict.fromkeys(k for row in history for k in row))
        with open(self.run_dir / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(history)
        if self.tb is not None:
            row = history[-1]
            for k, v in row.items():
                if k != "epoch" and isinstance(v, (int, float)) and math.isfinite(v):
                    self.tb.add_scalar(k, v, int(row["epoch"]))
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _improved(value: float | None, loss: float | None, state: _State,
              cfg: EngineConfig) -> bool:
    """Better by more than ``min_delta``; on an exact tie (e.g. AUROC 1.0 on a small fold),
    the lower validation loss wins, so the kept model is also the better calibrated one (the
    rule :mod:`spinexr.evaluate.curves` marks best epochs with)."""
    return improves(value, loss, state.best_metric, state.best_loss, mode=cfg.mode,
                    min_delta=cfg.min_delta)


def _validate(model, val: ArrayData, loss_fn, eval_transform, metric_fn, cfg, device):
    logits = predict_logits(model, val, eval_transform, device=device,
                            batch_size=cfg.eval_batch_size)
    row = {"val_loss": float(loss_fn(torch.from_numpy(logits), torch.from_numpy(val.targets)))}
    if metric_fn is not None:
        row.update({k: float(v) for k, v in metric_fn(logits, val.targets).items()})
    if cfg.monitor not in row:
        raise ConfigError(f"monitor {cfg.monitor!r} is not among the validation metrics "
                          f"{sorted(row)}", "train.monitor")
    return logits, row


@dataclass
class _Loop:
    """What every epoch of one :func:`fit` call uses."""

    net: nn.Module                 # the model, wrapped in DDP when distributed
    model: nn.Module               # the model itself (state dicts, validation)
    opt: torch.optim.Optimizer
    sched: Any
    scaler: Any
    cfg: EngineConfig
    dist: Dist
    device: torch.device
    amp: torch.dtype | None
    loss_fn: Callable
    train_transform: Transform
    eval_transform: Callable[[torch.Tensor], torch.Tensor]
    metric_fn: MetricFn | None
    weights: np.ndarray | None
    run_dir: Path
    desc: str


def fit(model: nn.Module, train: ArrayData, val: ArrayData | None, *, loss_fn: Callable,
        cfg: EngineConfig, run_dir: Path, train_transform: Transform,
        eval_transform: Callable[[torch.Tensor], torch.Tensor], metric_fn: MetricFn | None = None,
        sample_weights: np.ndarray | None = None, resume: bool = False,
        dist: Dist | None = None, desc: str = "") -> FitResult:
    """Train ``model`` (in place) and return the best epoch's weights and validation logits.

    Args:
        train, val: cached images in [0, 1] and targets; ``val`` ``None`` trains without
            validation (best = last epoch).
        loss_fn: ``(logits (B, K) float32, targets (B,)) -> scalar``.
        train_transform: ``(batch in [0, 1], generator) -> model input`` (augment, normalise).
        eval_transform: ``batch in [0, 1] -> model input`` (normalise only: the same
            ``normalize(resize_to_input(...))`` as inference's ``prepare``).
        metric_fn: ``(logits, targets) -> {name: value}`` on validation; ``cfg.monitor`` names one.
        sample_weights: class-balanced sampling weights (used when ``cfg.balanced``).
        resume: continue from ``run_dir/last.pt`` when it exists.
    """
    dist = dist or init_distributed(cfg.device)
    device = torch.device(f"cuda:{dist.local_rank}" if cfg.device == "cuda" and
                          dist.world_size > 1 else cfg.device)
    run_dir.mkdir(parents=True, exist_ok=True)
    deterministic = (torch.are_deterministic_algorithms_enabled(),
                     torch.is_deterministic_algorithms_warn_only_enabled())
    benchmark = torch.backends.cudnn.benchmark
    seed_everything(cfg.seed)
    model.to(device).to(memory_format=torch.channels_last)
    opt, amp = make_optimizer(model, cfg), _amp_dtype(cfg, device)
    sched = make_scheduler(opt, cfg, steps_per_epoch(len(train), cfg.batch_size, dist.world_size))
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    last = run_dir / "last.pt"
    state = (load_checkpoint(last, model, opt, sched, scaler, cfg) if resume and last.is_file()
             else _State())
    net = model if dist.world_size == 1 else nn.parallel.DistributedDataParallel(
        model, device_ids=[dist.local_rank] if device.type == "cuda" else None)
    loop = _Loop(net, model, opt, sched, scaler, cfg, dist, device, amp, loss_fn,
                 train_transform, eval_transform, metric_fn,
                 sample_weights if cfg.balanced else None, run_dir, desc)
    log = _EpochLog(run_dir, dist.is_main, cfg.tensorboard)
    try:
        while state.epoch < cfg.last_epoch and not state.stopped:
            _run_epoch(loop, state, train, val)
            log.write(state.history)
            if dist.is_main:
                save_checkpoint(last, model, opt, sched, scaler, state, cfg)
    finally:
        log.close()
        # leave the process as found (deterministic mode is global state)
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        torch.backends.cudnn.benchmark = benchmark
    if dist.world_size > 1:
        torch.distributed.barrier()  # rank 0 has written best.pt
    return _result(run_dir, state)


def _reseed(cfg: EngineConfig, epoch: int, rank: int) -> torch.Generator:
    """Seed Python, NumPy and torch for one epoch; return the augmentation generator."""
    base = derived_seed(cfg.seed, epoch, rank)
    random.seed(base)
    np.random.seed(base % 2**32)
    torch.manual_seed(base)
    return torch.Generator().manual_seed(derived_seed(cfg.seed, epoch, rank, 1))


def _run_epoch(loop: _Loop, state: _State, train: ArrayData, val: ArrayData | None) -> None:
    cfg, epoch = loop.cfg, state.epoch
    gen = _reseed(cfg, epoch, loop.dist.rank)
    row: dict[str, Any] = {"epoch": epoch, "lr": loop.opt.param_groups[0]["lr"]}
    batches = epoch_batches(len(train), epoch, cfg, loop.dist, loop.weights)
    row["train_loss"] = train_one_epoch(
        loop.net, train, batches,
        loss_fn=loop.loss_fn, opt=loop.opt, sched=loop.sched, scaler=loop.scaler,
        transform=loop.train_transform, gen=gen, device=loop.device, amp=loop.amp,
        grad_clip=cfg.grad_clip, desc=f"{loop.desc} epoch {epoch + 1}/{cfg.last_epoch}".strip(),
        progress=cfg.progress)
    # samples drawn this epoch by all ranks: the x axis of the learning curve in a pack's card
    row["train_samples"] = sum(len(b) for b in batches) * loop.dist.world_size
    logits = None
    if val is not None and len(val):
        logits, metrics = _validate(loop.model, val, loop.loss_fn, loop.eval_transform,
                                    loop.metric_fn, cfg, loop.device)
        row.update(metrics)
    value = row.get(cfg.monitor) if val is not None else None
    if val is None or _improved(value, row.get("val_loss"), state, cfg):
        state.best_metric, state.best_epoch, state.bad_epochs = value, epoch, 0
        state.best_loss = row.get("val_loss")
        if loop.dist.is_main:
            _atomic_save({"model": loop.model.state_dict(), "epoch": epoch, "metric": value,
                          "val_logits": None if logits is None else torch.from_numpy(logits)},
                         loop.run_dir / "best.pt")
    else:
        state.bad_epochs += 1
        state.stopped = cfg.patience is not None and state.bad_epochs >= cfg.patience
    state.history.append(row)
    state.epoch = epoch + 1


def _result(run_dir: Path, state: _State) -> FitResult:
    best = torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True)
    logits = best.get("val_logits")
    return FitResult(best_epoch=int(best["epoch"]), best_metric=best["metric"],
                     epochs_run=state.epoch, history=tuple(state.history),
                     state_dict=best["model"],
                     val_logits=None if logits is None else logits.numpy())
