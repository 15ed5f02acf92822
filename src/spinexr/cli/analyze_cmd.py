"""``spinexr analyze PATH... [--pack DIR] [--out DIR] [--explain gradcam,ig,...]``.

Files, folders (searched recursively for images and DICOMs) and glob patterns. Each input gets
``<out>/<image_id>/`` with result.json, overlay.png, boxes.xml, report.html and, for DICOM,
sr.dcm, gsps.dcm and sc.dcm. An input that cannot be analysed (unreadable, not a radiograph,
not a spine) still gets a result.json saying why; the batch goes on. Exit code 0 when every
input was analysed, 2 when any was refused.

With ``--engine local|dask`` the run is an archive-scale batch (:mod:`spinexr.batch`): inputs
may also be CSV / Parquet lists of paths, the output is ``<out>/results.parquet`` (one row per
input, resumable: a re-run skips the inputs that have a row) and per-image folders only with
``--renditions``. Exit code 0 when the run completed, whatever the rows say.
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import uuid
from pathlib import Path

from spinexr.batch.manifest import expand as expand_manifest
from spinexr.errors import FileAccessError

REGIONS = ("cervical", "thoracic", "lumbar", "whole")


def add_parser(sub) -> None:
    p = sub.add_parser("analyze", help="analyse spine radiographs with a model pack",
                       description="Gate, triage, lesion detection with vertebral levels, grades "
                                   "and optional explanations; writes JSON, overlay, HTML and "
                                   "DICOM SR / GSPS / Secondary Capture per input.")
    p.add_argument("paths", nargs="+", help="files, folders or glob patterns")
    add_pack_arguments(p)
    p.add_argument("--out", type=Path, default=Path("spinexr-out"), help="output folder")
    p.add_argument("--explain", default="", help="comma-separated: gradcam,ig,saliency,lime")
    p.add_argument("--operating-point", default="youden")
    p.add_argument("--gating", choices=("dernet", "vindr"), default="vindr",
                   help="dernet: detect only when triage is abnormal; vindr: keep confident "
                        "boxes when it is normal (default)")
    p.add_argument("--region", choices=REGIONS, default=None,
                   help="spine region of inputs whose header names none (PNG/JPEG, DICOM "
                        "without Body Part Examined); default: lumbar, or whole for a column "
                        "of 12+ vertebrae")
    p.add_argument("--uid-root", default=None,
                   help="your organisation's UID root for the DICOM outputs (default: 2.25. "
                        "UIDs derived from the source image, the pack and the object kind)")
    p.add_argument("--hide-identifiers", action="store_true",
                   help="leave patient and study identifiers out of report.html (research "
                        "exports; result.json never holds them)")
    p.add_argument("--batch", type=_positive, default=None,
                   help="images per model batch (default: from the thread plan: 1 when it "
                        "gives the models 2 threads or fewer, as on a machine with few free "
                        "cores, where batching costs the CPU as much per image and delays "
                        "results; else 4). With --engine: images per chunk (default 4)")
    p.add_argument("--decode-workers", type=int, default=None,
                   help="processes reading the next batch while this one is analysed (0: read "
                        "in the main process; default: sized with the model threads to the "
                        "CPUs free at start)")
    p.add_argument("--full-resolution", action="store_true",
                   help="decode JPEG 2000 at full size (default: only down to the resolution "
                        "the models use; results are in source pixels either way)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    g = p.add_argument_group("archive-scale batch (results.parquet, resumable)")
    g.add_argument("--engine", choices=("local", "dask"), default=None,
                   help="local: a process pool; dask: a dask.distributed cluster (default: "
                        "neither, one folder of outputs per input)")
    g.add_argument("--workers", type=int, default=2,
                   help="worker processes (local pool, or the local Dask cluster)")
    g.add_argument("--scheduler", default=None,
                   help="address of an existing Dask scheduler (tcp://host:8786) instead of a "
                        "local cluster on 127.0.0.1")
    g.add_argument("--dashboard", default=None,
                   help="address of the local Dask cluster's dashboard (default: off)")
    g.add_argument("--renditions", action="store_true",
                   help="also write each input's renditions to <out>/images/<id>-<hash>/")
    p.set_defaults(run=run)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give an integer >= 1")
    return value


def add_pack_arguments(p) -> None:
    """``--pack`` and ``--vertebrae`` (see :func:`spinexr.models.pack.resolve_packs`)."""
    p.add_argument("--pack", type=Path, default=None,
                   help="model pack folder (default: <models>/demo, where <models> is "
                        "$SPINEXR_MODELS or the packs installed with spinexr)")
    p.add_argument("--vertebrae", type=Path, default=None,
                   help="vertebra detector pack (default: <models>/vertebrae)")


def expand(paths: list[str]) -> tuple[list[Path], list[Path]]:
    """(files to analyse, files skipped) from files, folders (recursive), glob patterns and
    CSV / Parquet path lists (see :func:`spinexr.batch.manifest.expand`)."""
    found = expand_manifest(paths)
    return [Path(p) for p in found.paths], [Path(p) for p in found.skipped]


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from spinexr.analyze import Analyzer, AnalyzerConfig
    from spinexr.models.pack import resolve_packs
    from spinexr.models.threads import apply_thread_plan, plan_threads, planned_batch
    from spinexr.process import ProcessOptions, Processor

    if args.engine is not None:
        from spinexr.cli.batch_run import run_batch_command

        return run_batch_command(args)
    workers = None if args.decode_workers is None else max(0, args.decode_workers)
    plan = apply_thread_plan(plan_threads(1, decode_workers=workers))
    pack, vert = resolve_packs(args.pack, args.vertebrae)
    analyzer = Analyzer(pack, vertebrae_pack=vert, config=AnalyzerConfig(
        operating_point=args.operating_point, gating=args.gating))
    processor = Processor(analyzer, full_resolution=args.full_resolution)
    options = ProcessOptions(explain=tuple(m for m in args.explain.split(",") if m),
                             region=args.region, uid_root=args.uid_root,
                             identifiers=not args.hide_identifiers)
    files, skipped = expand(args.paths)
    for path in skipped:
        print(f"skipped {path}: not an image or DICOM file name", file=sys.stderr)
    _writable(args.out)
    rows, names = [], OutputNames()
    bar = tqdm(total=len(files), desc="analyze", unit="img", file=sys.stderr,
               disable=args.quiet or None)
    size = args.batch or planned_batch(plan)
    for batch in processor.stream(files, batch=size, workers=plan.decode_workers,
                                  options=options):
        for done in batch:
            folder = args.out / names.claim(done.analysis.image_id)
            write_folder(done.files, folder)
            rows.append((done.source.path, (done.outcome, folder.name, _one_line(done.analysis))))
            bar.update(1)
    bar.close()
    _print_summary(rows, args.out)
    return 2 if any(r[0] == "refused" for _, r in rows) else 0


class OutputNames:
    """Output folder names that cannot collide within a run: the image id, then ``-2``, ``-3``
    for the next inputs with the same id (``a/x.dcm`` and ``b/x.dcm``), in input order, so a
    re-run of the same inputs writes the same folders."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def claim(self, image_id: str) -> str:
        base = "".join(c if c.isalnum() or c in "-_." else "_" for c in image_id).strip(".") \
            or "input"
        name, n = base, 1
        while name in self.used:
            n += 1
            name = f"{base}-{n}"
        self.used.add(name)
        return name


def _writable(out: Path) -> None:
    """Refuse an output folder that cannot be created or written, before any work."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".spinexr-write-test-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise FileAccessError(f"the output folder cannot be written ({exc.strerror or exc})",
                              str(out)) from exc


def write_folder(files: dict[str, bytes], folder: Path) -> None:
    """Write ``files`` (name -> bytes) as ``folder``, atomically: into a hidden temporary folder
    beside it (result.json last), then renamed into place, replacing an earlier run's folder.
    An interruption leaves either the complete folder or none (plus, at worst, a hidden
    ``.tmp-*`` folder that the next run of the same input removes)."""
    parent = folder.parent
    tmp = parent / f".tmp-{folder.name}-{uuid.uuid4().hex[:8]}"
    old = parent / f".old-{folder.name}-{uuid.uuid4().hex[:8]}"
    for stale in parent.glob(f".tmp-{glob.escape(folder.name)}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        for name in sorted(files, key=lambda n: n == "result.json"):
            (tmp / name).write_bytes(files[name])
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise FileAccessError(f"cannot write the outputs ({exc.strerror or exc})",
                              str(exc.filename or folder)) from exc
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _one_line(a) -> str:
    if not a.gate.accepted:
        return a.gate.reason
    parts = [a.gate.reason] if a.gate.uncertain else []
    if a.modality == "mri":
        regions = [g for g in a.grades if g.box is not None]
        worst = max(regions, key=lambda g: g.index, default=None)
        parts.append(f"MR: {len(regions)} region(s) graded" + (
            f"; worst {worst.box.label} {worst.label}" if worst is not None else ""))
        return "; ".join(parts)
    if a.triage is not None:
        parts.append(f"P(abnormal) {a.triage.probability:.2f} "
                     f"{'ABNORMAL' if a.triage.abnormal else 'normal'}")
    parts.append(f"{len(a.findings)} finding(s)" + (": " + ", ".join(
        f"{f.label} {f.level or '?'}" for f in a.findings[:3]) if a.findings else ""))
    return "; ".join(parts)


def _print_summary(rows, out: Path) -> None:
    width = max([len(str(p)) for p, _ in rows] + [4])
    print(f"{'input':{width}s}  {'status':9s}  result")
    for path, (outcome, image_id, text) in rows:
        status = {"accepted": "ok"}.get(outcome, outcome)
        print(f"{str(path):{width}s}  {status:9s}  {text}")
    done = sum(1 for _, r in rows if r[0] != "refused")
    unsure = sum(1 for _, r in rows if r[0] == "uncertain")
    print(f"{done} of {len(rows)} analysed" + (f" ({unsure} uncertain: check them)" if unsure
                                                else "") + f"; results in {out}/<image_id>/")
