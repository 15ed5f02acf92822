"""The input gate's cost per image: the fitted gate against the detector-only column rule.

On the same images (read into memory once), in one run: **baseline**, the previous design (the
pack's vertebra detector and the column rule of ``GateSettings``: image checks, header modality,
a column of vertebral bodies) and **full**, ``InputGate.from_packs([pack], GateSettings())`` as
``Analyzer.gate`` runs it (image checks, header evidence, vertebra detector, spine classifier,
fitted fusion). A pack without a fitted ``gate`` gets the baseline only.

Each gate judges consecutive chunks of 1 and of 8 images (a warm-up chunk first, not timed; a
chunk's time is shared by its images for the percentiles). ``gate.detector.predict`` and
``gate.classifier.predict_logits`` are timed alone on each chunk's images that pass the image
checks (those the gate hands them); "rest" is the gate minus both (checks, header, fusion,
naming). Per chunk, gates and parts run back to back in alternating order, so load from other
processes falls on both alike; each chunk keeps its best of ``--rounds``. Images: files from
``../shared/data/radiographs`` (spine and other; those the reader refuses are named and left
out) and full-size phantom DICOMs (JPEG 2000, 12-bit); read time shown for context. Torch
threads: ``--threads``; denormals flushed.

    python benchmarks/gate.py --quick --pack /tmp/gate-smoke/pack   # ~1 min: 24 files, 3 phantoms
    python benchmarks/gate.py                                       # ~5 min: 133 files, 6 phantoms

The last line is ``ratio: X``: full-gate over baseline mean seconds per image at batch 8 (as
``spinexr evaluate --task gate``): the extra cost of the classifier and fusion (1.0: none).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import cpu_name, machine_state  # noqa: E402  (sibling benchmark's helpers)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "radiographs"
BATCHES = (1, 8)


def real_files(quick: bool, n_quick: int) -> list[tuple[str, Path]]:
    """(label, path) of the dev set; ``quick``: a fixed, evenly spread subset, 1/3 spine."""
    groups = {g: sorted(p for p in (DATA / g).iterdir() if p.is_file()) for g in ("spine", "other")}
    if quick:
        n_spine = min(len(groups["spine"]), n_quick // 3)
        for g, n in (("spine", n_spine), ("other", n_quick - n_spine)):
            idx = np.linspace(0, len(groups[g]) - 1, n).round().astype(int)
            groups[g] = [groups[g][i] for i in sorted(set(idx))]
    return [(g, p) for g, paths in groups.items() for p in paths]


def load_images(args, tmp: Path) -> tuple[list, list[str], dict, list[str]]:
    """Images read once, their groups, read seconds per group, files the reader refused."""
    import pydicom

    from spinexr.errors import SpinexrError
    from spinexr.io import read_radiograph
    from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom

    files = real_files(args.quick, args.files)
    for seed in range(args.phantoms):
        files.append(("phantom", tmp / f"phantom{seed}.dcm"))
        xray_to_dicom(generate_xray(seed, XrayConfig(size=tuple(args.image_size))),
                      transfer_syntax=pydicom.uid.JPEG2000Lossless).save_as(
            files[-1][1], enforce_file_format=True)
    images, groups, reads, refused = [], [], {}, []
    for group, path in files:
        t0 = time.perf_counter()
        try:
            images.append(read_radiograph(path))
        except SpinexrError as exc:
            refused.append(f"{path.name} ({type(exc).__name__})")
            continue
        reads.setdefault(group, []).append(time.perf_counter() - t0)
        groups.append(group)
    return images, groups, reads, refused


def build_gates(pack_dir: Path) -> dict:
    """{"baseline": InputGate, "full": InputGate} ("full" only when the pack has a gate)."""
    from spinexr.gate.runtime import GateSettings, InputGate
    from spinexr.labels import VERTEBRA_CLASS
    from spinexr.models.pack import load_pack

    pack = load_pack(pack_dir)
    full = ({"full": InputGate.from_packs([pack], GateSettings())}
            if pack.manifest.gate else {})
    spec = pack.manifest.first("vertebra_detector")
    key = full["full"].detector_ref[1] if full else (spec.key if spec else None)
    if key is None:
        raise SystemExit(f"{pack_dir}: no vertebra detector (labels [{VERTEBRA_CLASS!r}]) in "
                         "pack.json; give --pack a vertebra pack")
    return {"baseline": InputGate(GateSettings(), detector=pack.detector(key),
                                  detector_ref=(pack, key), verified=True), **full}


def chunks(n: int, batch: int) -> list[range]:
    return [range(i, min(i + batch, n)) for i in range(0, n, batch)]


def _calls(gate, images, passing: list[bool], c: range) -> dict:
    """What is timed on chunk ``c``: the gate; its models alone, as the gate calls them."""
    batch = [images[i] for i in c]
    px = [im.pixels for im, ok in zip(batch, (passing[i] for i in c)) if ok]
    conf = gate.model.conf if gate.model else gate.settings.conf
    calls = {"gate": lambda: gate.judge(batch)}
    if px:
        calls["detector"] = lambda: gate.detector.predict(px, conf=conf)
        if gate.classifier is not None:
            calls["classifier"] = lambda: gate.classifier.predict_logits(px)
    return calls


def time_batch(gates: dict, images, passing: list[bool], batch: int, rounds: int
               ) -> tuple[dict, dict]:
    """{gate: {part: [best seconds per chunk]}} and each gate's verdicts; per chunk, the
    gates and their parts run back to back in alternating order."""
    parts = chunks(len(images), batch)
    for gate in gates.values():                     # warm-up, not timed
        for call in _calls(gate, images, passing, parts[0]).values():
            call()
    best, verdicts = {name: {} for name in gates}, {name: [] for name in gates}
    for k, c in enumerate(parts):
        for r in range(rounds):
            order = list(gates) if (k + r) % 2 == 0 else list(gates)[::-1]
            for name in order:
                for part, call in _calls(gates[name], images, passing, c).items():
                    t0 = time.perf_counter()
                    out = call()
                    dt = time.perf_counter() - t0
                    times = best[name].setdefault(part, [float("inf")] * len(parts))
                    times[k] = min(times[k], dt)
                    if part == "gate" and r == 0:
                        verdicts[name] += out
    return best, verdicts


def describe(gates: dict, pack: Path) -> None:
    if "full" not in gates:
        print(f"{pack}: pack.json has no fitted 'gate': the full gate is not available; "
              "measuring the baseline (detector-only column rule) only")
    for name, g in gates.items():
        d, c = g.detector, g.classifier
        print(f"{name}: detector {g.detector_ref[1]} ({_engine(d)}, {d.imgsz} px)" + (
            f", classifier {g.model.classifier} ({_engine(c)}, {c.pre.input_size} px, "
            f"contrast {c.pre.contrast})" if c is not None else ""))


def _machine() -> str:
    return " ".join(machine_state().split())   # command lines may hold newlines


def _engine(model) -> str:
    return "torch" if model.engine is None else type(model.engine).__name__


def summary(times: dict[str, list[float]], parts: list[range]) -> dict[str, float]:
    """Per-image seconds of one gate at one batch size (a chunk's time shared by its images)."""
    n = sum(len(c) for c in parts)
    per_image = [t / len(c) for t, c in zip(times["gate"], parts) for _ in c]
    mean = statistics.mean(per_image)
    p50, p95 = np.percentile(per_image, [50, 95])
    row = {"mean": mean, "p50": float(p50), "p95": float(p95), "ips": 1.0 / mean}
    for part in ("detector", "classifier"):
        row[part] = sum(t for t in times.get(part, []) if t != float("inf")) / n
    row["rest"] = mean - row["detector"] - row["classifier"]
    return row


#: Table columns: (heading, row key, scale); "%" columns are shares of the gate's mean.
COLUMNS = [("mean ms", "mean", 1e3), ("p50 ms", "p50", 1e3), ("p95 ms", "p95", 1e3),
           ("img/s", "ips", 1), ("det ms", "detector", 1e3), ("clf ms", "classifier", 1e3),
           ("rest ms", "rest", 1e3), ("det %", "detector", "%"), ("clf %", "classifier", "%")]


def print_table(rows: dict[tuple[str, int], dict]) -> None:
    print(f"\n{'gate':9s} {'batch':>5s} " + " ".join(f"{h:>8s}" for h, _, _ in COLUMNS))
    for (name, batch), r in rows.items():
        print(f"{name:9s} {batch:5d} " + " ".join(
            f"{r[k] * (100 / r['mean'] if f == '%' else f):8.1f}" for _, k, f in COLUMNS))
    print("  per image; det/clf: detector / classifier alone on the images the gate hands "
          "them; rest = mean - det - clf (checks, header, fusion, naming)")


def print_verdicts(verdicts: dict[str, list], groups: list[str]) -> None:
    for name, vs in verdicts.items():
        n = Counter((g, "refused" if not v.result.accepted else "uncertain" if
                     v.result.uncertain else "accepted") for g, v in zip(groups, vs))
        print(f"{name} verdicts: " + "; ".join(f"{g} " + ", ".join(
            f"{k} {n[(g, k)]}" for k in ("accepted", "uncertain", "refused"))
            for g in dict.fromkeys(groups)))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="24 files, 3 phantoms, 2 rounds (~1 min)")
    p.add_argument("--pack", type=Path, default=ROOT / "models" / "vertebrae")
    p.add_argument("--files", type=int, default=24, help="real files in --quick")
    p.add_argument("--phantoms", type=int, help="full-size phantom DICOMs (default 6, quick 3)")
    p.add_argument("--image-size", type=int, nargs=2, default=(2500, 2000), metavar=("H", "W"))
    p.add_argument("--rounds", type=int, help="timings per chunk, best kept (default 3, quick 2)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: 2, or 1 when "
                   "other processes keep the CPUs busy: 2 threads then stall each other)")
    args = p.parse_args(argv)
    args.phantoms = args.phantoms if args.phantoms is not None else (3 if args.quick else 6)
    args.rounds = args.rounds or (2 if args.quick else 3)
    args.auto_threads, free = args.threads is None, os.cpu_count() - os.getloadavg()[0]
    args.threads = args.threads or (2 if free >= 1.5 else 1)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.update(HF_HUB_OFFLINE="1", YOLO_OFFLINE="1", YOLO_AUTOINSTALL="0")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    import torch

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    print(f"spinexr gate benchmark; machine: {os.cpu_count()} CPUs, {cpu_name()}; {args.threads}"
          f" torch threads{' (auto)' if args.auto_threads else ''}; before: {_machine()}")
    gates = build_gates(args.pack)
    describe(gates, args.pack)
    with tempfile.TemporaryDirectory(prefix="spinexr-gate-") as tmp:
        images, groups, reads, refused = load_images(args, Path(tmp))
    sizes = [im.pixels.size for im in images]
    print(f"images: {len(images)} ({', '.join(f'{g} {groups.count(g)}' for g in reads)}); "
          f"megapixels median {np.median(sizes) / 1e6:.2f}, max {max(sizes) / 1e6:.2f}; "
          f"read s/image: " + ", ".join(f"{g} {statistics.mean(t):.3f}" for g, t in reads.items()))
    if refused:
        print(f"  left out, refused by the reader: {', '.join(refused)}")
    from spinexr.gate.runtime import GateSettings, image_checks

    passing = [image_checks(im.pixels, GateSettings())[0] for im in images]
    print(f"  {sum(passing)} of {len(images)} pass the image checks (only those reach the models)")
    rows, verdicts = {}, {}
    for batch in BATCHES:
        best, verdicts = time_batch(gates, images, passing, batch, args.rounds)
        rows.update({(name, batch): summary(times, chunks(len(images), batch))
                     for name, times in best.items()})
    print_table(rows)
    print_verdicts(verdicts, groups)
    print(f"machine after: {_machine()}")
    if "full" not in gates:
        print("ratio: n/a (no fitted gate in the pack)")
        return 0
    print("full / baseline s/image: " + ", ".join(
        f"batch {b} {rows[('full', b)]['mean'] / rows[('baseline', b)]['mean']:.2f}"
        for b in BATCHES))
    print(f"ratio: {rows[('full', 8)]['mean'] / rows[('baseline', 8)]['mean']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
