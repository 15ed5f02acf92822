"""Distributed training gives what one process gives (issue 14, point 3).

``torchrun --standalone --nproc_per_node=2`` (gloo on the CPU) runs ``ddp_worker.py`` with a
batch of 4 per rank; one plain process runs it with a batch of 8: the same global batch, seed,
initial weights and samples at every step (``epoch_batches`` shards one order by rank). DDP
averages the ranks' gradients, which for equal shards is the gradient of the global batch, so
the final weights agree to float32 rounding (tolerance 1e-4 absolute after 9 AdamW steps).

That holds for models whose normalisation is per sample (LayerNorm, GroupNorm: ConvNeXt, ViT,
NFNet). BatchNorm normalises each rank's shard by its own statistics (SyncBatchNorm needs
CUDA), so a BatchNorm model trained on 2 ranks is not the one-process model; its two replicas
are still identical, which is what the test asserts for it.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spinexr.train.engine import Dist, EngineConfig, epoch_batches

WORKER = Path(__file__).with_name("ddp_worker.py")
ARCHS = ("test_convnext", "test_resnet")      # LayerNorm; BatchNorm
ATOL = 1e-4


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n", [24, 23])
def test_two_ranks_draw_the_global_batch_of_one_process(n, weighted):
    weights = np.linspace(1, 2, n) if weighted else None
    one = epoch_batches(n, 3, EngineConfig(epochs=1, batch_size=8, seed=5), weights=weights)
    ranks = [epoch_batches(n, 3, EngineConfig(epochs=1, batch_size=4, seed=5),
                           Dist(r, r, 2), weights=weights) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == len(one) == n // 8
    for k, batch in enumerate(one):
        np.testing.assert_array_equal(np.sort(np.concatenate([ranks[0][k], ranks[1][k]])),
                                      np.sort(batch))


def _phantom_set(path: Path) -> None:
    from spinexr.models.classifier import default_preprocess, resize_to_input
    from spinexr.phantom import XrayConfig, generate_xray, render_display
    from spinexr.train.images import to_uint16

    pre = default_preprocess(ARCHS[0], 64)
    parts = {}
    for part, seeds in (("train", range(24)), ("val", range(100, 108))):
        phantoms = [generate_xray(s, XrayConfig(size=(160, 128))) for s in seeds]
        canvases = np.stack([resize_to_input(render_display(p), pre) for p in phantoms])
        parts[f"{part}_x"] = to_uint16(canvases)
        parts[f"{part}_y"] = np.array([int(p.abnormal) for p in phantoms])
    np.savez(path, archs=",".join(ARCHS), **parts)


def _launch(args: list[str], tmp_path: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen([sys.executable, *args], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_ddp_on_two_ranks_matches_one_process(tmp_path):
    data = tmp_path / "phantoms.npz"
    _phantom_set(data)
    two = _launch(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                   str(WORKER), str(data), str(tmp_path), "4"], tmp_path)
    one = _launch([str(WORKER), str(data), str(tmp_path), "8"], tmp_path)
    for proc in (two, one):
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-3000:]
    for arch in ARCHS:
        for balanced in (0, 1):
            run = f"run-{arch}-{balanced}"
            ref = torch.load(tmp_path / f"{run}-w1" / "rank0.pt", weights_only=True)
            r0, r1 = (torch.load(tmp_path / f"{run}-w2" / f"rank{r}.pt", weights_only=True)
                      for r in (0, 1))
            assert (ref["world"], r0["world"]) == (1, 2)
            for key, value in r0["state"].items():     # DDP kept the replicas identical
                assert torch.equal(value, r1["state"][key]), (run, key)
            if arch == "test_resnet":                  # BatchNorm: per-rank statistics
                continue
            assert [h["epoch"] for h in ref["history"]] == [0, 1, 2]
            for key, value in ref["state"].items():
                np.testing.assert_allclose(r0["state"][key].float().numpy(),
                                           value.float().numpy(), rtol=0, atol=ATOL,
                                           err_msg=f"{run} {key}")
            np.testing.assert_allclose([h["val_loss"] for h in r0["history"]],
                                       [h["val_loss"] for h in ref["history"]], atol=ATOL)
