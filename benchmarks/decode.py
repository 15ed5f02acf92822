"""Decode throughput per codec: spinexr's reader against plain pydicom, in the same run.

For each transfer syntax, full-size phantom radiographs are encoded once (not timed), then
decoded repeatedly by
  * baseline: ``pydicom.dcmread(...).pixel_array`` (decode only, no display pipeline), and
  * spinexr:  ``spinexr.io.read_radiograph(...)`` (decode + rescale/VOI/inversion to float32).
For JPEG 2000 it also measures reduced-resolution decoding (``reduce=1..3``): its speed-up over
a full decode and its error at model input size against full decode + area resize.

    python benchmarks/decode.py            # 3 images of ~2500 x 2000 px, 3 repeats
    python benchmarks/decode.py --quick    # 2 images, 1 repeat
"""
from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
import pydicom
from PIL import Image

from spinexr.io import read_radiograph
from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom

CODECS = {
    "explicit-le": pydicom.uid.ExplicitVRLittleEndian,
    "rle": pydicom.uid.RLELossless,
    "jpeg-ls": pydicom.uid.JPEGLSLossless,
    "j2k-lossless": pydicom.uid.JPEG2000Lossless,
    "j2k-lossy": pydicom.uid.JPEG2000,
}


def _encode(phantoms, ts: str) -> list[bytes]:
    out = []
    for ph in phantoms:
        buf = io.BytesIO()
        xray_to_dicom(ph, transfer_syntax=ts).save_as(buf, enforce_file_format=True)
        out.append(buf.getvalue())
    return out


def _time_each(fn, blobs: list[bytes], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        for blob in blobs:
            t0 = time.perf_counter()
            fn(blob)
            times.append(time.perf_counter() - t0)
    return times


def _baseline(blob: bytes) -> np.ndarray:
    return pydicom.dcmread(io.BytesIO(blob)).pixel_array


def _resize(img: np.ndarray, side: int) -> np.ndarray:
    pil = Image.fromarray(np.asarray(img, dtype=np.float32), mode="F")
    return np.asarray(pil.resize((side, side), Image.Resampling.BOX), dtype=np.float32)


def _reduced_rows(blobs: list[bytes], repeats: int, full_s: float, side: int) -> list[str]:
    rows = []
    refs = [_resize(read_radiograph(b).pixels, side) for b in blobs]
    for level in (1, 2, 3):
        times = _time_each(lambda b, lv=level: read_radiograph(b, reduce=lv), blobs, repeats)
        errs = [np.abs(_resize(read_radiograph(b, reduce=level).pixels, side) - ref)
                for b, ref in zip(blobs, refs)]
        med = statistics.median(times)
        every = np.concatenate([e.ravel() for e in errs])
        rows.append(f"  reduce={level}: {med * 1e3:7.1f} ms/img  speed-up x{full_s / med:4.1f}  "
                    f"|error| at {side}px: mean {every.mean():.4f} p99 {np.quantile(every, 0.99):.4f}"
                    f" (of 1.0; edges of the collimation dominate the tail)")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 images, 1 repeat")
    parser.add_argument("--n", type=int, default=3, help="phantom images per codec")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, nargs=2, default=(2500, 2000), metavar=("H", "W"))
    parser.add_argument("--model-side", type=int, default=512, help="model input size for the error")
    args = parser.parse_args(argv)
    n, repeats = (2, 1) if args.quick else (args.n, args.repeats)
    config = XrayConfig(size=tuple(args.size))
    phantoms = [generate_xray(seed, config) for seed in range(n)]
    print(f"{n} phantom radiographs of {args.size[0]} x {args.size[1]} px, 12-bit; "
          f"{repeats} repeat(s); median ms per image")
    print(f"{'codec':14s} {'MB/img':>7s} {'pydicom':>9s} {'spinexr':>9s} {'img/s ours':>11s} {'ratio':>6s}")
    for name, ts in CODECS.items():
        blobs = _encode(phantoms, ts)
        base = statistics.median(_time_each(_baseline, blobs, repeats))
        ours = statistics.median(_time_each(read_radiograph, blobs, repeats))
        mb = sum(map(len, blobs)) / len(blobs) / 1e6
        print(f"{name:14s} {mb:7.2f} {base * 1e3:9.1f} {ours * 1e3:9.1f} {1 / ours:11.2f} "
              f"{base / ours:6.2f}")
        if name.startswith("j2k"):
            for row in _reduced_rows(blobs, repeats, ours, args.model_side):
                print(row)
    print("ratio = pydicom decode time / spinexr decode+normalize time (>1: spinexr faster)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
