"""``spinexr inspect FILE...``: what the reader sees in each file, and an optional PNG preview.

Prints no patient identifiers and no UIDs: only the format, transfer syntax, photometric
interpretation, display (LUT) path, size, spacing, modality/body part/view and decode time.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from spinexr.errors import ConfigError, SpinexrError
from spinexr.io import MRI_POLICY, RADIOGRAPH_POLICY, read_radiograph, save_png

_POLICIES = ("radiograph", "mri")

_EPILOG = """\
--png OUT: with one FILE the preview is written to OUT. With several FILEs each preview is
written to OUT's folder as <OUT stem>-<FILE stem>.png (a -2, -3 ... suffix is added when two
FILEs share a stem); when OUT is an existing folder (or ends with /), as OUT/<FILE stem>.png.
Exit status: 0 when every file was read, 2 when any was refused (one 'error: FILE: reason'
line each on stderr; the other files are still inspected).
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "inspect", help="show how radiographs are decoded (no patient data printed)",
        description="Read DICOM/PNG/JPEG/TIFF radiographs and print what the reader saw.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", metavar="FILE", help="images to inspect")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per file and line (JSON Lines) instead of text")
    parser.add_argument("--png", metavar="OUT", type=Path,
                        help="write the normalized image (bone bright) as 8-bit PNG")
    parser.add_argument("--max-side", type=int, metavar="N",
                        help="shrink the PNG so that its longer side is at most N pixels")
    parser.add_argument("--reduce", type=int, default=0, metavar="N",
                        help="decode at 1/2**N size (JPEG 2000 directly at that level)")
    parser.add_argument("--policy", choices=_POLICIES, default="radiograph",
                        help="accepted DICOM modalities (default: radiograph = CR, DX, RG, DR)")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Inspect each file; returns 0 when all were read, 2 when any was refused."""
    policy = {"radiograph": RADIOGRAPH_POLICY, "mri": MRI_POLICY}[args.policy]
    outputs = png_paths(args.png, args.files) if args.png is not None else [None] * len(args.files)
    missing = sorted({str(p.parent) for p in outputs if p is not None and not p.parent.is_dir()})
    if missing:
        raise ConfigError(f"--png: folder {missing[0]} does not exist; create it first")
    if args.max_side is not None and args.max_side < 1:
        raise ConfigError(f"--max-side must be >= 1, got {args.max_side}")
    failed = 0
    for file, out in zip(args.files, outputs):
        try:
            with warnings.catch_warnings():  # codec/pydicom chatter would break one-line errors
                warnings.simplefilter("ignore")
                image = read_radiograph(file, policy=policy, reduce=args.reduce)
            if out is not None:
                save_png(image.pixels, out, max_side=args.max_side)
        except SpinexrError as exc:
            failed += 1
            print(f"error: {_one_line(str(exc))}", file=sys.stderr)
            continue
        record = describe(file, image, out)
        print(json.dumps(record) if args.json else format_text(record))
    return 2 if failed else 0


def png_paths(out: Path, files: list[str]) -> list[Path]:
    """Where each file's preview goes (see the command's epilog)."""
    if out.is_dir() or str(out).endswith(("/", "\\")):
        return _unique([out / f"{Path(f).stem or 'image'}.png" for f in files])
    if len(files) == 1:
        return [out]
    suffix = out.suffix or ".png"
    return _unique([out.with_name(f"{out.stem}-{Path(f).stem or 'image'}{suffix}") for f in files])


def _unique(paths: list[Path]) -> list[Path]:
    seen: dict[Path, int] = {}
    result = []
    for path in paths:
        count = seen.get(path, 0) + 1
        seen[path] = count
        result.append(path if count == 1 else path.with_name(f"{path.stem}-{count}{path.suffix}"))
    return result


def describe(file: str, image, png: Path | None) -> dict[str, Any]:
    """The printable, PHI-free facts about one read image."""
    info, meta = image.info, image.meta
    return {
        "file": file,
        "format": info.format,
        "transfer_syntax": info.transfer_syntax,
        "transfer_syntax_name": info.transfer_syntax_name,
        "modality": meta.get("modality"),
        "body_part_examined": meta.get("body_part_examined"),
        "view_position": meta.get("view_position"),
        "photometric": info.photometric,
        "bits_stored": info.bits_stored,
        "lut_path": info.lut_path,
        "stored_shape": list(info.stored_shape),
        "shape": [image.height, image.width],
        "reduce": info.reduce,
        "spacing_mm": list(image.spacing_mm) if image.spacing_mm else None,
        "spacing_attribute": meta.get("spacing_attribute"),
        "decode_ms": round(info.decode_seconds * 1000, 1),
        "png": str(png) if png is not None else None,
    }


def format_text(record: dict[str, Any]) -> str:
    """A few aligned ``key: value`` lines under the file name."""
    syntax = record["transfer_syntax_name"] or record["format"].upper()
    spacing = ("unknown" if record["spacing_mm"] is None else
               "{:g} x {:g} mm ({})".format(*record["spacing_mm"], record["spacing_attribute"]))
    shape = "{} x {}".format(*record["shape"])
    if record["shape"] != record["stored_shape"]:
        shape += " (stored {} x {}, reduce {})".format(*record["stored_shape"], record["reduce"])
    what = ", ".join(f"{k.replace('_', ' ')} {record[k]}" for k in
                     ("modality", "body_part_examined", "view_position") if record[k])
    lines = [f"{record['file']}:",
             f"  format:       {record['format']}  {syntax}",
             f"  photometric:  {record['photometric']}, {record['bits_stored']} bits stored"
             + (f"; {what}" if what else ""),
             f"  lut path:     {record['lut_path']}",
             f"  shape:        {shape}",
             f"  spacing:      {spacing}",
             f"  decode:       {record['decode_ms']:.1f} ms"]
    if record["png"]:
        lines.append(f"  png:          {record['png']}")
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return " | ".join(part.strip() for part in text.splitlines() if part.strip())
