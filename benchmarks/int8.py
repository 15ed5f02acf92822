"""The accuracy change of int8 models, measured as the issue asks: copies of the main pack and
the vertebra pack are exported twice (fp32; fp32 then ``--int8`` for the chosen models,
calibrated on training images through ``spinexr export``), each copy is evaluated with
``spinexr evaluate`` (each model alone), and the AUROC / mAP differences are printed against
the tolerances |delta AUROC| <= 0.005 and |delta mAP| <= 0.01.

    python benchmarks/int8.py --pack models/demo --vertebrae models/vertebrae \\
        --triage-data /tmp/q8/triage/data --vertebra-data ../shared/data/vertebrae \\
        --calibration /tmp/q8/calib/train_images \\
        --calibration-vertebrae ../shared/data/vertebrae/train/images --work /tmp/q8/run
    python benchmarks/int8.py --compare A/metrics.json B/metrics.json

``--triage-data``: a test split in a layout ``spinexr evaluate`` reads (for the demo pack, the
``test`` set of ``configs/demo/triage.yaml``, written by ``spinexr.train.config.
materialize_data(cfg, out, only=("test",))``); calibration images must not be test images.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from spinexr.cli import main as spinexr

AUROC_TOL, MAP_TOL = 0.005, 0.01


def flat(doc: dict, prefix: str = "") -> dict[str, float]:
    """The AUROC and mAP figures of a metrics.json, flattened to dotted keys."""
    out = {}
    for k, v in doc.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and (
                "auroc" in k or k.startswith("map")) and "_ci" not in k:
            out[prefix + k] = float(v)
    return out


def compare(a: Path, b: Path) -> bool:
    """Print every shared AUROC / mAP figure of two metrics.json; True when all within."""
    fa, fb = flat(json.loads(Path(a).read_text())), flat(json.loads(Path(b).read_text()))
    ok = True
    for k in sorted(set(fa) & set(fb)):
        tol = AUROC_TOL if "auroc" in k else MAP_TOL
        within = abs(fb[k] - fa[k]) <= tol
        ok &= within
        print(f"  {k}: {fa[k]:.4f} -> {fb[k]:.4f} (delta {fb[k] - fa[k]:+.4f}, "
              f"{'within' if within else 'OUTSIDE'} {tol})")
    return ok


def _copy(src: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("onnx"))
    return dst


def _run(argv: list[str]) -> None:
    print("$ spinexr " + " ".join(argv), flush=True)
    if spinexr(argv) != 0:
        raise SystemExit(f"spinexr {argv[0]} failed")


def measure(args: argparse.Namespace) -> bool:
    ok = True
    for kind in ("fp32", "int8"):
        main = _copy(args.pack, args.work / kind / "main")
        vert = _copy(args.vertebrae, args.work / kind / "vertebrae")
        extra = {"main": [], "vertebrae": []}
        if kind == "int8":
            extra["main"] = ["--int8", args.keys, "--calibration", str(args.calibration),
                             "--vertebrae", str(args.work / "fp32" / "vertebrae")]
            extra["vertebrae"] = ["--int8", args.vertebra_keys, "--calibration",
                                  str(args.calibration_vertebrae)]
        for name, root in (("main", main), ("vertebrae", vert)):
            _run(["export", "--pack", str(root), "--runs", "3", "--threads", "1", *extra[name]])
        _run(["evaluate", "--pack", str(main), "--data", str(args.triage_data), "--split",
              "test", "--out", str(args.work / kind / "eval-main"), "--no-end-to-end"])
        _run(["evaluate", "--pack", str(vert), "--data", str(args.vertebra_data), "--split",
              "test", "--out", str(args.work / kind / "eval-vertebrae"), "--no-end-to-end"])
    for part in ("eval-main", "eval-vertebrae"):
        print(f"{part}: fp32 -> int8")
        ok &= compare(args.work / "fp32" / part / "metrics.json",
                      args.work / "int8" / part / "metrics.json")
    return ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pack", type=Path)
    p.add_argument("--vertebrae", type=Path)
    p.add_argument("--keys", default="densenet,efficientnetv2,resnet",
                   help="models of the main pack to quantise")
    p.add_argument("--vertebra-keys", default="vertebra_detector")
    p.add_argument("--triage-data", type=Path)
    p.add_argument("--vertebra-data", type=Path)
    p.add_argument("--calibration", type=Path)
    p.add_argument("--calibration-vertebrae", type=Path)
    p.add_argument("--work", type=Path)
    p.add_argument("--compare", type=Path, nargs=2, metavar=("FP32", "INT8"))
    args = p.parse_args(argv)
    if args.compare:
        return 0 if compare(*args.compare) else 1
    ok = measure(args)
    print("all within the tolerances" if ok else "some figures are OUTSIDE the tolerances")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
