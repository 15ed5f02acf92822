"""Batch throughput: the local engine and the Dask engine with 1 and 2 workers, same manifest,
same packs, one run.

Each configuration starts its engine, warms it up (every worker has loaded the packs and
analysed an image), then analyses the whole manifest into a fresh results store; images/s is
counted from the first chunk submitted to results.parquet compacted. Scaling efficiency is
images/s with 2 workers over twice images/s with 1 (1.0: perfect). The images are phantom
DICOMs (JPEG 2000 lossless by default, like VinDr-SpineXR) analysed by the committed packs
(models/demo + models/vertebrae) without renditions, as ``spinexr analyze --engine ...`` does.

    python benchmarks/batch.py --quick        # 16 images of 1400 x 1100, ~2 min
    python benchmarks/batch.py                # 32 images of 2000 x 1600
    python benchmarks/batch.py --busy 1       # with one CPU-burning process alongside

The last line printed is ``scaling: local X, dask Y`` (the 2-worker efficiencies).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from pipeline import burners, cpu_name  # noqa: E402  (the same machine report and burners)


def make_images(out: Path, n: int, hw: tuple[int, int], j2k: bool) -> list[str]:
    import pydicom

    from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom

    out.mkdir(parents=True, exist_ok=True)
    syntax = pydicom.uid.JPEG2000Lossless if j2k else pydicom.uid.ExplicitVRLittleEndian
    paths = []
    for seed in range(n):
        path = out / f"{seed:03d}.dcm"
        xray_to_dicom(generate_xray(seed, XrayConfig(size=hw)), transfer_syntax=syntax).save_as(
            path, enforce_file_format=True)
        paths.append(str(path))
    return paths


def timed_run(engine_name: str, workers: int, paths: list[str], work: Path, chunk: int) -> dict:
    from spinexr.batch import BatchSpec, LocalEngine, ResultStore, run_batch
    from spinexr.batch.dask_engine import DaskEngine

    spec = BatchSpec(pack=str(ROOT / "models" / "demo"), vertebrae=str(ROOT / "models" /
                                                                       "vertebrae"))
    make = LocalEngine if engine_name == "local" else DaskEngine
    t0 = time.perf_counter()
    with make(spec, workers=workers) as engine:
        warm = ResultStore(str(work / f"warm-{engine_name}-{workers}"))
        run_batch(paths[:2 * workers], warm, engine, chunk=1)      # every worker loaded
        start_s = time.perf_counter() - t0
        store = ResultStore(str(work / f"out-{engine_name}-{workers}"))
        summary = run_batch(paths, store, engine, chunk=chunk)
    return {"engine": engine_name, "workers": workers, "ips": summary.images_per_second,
            "seconds": summary.seconds, "start_s": start_s, "outcomes": summary.outcomes}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--images", type=int)
    p.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"))
    p.add_argument("--chunk", type=int, default=4, help="images per chunk (model batch)")
    p.add_argument("--raw", action="store_true", help="uncompressed DICOMs, not JPEG 2000")
    p.add_argument("--busy", type=int, default=0, help="CPU-burning processes alongside")
    args = p.parse_args(argv)
    n = args.images or (16 if args.quick else 32)   # chunks even across 1 and 2 workers
    hw = tuple(args.image_size or ((1400, 1100) if args.quick else (2000, 1600)))
    os.environ.update(HF_HUB_OFFLINE="1", YOLO_OFFLINE="1", YOLO_AUTOINSTALL="0")
    work = Path(tempfile.mkdtemp(prefix="spinexr-batch-bench-"))
    os.environ.setdefault("SPINEXR_CACHE", str(work / "cache"))
    try:
        paths = make_images(work / "images", n, hw, not args.raw)
        print(f"machine: {os.cpu_count()} CPUs, {cpu_name()}; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; busy processes {args.busy}")
        print(f"{n} phantom DICOMs {hw[0]}x{hw[1]} "
              f"({'raw' if args.raw else 'JPEG 2000 lossless'}), chunks of {args.chunk}, packs "
              "models/demo + models/vertebrae, no renditions")
        chunks = -(-n // args.chunk)
        if chunks % 2:
            print(f"note: {chunks} chunks do not split evenly over 2 workers: one worker idles "
                  "at the end, which lowers the 2-worker figures")
        with burners(args.busy):
            runs = [timed_run(e, w, paths, work, args.chunk)
                    for e in ("local", "dask") for w in (1, 2)]
        print(f"\n{'engine':8s}{'workers':>8s}{'images/s':>10s}{'seconds':>9s}"
              f"{'start+warm (s)':>16s}  outcomes")
        for r in runs:
            print(f"{r['engine']:8s}{r['workers']:8d}{r['ips']:10.3f}{r['seconds']:9.1f}"
                  f"{r['start_s']:16.1f}  {r['outcomes']}")
        eff = {}
        for e in ("local", "dask"):
            one, two = (next(r for r in runs if (r["engine"], r["workers"]) == (e, w))
                        for w in (1, 2))
            eff[e] = two["ips"] / (2 * one["ips"]) if one["ips"] else float("nan")
            print(f"{e}: 2 workers / 1 worker = {two['ips'] / one['ips']:.2f}x, scaling "
                  f"efficiency {eff[e]:.2f}")
        dask2, local2 = runs[3]["ips"], runs[1]["ips"]
        print(f"dask / local at 2 workers: {dask2 / local2:.2f}; load average after: "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"scaling: local {eff['local']:.2f}, dask {eff['dask']:.2f}")
    return 0


if __name__ == "__main__":
    multiprocessing.freeze_support()
    raise SystemExit(main())
