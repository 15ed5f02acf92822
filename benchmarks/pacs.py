"""Throughput of the DICOM node on loopback, beside ``spinexr analyze`` on the same images.

Writes ``--images`` synthetic spine radiographs (``spinexr.phantom``, JPEG 2000 lossless, the
size of ``--size``), starts an in-process PACS (a pynetdicom Storage SCP) and the node
(:class:`spinexr.pacs.node.Node`, the committed packs ``models/demo`` + ``models/vertebrae`` or
``--pack``; models loaded and run once on another image before the clock starts), sends the images over ``--associations``
parallel associations and prints images per second:

- received: C-STORE answered (the images are on disk in the node's queue);
- analysed: through the one process step;
- forwarded: their SR, GSPS and SC stored by the PACS (the end-to-end rate);

then runs ``spinexr analyze`` (in this process) on the first image and on all of them and prints
its rate with model loading and beyond it (the difference of the two runs), and the ratio. Bounded: ``--max-seconds`` for the node part (what is
not done by then is reported as such).

    python benchmarks/pacs.py                       # 24 images, 4 associations
    python benchmarks/pacs.py --images 48 --associations 8 --max-seconds 300
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")


def _images(folder: Path, n: int, size: tuple[int, int]) -> list[Path]:
    from pydicom.uid import JPEG2000Lossless

    from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom

    paths = []
    for i in range(n):
        ds = xray_to_dicom(generate_xray(1000 + i, XrayConfig(size=size)),
                           transfer_syntax=JPEG2000Lossless)
        path = folder / f"img{i:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


class _Pacs:
    def __init__(self) -> None:
        from pynetdicom import AE, AllStoragePresentationContexts, evt

        self.count, self.lock, self.last = 0, threading.Lock(), 0.0
        ae = AE(ae_title="PACS")
        ae.supported_contexts = AllStoragePresentationContexts

        def store(event):
            with self.lock:
                self.count += 1
                self.last = time.perf_counter()
            return 0x0000

        self.server = ae.start_server(("127.0.0.1", 0), block=False,
                                      evt_handlers=[(evt.EVT_C_STORE, store)])
        self.port = self.server.server_address[1]


def _send(port: int, paths: list[Path], done: list[float]) -> None:
    from pydicom import dcmread
    from pynetdicom import AE

    ae = AE(ae_title="MODALITY")
    for ts in {str(dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID)
               for p in paths[:1]}:
        ae.add_requested_context("1.2.840.10008.5.1.4.1.1.1.1", ts)
        ae.add_requested_context("1.2.840.10008.5.1.4.1.1.1", ts)
    assoc = ae.associate("127.0.0.1", port, ae_title="SPINEXR")
    for p in paths:
        status = assoc.send_c_store(p)
        if status and status.Status == 0:
            done.append(time.perf_counter())
    assoc.release()


def _processor(pack: Path | None):
    from spinexr.analyze import Analyzer
    from spinexr.models.pack import resolve_packs
    from spinexr.process import Processor

    t0 = time.perf_counter()
    p, v = resolve_packs(pack)
    proc = Processor(Analyzer(p, vertebrae_pack=v))
    return proc, time.perf_counter() - t0, p.manifest.name


def _node_run(args, paths: list[Path], tmp: Path) -> dict:
    from spinexr.pacs import Destination, NodeConfig
    from spinexr.pacs.node import Node

    from spinexr.models.threads import apply_thread_plan, plan_threads

    apply_thread_plan(plan_threads(1, decode_workers=0))     # as spinexr pacs listen does
    processor, load_s, pack_name = _processor(args.pack)
    from spinexr.process import Source

    warm = _images(tmp, 1, (256, 200))[0]          # first-call costs, as analyze's 1-image run
    processor.process([Source(data=warm.read_bytes(), name="warm-up")])
    pacs = _Pacs()
    config = NodeConfig(host="127.0.0.1", port=0, data_dir=tmp / "node", study_window_s=0.0,
                        batch=args.batch, max_associations=args.associations + 2,
                        destinations=(Destination("PACS", "127.0.0.1", pacs.port),))
    received: list[float] = []
    with Node(config, processor) as node:
        t0 = time.perf_counter()
        shares = [paths[i::args.associations] for i in range(args.associations)]
        senders = [threading.Thread(target=_send, args=(node.port, s, received)) for s in shares]
        for t in senders:
            t.start()
        deadline = t0 + args.max_seconds
        analysed_at = None
        while time.perf_counter() < deadline and pacs.count < 3 * len(paths):
            done = sum(node.metrics.value("spinexr_pacs_analysed_total", outcome=o)
                       for o in ("accepted", "uncertain", "refused"))
            if analysed_at is None and done >= len(paths):
                analysed_at = time.perf_counter()
            time.sleep(0.02)
        for t in senders:
            t.join(max(0.0, deadline - time.perf_counter()))
        analysed = sum(node.metrics.value("spinexr_pacs_analysed_total", outcome=o)
                       for o in ("accepted", "uncertain", "refused"))
        analysed_at = analysed_at or time.perf_counter()
    pacs.server.shutdown()
    return {"pack": pack_name, "load_s": load_s, "received": len(received),
            "received_s": (max(received) - t0) if received else float("nan"),
            "analysed": int(analysed), "analysed_s": analysed_at - t0,
            "forwarded": pacs.count // 3, "forwarded_s": (pacs.last - t0) if pacs.count else
            float("nan")}


def _analyze_run(args, paths: list[Path], tmp: Path) -> tuple[float, float]:
    """Seconds of ``spinexr analyze`` on one image and on all of them (each run loads the
    models; the difference is the time the other images took)."""
    from spinexr.cli import main

    times = []
    for k, chosen in enumerate((paths[:1], paths)):
        argv = ["analyze", *map(str, chosen), "--out", str(tmp / f"analyze-{k}"), "--quiet"]
        if args.pack:
            argv += ["--pack", str(args.pack)]
        t0 = time.perf_counter()
        main(argv)
        times.append(time.perf_counter() - t0)
    return times[0], times[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--associations", type=int, default=4)
    ap.add_argument("--size", type=int, nargs=2, default=(1024, 832), metavar=("H", "W"))
    ap.add_argument("--batch", type=int, default=8, help="images per analysis call")
    ap.add_argument("--pack", type=Path, default=None, help="default: models/demo")
    ap.add_argument("--max-seconds", type=float, default=300.0)
    args = ap.parse_args()
    import logging

    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
    import torch

    torch.set_flush_denormal(True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        folder = tmp / "images"
        folder.mkdir()
        paths = _images(folder, args.images, tuple(args.size))
        mb = sum(p.stat().st_size for p in paths) / 1e6
        print(f"{len(paths)} phantom radiographs {args.size[0]}x{args.size[1]}, JPEG 2000 "
              f"lossless, {mb:.1f} MB; {args.associations} parallel associations; "
              f"{os.cpu_count()} CPUs")
        node = _node_run(args, paths, tmp)
        one, total = _analyze_run(args, paths, tmp)
    n = len(paths)
    print(f"pack {node['pack']} (load {node['load_s']:.1f} s, not timed)")
    for what in ("received", "analysed", "forwarded"):
        k, s = node[what], node[f"{what}_s"]
        print(f"  node {what:9s}: {k:4d}/{n} in {s:7.2f} s = {k / s:6.2f} images/s")
    marginal = (n - 1) / max(1e-9, total - one)
    print(f"  spinexr analyze : {n:4d}/{n} in {total:7.2f} s = {n / total:6.2f} images/s with "
          f"model loading; 1 image took {one:.2f} s, so {n - 1} more took {total - one:.2f} s "
          f"= {marginal:.2f} images/s")
    if node["forwarded"]:
        rate = node["forwarded"] / node["forwarded_s"]
        print(f"  ratio node end-to-end / spinexr analyze (beyond loading): "
              f"{rate / marginal:.2f}")
    return 0 if node["forwarded"] == n else 1


if __name__ == "__main__":
    sys.exit(main())
