"""The thread plan: intra-op threads and decode workers from the free CPUs."""
from __future__ import annotations

import pytest

from spinexr.models import threads
from spinexr.models.threads import ThreadPlan, apply_thread_plan, busy_elsewhere, plan_threads


@pytest.mark.parametrize("cpus, load, processes, intra, decode", [
    (2, 0.0, 1, 2, 1),     # idle 2-core machine: both cores for the models, one decoder
    (2, 1.0, 1, 1, 0),     # one busy process: one thread, no decoder competing with it
    (2, 3.5, 1, 1, 0),     # overloaded: still one thread
    (2, 0.0, 2, 1, 0),     # two engine workers share the two cores
    (16, 2.0, 2, 7, 1),    # 14 free over 2 workers
    (8, 0.3, 1, 7, 1),     # 7.7 free -> 7 (a thread is only planned for a nearly free CPU)
])
def test_the_plan_follows_the_free_cpus(cpus, load, processes, intra, decode):
    plan = plan_threads(processes, cpus=cpus, load=load)
    assert (plan.intra_op, plan.decode_workers, plan.cpus) == (intra, decode, cpus)


def test_fixed_decode_workers_are_kept_and_a_bad_plan_is_refused():
    assert plan_threads(1, cpus=2, load=0.0, decode_workers=3).decode_workers == 3
    with pytest.raises(ValueError, match="intra_op >= 1"):
        ThreadPlan(intra_op=0, decode_workers=0, cpus=2, free=2.0)


def test_applying_a_plan_sets_torch_and_the_onnx_default(monkeypatch):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "_CURRENT", [])
    assert threads.planned_intra_op() is None
    try:
        apply_thread_plan(ThreadPlan(intra_op=1, decode_workers=0, cpus=2, free=1.0))
        assert torch.get_num_threads() == 1 and threads.planned_intra_op() == 1
    finally:
        torch.set_num_threads(before)


def test_busy_elsewhere_is_a_cpu_count():
    assert 0.0 <= busy_elsewhere(0.05) <= 4 * threads.available_cpus()


@pytest.mark.parametrize("intra, batch", [(1, 1), (2, 1), (3, 4), (16, 4)])
def test_the_planned_batch_is_one_image_with_few_threads(intra, batch):
    plan = ThreadPlan(intra_op=intra, decode_workers=0, cpus=16, free=float(intra))
    assert threads.planned_batch(plan) == batch
