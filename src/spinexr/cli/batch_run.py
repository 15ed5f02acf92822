"""``spinexr analyze --engine local|dask ...``: the archive-scale run of :mod:`spinexr.batch`,
with a progress bar and a summary. Everything else lives in the batch package."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spinexr.analyze import AnalyzerConfig
from spinexr.batch import BatchSpec, LocalEngine, ResultStore, expand, run_batch
from spinexr.batch.manifest import is_url
from spinexr.models.pack import resolve_packs
from spinexr.process import ProcessOptions

#: Images per chunk of an engine run (one model batch, one results part) unless --batch says.
CHUNK = 4


def _spec(args: argparse.Namespace, out: str) -> BatchSpec:
    pack, vert = resolve_packs(args.pack, args.vertebrae)     # fails early on a bad pack
    options = ProcessOptions(explain=tuple(m for m in args.explain.split(",") if m),
                             region=args.region, uid_root=args.uid_root, render=False,
                             identifiers=not args.hide_identifiers)
    return BatchSpec(pack=str(pack.root.resolve()),
                     vertebrae=str(vert.root.resolve()) if vert is not None else None,
                     config=AnalyzerConfig(operating_point=args.operating_point,
                                           gating=args.gating, device="auto"),
                     options=options, full_resolution=args.full_resolution,
                     renditions=f"{out.rstrip('/')}/images" if args.renditions else None)


def _engine(args: argparse.Namespace, spec: BatchSpec):
    if args.engine == "local":
        return LocalEngine(spec, workers=args.workers)
    from spinexr.batch.dask_engine import DaskEngine

    return DaskEngine(spec, workers=args.workers, scheduler=args.scheduler,
                      dashboard=args.dashboard)


def run_batch_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    out = str(args.out) if is_url(str(args.out)) else str(Path(args.out).resolve())
    found = expand(args.paths)
    for path in found.skipped:
        print(f"skipped {path}: not an image or DICOM file name", file=sys.stderr)
    paths = [p if is_url(p) else str(Path(p).absolute()) for p in found.paths]
    store = ResultStore(out)
    spec = _spec(args, out)
    bar = tqdm(total=len(paths), desc=f"analyze ({args.engine})", unit="img", file=sys.stderr,
               disable=args.quiet or None)
    try:
        with _engine(args, spec) as engine:
            summary = run_batch(paths, store, engine, chunk=args.batch or CHUNK,
                                progress=bar.update)
    finally:
        bar.close()
    outcomes = ", ".join(f"{v} {k}" for k, v in sorted(summary.outcomes.items())) or "none"
    print(f"{summary.analysed} analysed now ({outcomes}), {summary.skipped} already done, "
          f"{summary.total} in all; {summary.images_per_second:.2f} images/s; results in "
          f"{summary.results}")
    return 0


__all__ = ["run_batch_command"]
