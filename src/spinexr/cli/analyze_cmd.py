"""``spinexr analyze PATH... [--pack DIR] [--out DIR] [--explain gradcam,ig,...]``.

Files, folders (searched recursively for images and DICOMs) and glob patterns. Each input gets
``<out>/<image_id>/`` with result.json, overlay.png, boxes.xml, report.html and, for DICOM,
sr.dcm, gsps.dcm and sc.dcm. An input that cannot be analysed (unreadable, not a radiograph,
not a spine) still gets a result.json saying why; the batch goes on. Exit code 0 when every
input was analysed, 2 when any was refused.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
from pathlib import Path

#: The committed packs of a source checkout; ``SPINEXR_MODELS`` points elsewhere.
REPO_MODELS = Path(__file__).resolve().parents[3] / "models"
_SUFFIXES = {".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ""}


def add_parser(sub) -> None:
    p = sub.add_parser("analyze", help="analyse spine radiographs with a model pack",
                       description="Gate, triage, lesion detection with vertebral levels, grades "
                                   "and optional explanations; writes JSON, overlay, HTML and "
                                   "DICOM SR / GSPS / Secondary Capture per input.")
    p.add_argument("paths", nargs="+", help="files, folders or glob patterns")
    p.add_argument("--pack", type=Path, default=None,
                   help=f"model pack (default {REPO_MODELS / 'demo'})")
    p.add_argument("--vertebrae", type=Path, default=None,
                   help=f"vertebra detector pack (default {REPO_MODELS / 'vertebrae'})")
    p.add_argument("--out", type=Path, default=Path("spinexr-out"), help="output folder")
    p.add_argument("--explain", default="", help="comma-separated: gradcam,ig,saliency,lime")
    p.add_argument("--operating-point", default="youden")
    p.add_argument("--gating", choices=("dernet", "vindr"), default="vindr",
                   help="dernet: detect only when triage is abnormal; vindr: keep confident "
                        "boxes when it is normal (default)")
    p.add_argument("--batch", type=int, default=4, help="images per model batch")
    p.add_argument("--decode-workers", type=int, default=2,
                   help="processes reading the next batch while this one is analysed "
                        "(0: read in the main process)")
    p.add_argument("--full-resolution", action="store_true",
                   help="decode JPEG 2000 at full size (default: only down to the resolution "
                        "the models use; results are in source pixels either way)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def expand(paths: list[str]) -> list[Path]:
    """Files from files, folders (recursive) and glob patterns, in a stable order."""
    out: list[Path] = []
    for raw in paths:
        matches = [Path(m) for m in sorted(glob.glob(raw, recursive=True))] or [Path(raw)]
        for path in matches:
            if path.is_dir():
                out += sorted(p for p in path.rglob("*")
                              if p.is_file() and p.suffix.lower() in _SUFFIXES)
            else:
                out.append(path)
    return list(dict.fromkeys(out))


def _packs(args: argparse.Namespace):
    from spinexr.errors import ConfigError
    from spinexr.models.pack import load_pack

    models = Path(os.environ.get("SPINEXR_MODELS") or REPO_MODELS)
    pack_dir = args.pack or models / "demo"
    vert_dir = args.vertebrae or (models / "vertebrae" if (models / "vertebrae").is_dir()
                                  else None)
    if not pack_dir.is_dir():
        raise ConfigError(f"model pack {pack_dir} not found; pass --pack DIR", "--pack")
    pack = load_pack(pack_dir)
    vert = load_pack(vert_dir) if vert_dir and Path(vert_dir).resolve() != pack_dir.resolve() \
        else None
    return pack, vert


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from spinexr.analyze import Analyzer, AnalyzerConfig

    pack, vert = _packs(args)
    methods = tuple(m for m in args.explain.split(",") if m)
    analyzer = Analyzer(pack, vertebrae_pack=vert, config=AnalyzerConfig(
        operating_point=args.operating_point, gating=args.gating, explain=methods))
    files = expand(args.paths)
    rows, refused = [], 0
    bar = tqdm(total=len(files), desc="analyze", unit="img", file=sys.stderr,
               disable=args.quiet or None)
    from spinexr.io.prefetch import read_batches

    kwargs = {} if args.full_resolution else {"min_side": analyzer.decode_side()}
    for read in read_batches(files, args.batch, kwargs=kwargs,
                             workers=max(0, args.decode_workers)):
        for path, row in _run_batch(analyzer, read, args.out, pack):
            rows.append((path, row))
            refused += row[0] == "refused"
            bar.update(1)
    bar.close()
    _print_summary(rows, args.out)
    return 2 if refused else 0


def _run_batch(analyzer, read, out: Path, pack):
    """Analyse one batch of :class:`~spinexr.io.prefetch.ReadResult` and write its outputs."""
    from spinexr.analyze import refused_analysis
    from spinexr.report import write_json, analysis_to_dict, write_outputs

    images, results = [], {}
    for r in read:
        path = r.path
        if r.image is not None:
            images.append((path, r.image))
        else:
            a = refused_analysis(path, r.error, analyzer.info)
            target = out / a.image_id
            target.mkdir(parents=True, exist_ok=True)
            write_json(analysis_to_dict(a, source_path=str(path)), target / "result.json")
            results[path] = ("refused", a.image_id, r.error)
    analyses = analyzer.analyze_batch([im for _, im in images]) if images else []
    for (path, image), a in zip(images, analyses):
        write_outputs(a, image, out / a.image_id, heatmap=None,
                      card=pack.manifest.get("card", {}))
        results[path] = (a.gate.outcome, a.image_id, _one_line(a))
    return [(r.path, results[r.path]) for r in read]


def _one_line(a) -> str:
    if not a.gate.accepted:
        return a.gate.reason
    parts = [a.gate.reason] if a.gate.uncertain else []
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
