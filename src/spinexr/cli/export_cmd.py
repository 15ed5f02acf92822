"""``spinexr export --pack DIR --format onnx [--out DIR]``: ONNX files for every model of a pack.

Each model is exported (fp32, dynamic batch, the model's input size), checked against torch on a
seeded batch and timed at batch 1 (median of ``--runs``, denormals flushed on both engines).
``DIR/onnx/export.json`` records the checks; from then on ``spinexr analyze`` and the other
commands run those models on ONNX Runtime on CPU while the weights stay the exported ones.

``--int8 KEYS --calibration PATH...`` then replaces the named models by int8 models
(:mod:`spinexr.models.onnx_quantize`), calibrated on the inputs they receive while the pack
analyses the calibration images; measure the accuracy (``spinexr evaluate``) before use.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from spinexr.errors import ConfigError
from spinexr.models.onnx_runtime import EXPORT_RECORD, read_export_record
from spinexr.models.pack import load_pack

_EPILOG = """\
The files go to DIR/onnx unless --out is given; only DIR/onnx is used automatically at
inference (engine "auto"). Exit status: 0 when every model exported and ONNX Runtime agreed
with torch, 2 otherwise (one 'error: ...' line naming the model and the discrepancy).
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "export", help="export a model pack to ONNX and check it against torch",
        description="Export every model of a pack to ONNX (fp32, dynamic batch), check ONNX "
                    "Runtime against torch and compare their latency at batch 1.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", type=Path, required=True, metavar="DIR",
                        help="model pack directory (pack.json)")
    parser.add_argument("--format", choices=("onnx",), default="onnx",
                        help="export format (only onnx)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="output directory (default: DIR/onnx inside the pack)")
    parser.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    parser.add_argument("--runs", type=int, default=5,
                        help="timed batch-1 runs per engine; the median is shown (default 5, "
                             "0 skips timing)")
    parser.add_argument("--threads", type=int,
                        help="intra-op threads of both engines for timing (default: torch's, "
                             "the number of cores)")
    q = parser.add_argument_group(
        "int8 (CPUs with VNNI/AMX; measure the accuracy with spinexr evaluate before use)")
    q.add_argument("--int8", default="", metavar="KEYS",
                   help="comma-separated models to replace by int8 models, calibrated on "
                        "what they receive while the pack analyses --calibration")
    q.add_argument("--calibration", nargs="+", default=[], metavar="PATH",
                   help="radiographs for the calibration (files, folders, globs); never the "
                        "test images")
    q.add_argument("--calibration-images", type=int, default=32, metavar="N",
                   help="use the first N calibration images (default 32)")
    q.add_argument("--calibration-method", choices=("minmax", "percentile"),
                   default="minmax", help="activation ranges (default minmax)")
    q.add_argument("--vertebrae", type=Path, default=None, metavar="DIR",
                   help="the gate's vertebra pack during the calibration run (default: the "
                        "pack's own vertebra detector)")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Export, then print one line per model; returns 0 (errors raise and exit 2)."""
    if args.runs < 0:
        raise ConfigError(f"--runs must be >= 0, got {args.runs}", "--runs")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}", "--threads")
    _check_int8_args(args)
    pack = load_pack(args.pack)  # a missing or broken pack fails before the heavy imports
    from spinexr.models.onnx_export import export_pack, measure_latency  # torch

    paths = export_pack(pack.root, out_dir=args.out, opset=args.opset)
    out = next(iter(paths.values())).parent if paths else (args.out or pack.root / "onnx")
    record = read_export_record(out) or {"models": {}}
    print(f"pack {pack.name} {pack.version}: {len(paths)} model(s) exported to {out} "
          f"(onnxruntime {record.get('onnxruntime_version')}); checks in {out / EXPORT_RECORD}")
    for key, path in paths.items():
        entry = record["models"][key]
        line = (f"  {key}: {path.name}  {entry['bytes'] / 1e6:.1f} MB  opset {entry['opset']}  "
                f"max abs diff {entry['check']['max_abs_diff']:.2e}")
        if args.runs:
            t = measure_latency(pack, key, path, runs=args.runs, threads=args.threads)
            line += (f"  batch 1: torch {t['torch_ms']:.1f} ms, onnxruntime "
                     f"{t['onnxruntime_ms']:.1f} ms ({t['torch_ms'] / t['onnxruntime_ms']:.2f}x, "
                     f"{t['threads']} thread{'s' if t['threads'] > 1 else ''})")
        print(line)
    if args.out is not None and out.resolve() != (pack.root / "onnx").resolve():
        print(f"note: inference uses {pack.root / 'onnx'} only; copy the files there to use them")
    if args.int8:
        _int8(args, out)
    return 0


def _check_int8_args(args: argparse.Namespace) -> None:
    if not args.int8:
        return
    if not args.calibration:
        raise ConfigError("--int8 needs --calibration images (not the test images)",
                          "--calibration")
    if args.out is not None and args.out.resolve() != (args.pack / "onnx").resolve():
        raise ConfigError("--int8 quantises the pack's own export (DIR/onnx); leave --out out",
                          "--out")
    if args.calibration_images < 1:
        raise ConfigError(f"--calibration-images must be >= 1, got {args.calibration_images}",
                          "--calibration-images")


def _int8(args: argparse.Namespace, out: Path) -> None:
    """Record each --int8 model's inputs while the analyzer processes the calibration images,
    quantise, point export.json at the int8 files, print one line per model."""
    from spinexr.analyze import Analyzer
    from spinexr.cli.analyze_cmd import expand
    from spinexr.models.onnx_quantize import add_int8, latency_ms, record_inputs
    from spinexr.process import ProcessOptions, Processor, Source

    pack = load_pack(args.pack)           # afresh: its models now run the new export
    recorders = record_inputs(pack, [k.strip() for k in args.int8.split(",") if k.strip()])
    vert = load_pack(args.vertebrae) if args.vertebrae else None
    processor = Processor(Analyzer(pack, vertebrae_pack=vert))
    files = expand(args.calibration)[0][:args.calibration_images]
    for i in range(0, len(files), 4):
        processor.process([Source(path=p) for p in files[i:i + 4]], ProcessOptions(render=False))
    entries = add_int8(pack.root, {k: r.batches for k, r in recorders.items()},
                       method=args.calibration_method)
    print(f"int8 models calibrated on {len(files)} image(s), recorded in {out / EXPORT_RECORD}:")
    for key, entry in entries.items():
        check = entry["int8_check"]
        line = (f"  {key}: {entry['file']}  {entry['bytes'] / 1e6:.1f} MB  "
                f"{entry['calibration']['inputs']} calibration inputs  max rel diff "
                f"{check['max_rel_diff']:.2e}, correlation {check['correlation']:.4f}")
        if args.runs:
            x = recorders[key].batches[0][:1]
            fp32_ms, int8_ms = latency_ms(out / entry["fp32_file"], out / entry["file"], x,
                                          runs=args.runs)
            line += (f"  batch 1, 1 thread: fp32 {fp32_ms:.1f} ms, int8 {int8_ms:.1f} ms "
                     f"({fp32_ms / int8_ms:.2f}x)")
        print(line)
