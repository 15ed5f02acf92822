"""Where the CPU of one image goes on our side of ``benchmarks/pipeline.py``: a cProfile of
the one process step over that benchmark's images, grouped into stages.

Reuses a ``--workdir`` that ``benchmarks/pipeline.py --quick --workdir DIR`` set up (pack,
ONNX exports, vertebra pack, JPEG 2000 phantoms). Reads run in this process (no decode
workers), so the decode is in the profile; torch and ONNX Runtime get ``--threads``.

    python benchmarks/pipeline.py --quick --workdir /tmp/pw      # once, for the set-up
    python benchmarks/profile_pipeline.py --workdir /tmp/pw [--batch 1] [--top 25]

Prints, first, CPU seconds per image measured without the profiler (the reads, the models'
ONNX Runtime calls, the rest of the analysis); then, under cProfile, seconds per image by group
(each function's own time, summed over the functions a group's rule matches) and the top
functions. cProfile adds a cost to every Python call, so there the Python-heavy groups (gate
header, NMS, boxes) read several times too high: the unprofiled split is the one to quote.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import TimedEngine, build_analyzer, pipelined, read_kwargs  # noqa: E402

#: Group -> substrings of ``file:function`` (first match wins, in this order).
GROUPS = {
    "models (ONNX Runtime run)": ("onnxruntime", "torch._C._nn.adaptive", "conv"),
    "decode (JPEG 2000, pixels)": ("ImagingDecoder", "openjpeg", "pylibjpeg", "pixel_array",
                                   "encaps", "decode_pixel", "reader.py:", "codecs.py:",
                                   "codestream.py:"),
    "DICOM parse": ("pydicom/", "dicom_walk.py:", "dicom_header.py:", "dicom.py:"),
    "resize (PIL, torch, area)": ("'resize' of 'ImagingCore'", "upsample", "area", "resize",
                                  "pixels.py:"),
    "contrast (equalise, clip, window)": ("contrast.py:", "_clip", "clip", "_window"),
    "letterbox / normalise / stack": ("letterbox", "normalize", "prepare", "'astype'",
                                      "stack", "contiguous", "from_numpy", "fill", "'numpy'"),
    "NMS / boxes": ("nms", "xywh2xyxy", "_boxes", "unletterbox", "detector.py:<listcomp>"),
    "gate header / image checks": ("header.py:", "runtime.py:", "evidence.py:",
                                   "decision.py:"),
    "thread waits": ("acquire", "'wait'", "select", "poll", "sleep"),
}


def group_of(filename: str, func: str) -> str:
    key = f"{filename}:{func}"
    for name, needles in GROUPS.items():
        if any(n in key for n in needles):
            return name
    return "Python and the rest"


def split(cfg: dict, batch: int) -> dict[str, float]:
    """Unprofiled CPU seconds per image: the reads, the models (ORT; the calling thread's
    CPU, so all of it with one intra-op thread only), the rest of the analysis, the total
    (``process_time``, all threads); and the wall seconds per image. Reads first (all
    images), then the analysis in batches."""
    from spinexr.io.prefetch import read_one
    from spinexr.process import ProcessOptions, Processor, Source

    analyzer, timed = build_analyzer(cfg)
    # CPU of the calling thread: with one intra-op thread ORT computes there, so this is
    # the models' CPU (with more threads, only the caller's part)
    engines = [TimedEngine(t.engine, clock=time.thread_time) for t in timed]
    for t, e in zip(timed, engines):
        t.engine = e
    kw = read_kwargs(analyzer, cfg.get("reduce", "auto"))
    proc, options, paths = Processor(analyzer), ProcessOptions(render=False), cfg["images"]
    proc.process_reads([Source(path=p) for p in paths[:batch]],
                       [read_one(p, kw) for p in paths[:batch]], options)   # warm-up
    c0, w0 = time.process_time(), time.perf_counter()
    reads = [read_one(p, kw) for p in paths]
    c1 = time.process_time()
    for e in engines:
        e.seconds = 0.0
    for i in range(0, len(paths), batch):
        proc.process_reads([Source(path=p) for p in paths[i:i + batch]], reads[i:i + batch],
                           options)
    c2, n, wall = time.process_time(), len(paths), time.perf_counter() - w0
    models = sum(e.seconds for e in engines)
    return {"read": (c1 - c0) / n, "models": models / n,
            "rest of the analysis": (c2 - c1 - models) / n, "total": (c2 - c0) / n,
            "wall": wall / n}


def profile(cfg: dict, batch: int) -> tuple[pstats.Stats, float, float, int]:
    """Warm up one batch, then profile every image through the one process step."""
    analyzer, _ = build_analyzer(cfg)
    kw = read_kwargs(analyzer, cfg.get("reduce", "auto"))
    paths = cfg["images"]
    for _ in pipelined(analyzer, paths[:batch], batch, kw, 0):
        pass
    prof = cProfile.Profile()
    c0, t0 = time.process_time(), time.perf_counter()
    prof.enable()
    n = sum(1 for _ in pipelined(analyzer, paths, batch, kw, 0))
    prof.disable()
    return pstats.Stats(prof), time.process_time() - c0, time.perf_counter() - t0, n


def report(stats: pstats.Stats, cpu: float, wall: float, n: int, top: int) -> None:
    groups: dict[str, float] = {}
    rows = []
    for (filename, _line, func), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        name = group_of(filename, func)
        groups[name] = groups.get(name, 0.0) + tottime
        rows.append((tottime, f"{Path(filename).name}:{func}", name))
    total = sum(groups.values())
    print(f"{n} images: {wall / n:.3f} s wall and {cpu / n:.3f} s CPU per image "
          f"(process_time); profiled own time {total / n:.3f} s per image")
    for name, sec in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {name:34s} {sec / n:7.4f} s/image  {100 * sec / total:5.1f}%")
    print(f"top {top} functions by own time (s per image):")
    for sec, where, name in sorted(rows, reverse=True)[:top]:
        print(f"  {sec / n:7.4f}  {where}  [{name}]")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, required=True,
                   help="a benchmarks/pipeline.py --workdir that holds its set-up")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--threads", type=int, default=1, help="torch and ORT intra-op threads")
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    os.environ.update(HF_HUB_OFFLINE="1", YOLO_OFFLINE="1", YOLO_AUTOINSTALL="0")
    setup = args.workdir / "setup.json"
    if not setup.is_file():
        p.error(f"{setup} is missing: run benchmarks/pipeline.py --quick --workdir "
                f"{args.workdir} first")
    import torch

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    cfg = {**json.loads(setup.read_text())["cfg"], "threads": args.threads}
    cpu = split(cfg, args.batch)
    print(f"CPU s per image, unprofiled (batch {args.batch}, {args.threads} thread(s)): "
          + ", ".join(f"{k} {v:.3f}" for k, v in cpu.items()))
    report(*profile(cfg, args.batch), args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
