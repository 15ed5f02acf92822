"""One thread plan for the process: how many intra-op threads torch and ONNX Runtime use and how
many decode processes read ahead, sized to the CPUs this process may run on and is likely to
get.

Why: on a 2-core machine, 2 ORT intra-op threads + 2 torch threads + 2 decode processes are six
runnable threads on two cores. On an idle machine that still works (the decoders mostly wait);
with one other busy process it collapses: an intra-op parallel region ends at a barrier, and a
thread descheduled by the other process stalls its siblings for a whole time slice. Sizing the
threads to the *free* CPUs (``os.sched_getaffinity`` minus what other processes keep busy)
keeps each parallel region within what the scheduler will actually run.

The plan is process-wide state by nature (``torch.set_num_threads`` is); it is set only by
:func:`apply_thread_plan`, never at import, and sessions created afterwards read it
(:func:`planned_intra_op`).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

_CURRENT: list[ThreadPlan] = []      # the applied plan (set by apply_thread_plan only)


@dataclass(frozen=True)
class ThreadPlan:
    """How one process uses its share of the CPUs.

    Attributes:
        intra_op: threads per torch / ONNX Runtime operator (``>= 1``).
        decode_workers: processes reading ahead (``0``: read in this process).
        cpus: the CPUs this process may run on (its affinity).
        free: the CPUs judged free when planned (``cpus`` minus the others' load).
    """

    intra_op: int
    decode_workers: int
    cpus: int
    free: float

    def __post_init__(self) -> None:
        if self.intra_op < 1 or self.decode_workers < 0:
            raise ValueError(f"thread plan needs intra_op >= 1 and decode_workers >= 0, got "
                             f"{self.intra_op} and {self.decode_workers}")


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask; the CPU count where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def busy_elsewhere(seconds: float = 0.2) -> float:
    """How many CPUs other processes keep busy now: the machine's busy CPU time over
    ``seconds`` (``/proc/stat``) less this process's own, per second. Falls back to the
    1-minute load average where ``/proc/stat`` is not there. A sample, not the load average,
    because the load average trails by a minute: it still counts a run that just ended (e.g.
    the previous side of a benchmark) and misses a job that just started."""
    def sample() -> tuple[float, float, float]:
        with open("/proc/stat") as fh:
            fields = [float(v) for v in fh.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)   # idle + iowait
        own = os.times()
        return sum(fields[:8]) - idle, own.user + own.system, time.monotonic()

    try:
        busy0, own0, t0 = sample()
        time.sleep(seconds)
        busy1, own1, t1 = sample()
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return max(0.0, ((busy1 - busy0) / ticks - (own1 - own0)) / max(t1 - t0, 1e-3))


def plan_threads(processes: int = 1, *, decode_workers: int | None = None,
                 cpus: int | None = None, load: float | None = None) -> ThreadPlan:
    """A plan for one of ``processes`` processes sharing this machine's free CPUs.

    Args:
        processes: how many such processes run the models side by side (engine workers).
        decode_workers: fixed read-ahead processes; ``None``: one when at least 1.5 CPUs are
            free per process (on fewer, a decoder only competes with the models), else 0.
        cpus: the CPUs to plan for (default :func:`available_cpus`).
        load: the CPUs other processes keep busy (default :func:`busy_elsewhere`, sampled).
    """
    cpus = max(1, int(cpus if cpus is not None else available_cpus()))
    others = max(0.0, float(busy_elsewhere() if load is None else load))
    free = max(1.0, cpus - others)
    per_process = free / max(1, int(processes))
    intra = max(1, math.floor(per_process + 0.25))      # 1.8 free -> 2, 1.6 -> 1
    if decode_workers is None:
        decode_workers = 1 if per_process >= 1.5 else 0
    return ThreadPlan(intra_op=intra, decode_workers=int(decode_workers), cpus=cpus,
                      free=round(free, 2))


def apply_thread_plan(plan: ThreadPlan | None = None) -> ThreadPlan:
    """Make ``plan`` (default: :func:`plan_threads` for one process) the process's plan: torch's
    intra-op threads now, ONNX Runtime sessions created from now on (see
    :func:`planned_intra_op`). Returns the plan applied."""
    plan = plan or plan_threads()
    _CURRENT[:] = [plan]
    try:
        import torch
    except ImportError:  # the ml extra is absent: nothing of torch's to size
        return plan
    if torch.get_num_threads() != plan.intra_op:
        torch.set_num_threads(plan.intra_op)
    return plan


#: Intra-op threads up to which one image per model batch is the CPU default.
FEW_THREADS = 2


def planned_batch(plan: ThreadPlan) -> int:
    """Images per model batch on the CPU under ``plan``: 1 with up to :data:`FEW_THREADS`
    intra-op threads, else 4.

    Why (docs/scaling.md, 2 shared cores): at 1-2 threads the models cost the same CPU per
    image at batch 1 and 4 (ONNX Runtime's convolutions gain nothing from a batch), while
    batch 1 starts the models after one read instead of four and returns each result as it
    is done: ``spinexr analyze`` of 12 JPEG 2000 images took 13.4 s at batch 1 and 14.0 s at
    batch 4. With more threads a batch keeps them busy in the small late layers, so 4 stays.
    """
    return 1 if plan.intra_op <= FEW_THREADS else 4


def planned_intra_op() -> int | None:
    """The applied plan's intra-op threads, or ``None`` when no plan was applied (then ONNX
    Runtime uses its own default, one per physical core)."""
    return _CURRENT[0].intra_op if _CURRENT else None


__all__ = ["FEW_THREADS", "ThreadPlan", "apply_thread_plan", "available_cpus",
           "busy_elsewhere", "plan_threads", "planned_batch", "planned_intra_op"]
