"""Soak test of the web service: good, bad and huge uploads, and a kill -9 halfway.

Starts ``spinexr serve`` on loopback (dev mode, rate limit off, a fresh SQLite database in a
temporary folder, the tiny untrained pack of ``benchmarks/load.py`` or ``--pack DIR``). For
``--duration`` seconds ``--clients`` clients send a mix: small phantom DICOMs submitted with
``?async=true`` (their ids are kept), broken files (random bytes, truncated DICOM, a header
whose Rows exceed its pixels: 4xx expected), and huge ones (60 MB of ``DICM`` then zeros,
refused by the header check; 70 MB, over the upload limit: 413). Halfway the server is killed
with SIGKILL and started again on the same data folder. At the end every accepted analysis is
polled until it is finished, and the database is read: it prints requests, answers by status,
latency percentiles, the server's RSS growth in each life, and the accepted analyses that were
lost (never finished) or finished twice (two final audit rows).

    python benchmarks/soak.py                    # 4 clients, 30 s
    python benchmarks/soak.py --clients 8 --duration 120
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import io
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import _free_port, _pct, _phantoms, _rss_mib, _tiny_pack  # noqa: E402

MAX_DURATION_S = 900
HUGE = 60 << 20
OVER_LIMIT = 70 << 20
#: Audit outcomes that are not the end of a run (recovery and shutdown write them).
NOT_FINAL = ("requeued", "interrupted", "shutdown")
#: Error codes of a failed analysis that mean its upload was lost.
LOST_CODES = ("interrupted", "input_missing", "shutdown")
MIX = (("good", 0.55), ("bad", 0.3), ("huge", 0.1), ("over", 0.05))


def _start(pack: Path, data: Path, port: int, log) -> subprocess.Popen:
    env = {**os.environ, "SPINEXR_AUTH": "off", "SPINEXR_RATE_LIMIT": "0",
           "SPINEXR_WORKERS": "1", "SPINEXR_QUEUE_SIZE": "16",
           "SPINEXR_MODELS": str(data / "no-default-models"), "OMP_NUM_THREADS": "1",
           "YOLO_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "YOLO_AUTOINSTALL": "0"}
    cmd = [sys.executable, "-m", "spinexr", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--data-dir", str(data), "--pack", str(pack), "--log-level", "WARNING"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)


async def _ready(base: str, proc: subprocess.Popen, timeout: float = 180) -> float:
    import httpx

    t0 = time.monotonic()
    async with httpx.AsyncClient() as client:
        while time.monotonic() - t0 < timeout:
            if proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode} before it was ready")
            try:
                if (await client.get(f"{base}/ready")).status_code == 200:
                    return time.monotonic() - t0
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"server not ready after {timeout:.0f} s")


def _bad_files(good: bytes, rng: random.Random) -> list[tuple[str, bytes]]:
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(good))
    ds.Rows = ds.Rows * 4
    lying = io.BytesIO()
    ds.save_as(lying, enforce_file_format=True)
    return [("noise.dcm", rng.randbytes(50_000)), ("cut.dcm", good[:len(good) // 2]),
            ("lies.dcm", lying.getvalue()), ("empty.png", b"\x89PNG\r\n\x1a\n" + bytes(64))]


class Soak:
    """Shared state of the clients: answers, latencies and the ids of accepted analyses."""

    def __init__(self, base: str, files: list[bytes], rng: random.Random) -> None:
        self.base, self.files, self.rng = base, files, rng
        self.bad = _bad_files(files[0], rng)
        self.huge = b"\0" * 128 + b"DICM" + b"\0" * (HUGE - 132)
        self.over = b"\0" * OVER_LIMIT
        self.status: collections.Counter = collections.Counter()
        self.by_kind: dict[str, collections.Counter] = collections.defaultdict(
            collections.Counter)
        self.latency: list[float] = []
        self.accepted: list[str] = []

    def pick(self) -> tuple[str, str, bytes]:
        kind = self.rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        if kind == "good":
            return kind, "p.dcm", self.rng.choice(self.files)
        if kind == "bad":
            return (kind, *self.rng.choice(self.bad))
        return (kind, "huge.dcm", self.huge) if kind == "huge" else (kind, "over.dcm", self.over)

    async def client(self, deadline: float) -> None:
        import httpx

        async with httpx.AsyncClient(timeout=120) as http:
            while time.monotonic() < deadline:
                kind, name, data = self.pick()
                t0 = time.perf_counter()
                try:
                    r = await http.post(f"{self.base}/v1/analyses?async=true",
                                        files={"file": (name, data, "application/dicom")})
                    status = str(r.status_code)
                    self.latency.append(time.perf_counter() - t0)
                    if r.status_code == 202:
                        self.accepted.append(r.json()["id"])
                    elif r.status_code in (429, 503):
                        await asyncio.sleep(min(2.0, float(r.headers.get("retry-after", "1"))))
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                    await asyncio.sleep(0.2)          # the server is down (the kill)
                self.status[status] += 1
                self.by_kind[kind][status] += 1


async def _settle(base: str, ids: list[str], timeout: float) -> dict[str, str]:
    """Poll every accepted analysis until it is final; id -> its status (``failed:<code>``
    for failures), or what it still is when the time is up."""
    import httpx

    left, final = set(ids), {}
    end = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=30) as http:
        while left and time.monotonic() < end:
            for analysis_id in sorted(left):
                r = await http.get(f"{base}/v1/analyses/{analysis_id}")
                doc = r.json() if r.status_code == 200 else {"status": str(r.status_code)}
                status = doc.get("status")
                final[analysis_id] = status if status != "failed" else \
                    f"failed:{(doc.get('error') or {}).get('code')}"
                if status not in ("queued", "running"):
                    left.discard(analysis_id)
            if left:
                await asyncio.sleep(0.5)
    return final


def _final_rows(db: Path) -> collections.Counter:
    """analysis id -> how many final audit rows (one per run of the analysis)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT analysis_id, outcome FROM audit WHERE action = 'analyze' "
                            "AND analysis_id IS NOT NULL").fetchall()
    return collections.Counter(a for a, outcome in rows if outcome not in NOT_FINAL)


async def _run(args, pack: Path, data: Path) -> int:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    soak = Soak(base, _phantoms(8, (args.size, int(args.size * 0.8))), random.Random(args.seed))
    log = open(data.parent / "server.log", "wb")
    proc = _start(pack, data, port, log)
    print(f"server ready in {await _ready(base, proc):.1f} s (pid {proc.pid})")
    rss = {"first": [_rss_mib(proc.pid)], "second": []}
    start = time.monotonic()
    deadline = start + args.duration
    clients = [asyncio.create_task(soak.client(deadline)) for _ in range(args.clients)]
    await asyncio.sleep(args.duration / 2)
    rss["first"].append(_rss_mib(proc.pid))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = time.monotonic() - start
    proc = _start(pack, data, port, log)
    back = await _ready(base, proc)
    rss["second"].append(_rss_mib(proc.pid))
    await asyncio.gather(*clients)
    elapsed = time.monotonic() - start
    rss["second"].append(_rss_mib(proc.pid))
    final = await _settle(base, soak.accepted, timeout=args.settle)
    proc.terminate()
    proc.wait(90)
    log.close()
    runs = _final_rows(data / "spinexr.db")
    errors = sum(1 for line in (data.parent / "server.log").read_text(errors="replace")
                 .splitlines() if '"level": "ERROR"' in line)
    return _report(args, soak, final, runs, rss, elapsed, killed_at, back, errors)


def _report(args, soak: Soak, final, runs, rss, elapsed, killed_at, back, errors) -> int:
    status, lat = soak.status, soak.latency
    n_5xx = sum(v for k, v in status.items() if k.isdigit() and k.startswith("5"))
    print(f"clients {args.clients}, {elapsed:.1f} s; kill -9 at {killed_at:.1f} s, ready again "
          f"{back:.1f} s later")
    print(f"requests {sum(status.values())}; by status: {dict(sorted(status.items()))}")
    for kind, counts in sorted(soak.by_kind.items()):
        print(f"  {kind:5s}: {dict(sorted(counts.items()))}")
    if lat:
        print(f"latency ms (answered requests): p50 {_pct(lat, 50):.0f}  p95 {_pct(lat, 95):.0f}"
              f"  max {max(lat) * 1000:.0f}")
    print(f"5xx: {n_5xx} (503: {status.get('503', 0)}); server ERROR log lines: {errors}")
    for life, values in rss.items():
        if len(values) == 2 and None not in values:
            print(f"server RSS MiB, {life} life: {values[0]:.0f} -> {values[1]:.0f} "
                  f"({values[1] - values[0]:+.0f})")
    outcomes = collections.Counter(final.values())
    lost = [i for i in soak.accepted if final.get(i) in (None, "queued", "running", "404")
            or final[i].removeprefix("failed:") in LOST_CODES or runs[i] == 0]
    twice = [i for i in soak.accepted if runs[i] > 1]
    print(f"accepted async analyses {len(soak.accepted)}: {dict(sorted(outcomes.items()))}; "
          f"lost {len(lost)}, duplicated {len(twice)}")
    return 1 if lost or twice or n_5xx - status.get("503", 0) else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pack", type=Path, default=None, help="model pack (default: a tiny one)")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    p.add_argument("--settle", type=float, default=300.0,
                   help="seconds to wait for accepted analyses to finish after the load")
    p.add_argument("--size", type=int, default=256, help="phantom height in pixels")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.duration = min(max(4.0, args.duration), MAX_DURATION_S)
    with tempfile.TemporaryDirectory(prefix="spinexr-soak-") as tmp:
        tmp = Path(tmp)
        pack = args.pack or _tiny_pack(tmp / "pack")
        return asyncio.run(_run(args, pack, tmp / "data"))


if __name__ == "__main__":
    sys.exit(main())
