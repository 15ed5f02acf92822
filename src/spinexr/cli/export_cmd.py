"""``spinexr export --pack DIR --format onnx [--out DIR]``: ONNX files for every model of a pack.

Each model is exported (fp32, dynamic batch, the model's input size), checked against torch on a
seeded batch and timed at batch 1 (median of ``--runs``, denormals flushed on both engines).
``DIR/onnx/export.json`` records the checks; from then on ``spinexr analyze`` and the other
commands run those models on ONNX Runtime on CPU while the weights stay the exported ones.
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
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Export, then print one line per model; returns 0 (errors raise and exit 2)."""
    if args.runs < 0:
        raise ConfigError(f"--runs must be >= 0, got {args.runs}", "--runs")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}", "--threads")
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
    return 0
