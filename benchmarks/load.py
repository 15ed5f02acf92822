"""Load test of the web service: ``spinexr serve`` on loopback, N clients posting phantoms.

Starts the service in a subprocess (dev mode ``SPINEXR_AUTH=off`` on 127.0.0.1, rate limit off,
a fresh SQLite database in a temporary folder) with a tiny untrained pack built on the spot
(YOLO11n lesion detector at 64 px, timm's ``test_efficientnet`` triage classifier at 32 px, no
vertebra detector) or ``--pack DIR``. ``--clients`` concurrent clients post small synthetic
DICOM radiographs (``spinexr.phantom``) to ``POST /v1/analyses`` (synchronous) for
``--duration`` seconds, then it prints throughput, latency percentiles, answers by status
(5xx counted apart: there must be none; 429 means the queue was full, as designed) and the
server's resident memory before and after.

    python benchmarks/load.py --quick          # about a minute: 4 clients, 20 s
    python benchmarks/load.py                  # 16 clients, 30 s
    python benchmarks/load.py --pack models/demo --clients 8 --duration 60
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAX_DURATION_S = 600


def _tiny_pack(root: Path) -> Path:
    import torch

    from spinexr.labels import LESION_CLASSES
    from spinexr.models.classifier import Preprocess, create_classifier
    from spinexr.models.pack import save_pack, save_weights
    from spinexr.models.yolo import build_detection_model

    torch.manual_seed(0)
    clf = create_classifier("test_efficientnet", 2, head="binary")
    det = build_detection_model("yolo11n", list(LESION_CLASSES))
    save_pack(root, {
        "name": "tiny-bench", "version": "0.0.0", "synthetic": True,
        "card": {"intended_use": "load benchmark only"},
        "ensemble": {"members": ["clf"], "weights": {"clf": 1.0},
                     "operating_points": {"youden": 0.5}},
        "models": {
            "clf": {"kind": "classifier", "arch": "test_efficientnet", "head": "binary",
                    "labels": ["normal", "abnormal"], "input": Preprocess(32).to_dict(),
                    "weights": "clf.safetensors", "dtype": "float16",
                    "sha256": save_weights(clf.state_dict(), root / "clf.safetensors")},
            "lesions": {"kind": "detector", "arch": "yolo11n", "labels": list(LESION_CLASSES),
                        "input": {"size": 64}, "weights": "lesions.safetensors",
                        "dtype": "float16", "thresholds": {"conf": 0.5},
                        "sha256": save_weights(det.state_dict(),
                                               root / "lesions.safetensors")}}})
    return root


def _phantoms(n: int, size: tuple[int, int]) -> list[bytes]:
    from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom

    out = []
    for seed in range(n):
        buf = io.BytesIO()
        xray_to_dicom(generate_xray(seed, XrayConfig(size=size))).save_as(
            buf, enforce_file_format=True)
        out.append(buf.getvalue())
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _start(pack: Path, data: Path, port: int, workers: int, queue: int) -> subprocess.Popen:
    env = {**os.environ, "SPINEXR_AUTH": "off", "SPINEXR_RATE_LIMIT": "0",
           "SPINEXR_WORKERS": str(workers), "SPINEXR_QUEUE_SIZE": str(queue),
           "SPINEXR_MODELS": str(data / "no-default-models"), "OMP_NUM_THREADS": "1",
           "YOLO_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "YOLO_AUTOINSTALL": "0"}
    cmd = [sys.executable, "-m", "spinexr", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--data-dir", str(data), "--pack", str(pack), "--log-level", "WARNING"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def _wait_ready(base: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    import httpx

    end = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise SystemExit("server exited: " + proc.stderr.read().decode()[-2000:])
            try:
                if (await client.get(f"{base}/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.3)
    raise SystemExit(f"server not ready after {timeout:.0f} s")


async def _client(base: str, files: list[bytes], deadline: float, k: int, stats) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=120) as client:
        i = k
        while time.monotonic() < deadline:
            data = files[i % len(files)]
            i += 1
            t0 = time.perf_counter()
            try:
                r = await client.post(f"{base}/v1/analyses",
                                      files={"file": (f"p{i}.dcm", data, "application/dicom")})
                status = str(r.status_code)
                if r.status_code == 429:
                    await asyncio.sleep(float(r.headers.get("retry-after", "1")))
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            stats["latency"].append(time.perf_counter() - t0)
            stats["status"][status] += 1


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] * 1000


async def _run(args, pack: Path, data: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    files = _phantoms(8, (args.size, int(args.size * 0.8)))
    proc = _start(pack, data, port, args.workers, args.queue)
    try:
        t0 = time.monotonic()
        await _wait_ready(base, proc)
        print(f"server ready in {time.monotonic() - t0:.1f} s (pid {proc.pid})")
        rss0 = _rss_mib(proc.pid)
        stats = {"latency": [], "status": collections.Counter()}
        start = time.monotonic()
        deadline = start + args.duration
        samples: list[tuple[float, float | None]] = []
        sampler = asyncio.create_task(_sample_rss(proc.pid, start, samples))
        await asyncio.gather(*[_client(base, files, deadline, k, stats)
                               for k in range(args.clients)])
        elapsed = time.monotonic() - start
        sampler.cancel()
        rss1 = _rss_mib(proc.pid)
        warm = [r for t, r in samples if t >= args.duration / 3 and r is not None]
        stats["rss_warm"] = warm[0] if warm else None
    finally:
        proc.terminate()
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
    _report(args, stats, elapsed, rss0, rss1, files)


async def _sample_rss(pid: int, start: float, out: list) -> None:
    """The server's RSS once a second (seconds since the load started, MiB)."""
    while True:
        out.append((time.monotonic() - start, _rss_mib(pid)))
        await asyncio.sleep(1.0)


def _report(args, stats, elapsed, rss0, rss1, files) -> None:
    lat, status = stats["latency"], stats["status"]
    ok = lat
    n_ok = status.get("200", 0)
    errors_5xx = sum(v for k, v in status.items() if k.isdigit() and k.startswith("5"))
    other = {k: v for k, v in status.items() if k != "200"}
    print(f"clients {args.clients}, {elapsed:.1f} s, {len(files)} phantom DICOMs of "
          f"{len(files[0]) / 1024:.0f} KiB, workers {args.workers}, queue {args.queue}")
    print(f"requests {len(lat)}, 200 OK {n_ok}, throughput {n_ok / elapsed:.2f} analyses/s")
    if ok:
        print(f"latency ms: p50 {_pct(ok, 50):.0f}  p95 {_pct(ok, 95):.0f}  "
              f"p99 {_pct(ok, 99):.0f}  max {max(ok) * 1000:.0f}")
    print(f"non-200 by status: {dict(sorted(other.items())) or 'none'}; 5xx: {errors_5xx}")
    if rss0 is not None and rss1 is not None:
        print(f"server RSS MiB: before {rss0:.0f}, after {rss1:.0f} ({rss1 - rss0:+.0f})")
        warm = stats.get("rss_warm")
        if warm is not None:   # the first third warms up (allocator arenas, caches)
            print(f"server RSS MiB after the first third of the load (warmed up): {warm:.0f}; "
                  f"growth from then to the end: {rss1 - warm:+.0f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pack", type=Path, default=None, help="model pack (default: a tiny one)")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    p.add_argument("--workers", type=int, default=1, help="server analysis threads")
    p.add_argument("--queue", type=int, default=16, help="server queue size")
    p.add_argument("--size", type=int, default=256, help="phantom height in pixels")
    p.add_argument("--quick", action="store_true", help="4 clients for 20 s")
    args = p.parse_args(argv)
    if args.quick:
        args.clients, args.duration = 4, 20.0
    args.duration = min(max(1.0, args.duration), MAX_DURATION_S)
    with tempfile.TemporaryDirectory(prefix="spinexr-load-") as tmp:
        tmp = Path(tmp)
        pack = args.pack or _tiny_pack(tmp / "pack")
        asyncio.run(_run(args, pack, tmp / "data"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
