"""The training engine: loss falls, resume is exact, early stopping, sampling, logs."""
from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from spinexr.errors import ConfigError
from spinexr.train.augment import AugmentConfig, augment_batch
from spinexr.train.engine import (Dist, EngineConfig, epoch_batches, fit, make_optimizer,
                                  make_scheduler, steps_per_epoch)
from spinexr.train.images import ArrayData, to_uint16
from spinexr.train.losses import binary_focal_loss, class_balanced_weights


def _data(n: int = 32, size: int = 24, seed: int = 0) -> ArrayData:
    """Class 1: a bright square somewhere in the middle; class 0: noise only."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.random((n, size, size)) * 0.3
    for i in np.flatnonzero(y):
        r, c = rng.integers(4, size - 12, 2)
        x[i, r:r + 8, c:c + 8] += 0.6
    return ArrayData(to_uint16(x), y.astype(np.int64), tuple(map(str, range(n))),
                     tuple(map(str, range(n))))


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
                         nn.Linear(8, 1))


AUG = AugmentConfig(degrees=5, scale=0.05, translate=0.05)
CFG = EngineConfig(epochs=4, batch_size=8, lr=1e-2, monitor="val_loss", mode="min",
                   progress=False, tensorboard=False, balanced=True, warmup_epochs=0.5)


def _fit(run_dir, cfg=CFG, resume=False, val=True, metric_fn=None):
    data = _data()
    return fit(_model(), data, _data(16, seed=1) if val else None,
               loss_fn=lambda z, y: binary_focal_loss(z, y, alpha=None, gamma=0.0),
               cfg=cfg, run_dir=run_dir,
               train_transform=lambda x, g: (augment_batch(x, g, AUG) - 0.5) / 0.25,
               eval_transform=lambda x: (x - 0.5) / 0.25, metric_fn=metric_fn,
               sample_weights=class_balanced_weights(data.targets, 2), resume=resume,
               dist=Dist())


def test_loss_falls_in_a_few_epochs(tmp_path):
    res = _fit(tmp_path, replace(CFG, epochs=6))
    losses = [row["train_loss"] for row in res.history]
    assert losses[-1] < 0.8 * losses[0]
    assert res.val_logits.shape == (16, 1)
    assert res.best_epoch == int(np.argmin([row["val_loss"] for row in res.history]))


def test_resume_continues_exactly_as_the_uninterrupted_run(tmp_path):
    whole = _fit(tmp_path / "whole")
    _fit(tmp_path / "split", replace(CFG, stop_after=2))        # "interrupted" after 2 epochs
    resumed = _fit(tmp_path / "split", resume=True)
    assert resumed.epochs_run == whole.epochs_run == 4
    assert resumed.best_epoch == whole.best_epoch
    for k, v in whole.state_dict.items():
        assert torch.equal(v, resumed.state_dict[k]), k
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in whole.history]
    last_whole = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    last_split = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    for k, v in last_whole["model"].items():
        assert torch.equal(v, last_split["model"][k]), k
    assert last_whole["optimizer"]["state"][0]["exp_avg"].equal(
        last_split["optimizer"]["state"][0]["exp_avg"])


def test_resume_refuses_a_changed_recipe(tmp_path):
    _fit(tmp_path, replace(CFG, stop_after=1))
    with pytest.raises(ConfigError, match=r"cannot resume: \['lr'\] changed"):
        _fit(tmp_path, replace(CFG, lr=1e-3), resume=True)


def test_early_stopping_and_logs(tmp_path):
    scores = iter([0.9, 0.5, 0.4, 0.3])
    cfg = replace(CFG, epochs=4, patience=2, monitor="score", mode="max", tensorboard=True)
    res = _fit(tmp_path, cfg, metric_fn=lambda z, y: {"score": next(scores)})
    assert (res.best_epoch, res.best_metric, res.epochs_run) == (0, 0.9, 3)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert {"train_loss", "val_loss", "score", "lr"} <= set(rows[0])
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    again = _fit(tmp_path, cfg, resume=True, metric_fn=lambda z, y: {"score": 0.0})
    assert again.epochs_run == 3   # a stopped run stays stopped on resume


def test_without_validation_the_last_epoch_is_kept(tmp_path):
    res = _fit(tmp_path, replace(CFG, epochs=5, stop_after=2), val=False)
    assert (res.best_epoch, res.epochs_run, res.val_logits) == (1, 2, None)


def test_unknown_monitor_is_named(tmp_path):
    with pytest.raises(ConfigError, match="monitor 'auroc'"):
        _fit(tmp_path, replace(CFG, monitor="auroc"))


def test_epoch_batches_shuffle_and_shard():
    cfg = EngineConfig(epochs=1, batch_size=4, seed=3)
    one = np.concatenate(epoch_batches(20, 0, cfg))
    assert sorted(one.tolist()) == list(range(20))
    assert not np.array_equal(one, np.concatenate(epoch_batches(20, 1, cfg)))
    np.testing.assert_array_equal(one, np.concatenate(epoch_batches(20, 0, cfg)))
    shards = [np.concatenate(epoch_batches(20, 0, cfg, Dist(r, r, 2))) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 8           # 10 per rank, full batches of 4
    assert not set(shards[0]) & set(shards[1])
    assert steps_per_epoch(20, 4, 2) == 2 and steps_per_epoch(3, 8) == 1
    assert [len(b) for b in epoch_batches(3, 0, replace(cfg, batch_size=8))] == [3]


def test_balanced_sampling_draws_classes_evenly():
    y = np.array([0] * 90 + [1] * 10)
    cfg = EngineConfig(epochs=1, batch_size=10)
    drawn = np.concatenate([np.concatenate(epoch_batches(100, e, cfg,
                                                         weights=class_balanced_weights(y, 2)))
                            for e in range(20)])
    assert 0.45 < y[drawn].mean() < 0.55


def test_cosine_schedule_warms_up_then_decays():
    p = nn.Parameter(torch.zeros(2, 2))
    cfg = EngineConfig(epochs=4, lr=1.0, warmup_epochs=1, min_lr_ratio=0.0)
    opt = make_optimizer(nn.Linear(2, 2), cfg)
    sched = make_scheduler(opt, cfg, steps=10)
    lrs = []
    for _ in range(40):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] < lrs[5] < lrs[9] <= 1.0 and lrs[10] == pytest.approx(1.0)
    assert lrs[-1] < 0.01 and all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert p.grad is None


def _ddp_worker(rank: int, world: int, port: int, run_dir: str, out: str) -> None:
    import os

    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from pathlib import Path

    import torch.distributed as td

    from spinexr.train.engine import init_distributed

    dist = init_distributed("cpu")
    data = _data()
    res = fit(_model(), data, _data(16, seed=1),
              loss_fn=lambda z, y: binary_focal_loss(z, y, alpha=None, gamma=0.0),
              cfg=replace(CFG, epochs=2, tensorboard=True), run_dir=Path(run_dir),
              train_transform=lambda x, g: (augment_batch(x, g, AUG) - 0.5) / 0.25,
              eval_transform=lambda x: (x - 0.5) / 0.25,
              sample_weights=class_balanced_weights(data.targets, 2), dist=dist)
    torch.save({"state": res.state_dict, "dist": (dist.rank, dist.world_size)},
               Path(out) / f"rank{rank}.pt")
    td.destroy_process_group()


@pytest.mark.slow
def test_distributed_data_parallel_on_cpu_with_gloo(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path / "run"), str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["dist"] for r in ranks] == [(0, 2), (1, 2)]
    for k, v in ranks[0]["state"].items():   # DDP kept the replicas identical
        assert torch.equal(v, ranks[1]["state"][k]), k
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert len(rows) == 2
    # one TensorBoard writer (each writer makes its own event file): only rank 0 logs
    assert len(list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))) == 1
