"""What Dask's ``MALLOC_TRIM_THRESHOLD_=65536`` costs the analysis, and that the engine avoids it.

The same job (build the committed demo packs' process step on one thread, read 2 chunks of 4
JPEG 2000 phantoms, analyse each chunk and measure the analysing thread's own CPU time) runs:

1. in a fresh process without the variable;
2. in a fresh process with ``MALLOC_TRIM_THRESHOLD_=65536`` (what Dask's nanny sets);
3. in the worker of a plain ``LocalCluster`` (Dask's defaults, 1 worker, 1 thread);
4. in the worker of a ``LocalCluster`` started as ``DaskEngine`` starts it
   (``dask_engine.local_cluster``: the variable neither from Dask's setting nor from this
   process's environment, where case 3's nanny has just written it).

Thread CPU time, not wall time: the work itself, not waiting. The last line printed is
``cost of the variable: X`` (mean of 2 over mean of 1).

    python benchmarks/dask_malloc.py            # ~2 min on 2 cores
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from batch import make_images  # noqa: E402  (the engines benchmark's phantoms)

VARIABLE = "MALLOC_TRIM_THRESHOLD_"


def job(images: str) -> dict:
    """In whatever process runs it: CPU seconds of the analysing thread per chunk of 4."""
    from spinexr.batch import BatchSpec
    from spinexr.batch.work import analyze_chunk, build_processor, read_chunk
    from spinexr.models.threads import ThreadPlan

    spec = BatchSpec(pack=str(ROOT / "models" / "demo"), vertebrae=str(ROOT / "models" /
                                                                       "vertebrae"),
                     threads=ThreadPlan(intra_op=1, decode_workers=0, cpus=1, free=1.0))
    proc = build_processor(spec)
    paths = sorted(str(p) for p in Path(images).glob("*.dcm"))
    analyze_chunk(proc, paths[:2], read_chunk(proc.read_kwargs(), paths[:2]), spec)  # warm-up
    seconds = []
    for i in range(0, 8, 4):
        reads = read_chunk(proc.read_kwargs(), paths[i:i + 4])
        t0 = time.thread_time()
        analyze_chunk(proc, paths[i:i + 4], reads, spec)
        seconds.append(time.thread_time() - t0)
    return {"seconds": seconds, "variable": os.environ.get(VARIABLE)}


def in_process(images: Path, variable: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != VARIABLE}
    if variable:
        env[VARIABLE] = variable
    out = subprocess.run([sys.executable, __file__, "--job", str(images)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def in_dask(images: Path, as_engine: bool) -> dict:
    """``job`` on the one worker of a LocalCluster: Dask's defaults, or as the engine starts it
    (:func:`spinexr.batch.dask_engine.local_cluster`)."""
    from distributed import Client, LocalCluster

    from spinexr.batch.dask_engine import local_cluster

    cluster = (local_cluster(1, threads_per_worker=1, resources=None) if as_engine else
               LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1",
                            dashboard_address=None))
    with cluster, Client(cluster) as client:
        return client.submit(job, str(images), pure=False).result()


def main() -> int:
    if sys.argv[1:2] == ["--job"]:
        print(json.dumps(job(sys.argv[2])))
        return 0
    os.environ.update(HF_HUB_OFFLINE="1", YOLO_OFFLINE="1", YOLO_AUTOINSTALL="0")
    with tempfile.TemporaryDirectory(prefix="spinexr-malloc-") as work:
        os.environ.setdefault("SPINEXR_CACHE", str(Path(work) / "cache"))
        images = Path(work) / "images"
        make_images(images, 8, (1400, 1100), True)
        print(f"8 JPEG 2000 phantoms 1400x1100, demo packs on torch, 1 thread; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        runs = {"process, variable unset": in_process(images, None),
                f"process, {VARIABLE}=65536": in_process(images, "65536"),
                "Dask worker, Dask's defaults": in_dask(images, as_engine=False),
                "Dask worker, as DaskEngine starts it": in_dask(images, as_engine=True)}
    for name, r in runs.items():
        print(f"{name:40s} analysis CPU s per chunk of 4: "
              + ", ".join(f"{s:.2f}" for s in r["seconds"]) + f"  ({VARIABLE}={r['variable']})")
    mean = {k: sum(r["seconds"]) / len(r["seconds"]) for k, r in runs.items()}
    names = list(runs)
    print(f"cost of the variable: {mean[names[1]] / mean[names[0]]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
