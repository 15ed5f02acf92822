"""End-to-end analysis throughput: spinexr's Analyzer against the seed's design, same weights.

Both paths analyse the same JPEG 2000 DICOM files with the same weights in the same run:

* **baseline**, the seed's design (pronad1/Deploy-Model ``app.py``), re-implemented minimally:
  per image, one after another, ``pydicom.dcmread`` + ``pixel_array`` (pylibjpeg, as the seed
  asks), MONOCHROME1 flip and min-max to 8 bits, a PIL RGB image, torchvision ``Resize`` /
  ``ToTensor`` / ``Normalize`` (ImageNet) once, DenseNet121, EfficientNetV2-S (timm
  ``tf_efficientnetv2_s``) and ResNet50 as eager 3-channel timm models at batch 1, weighted
  vote (0.38 / 0.36 / 0.26), then ultralytics ``YOLO(...)`` predict (conf 0.25, its own
  rectangular letterbox) on the RGB array. No gate. No overlay/PNG rendering (the seed also
  draws and encodes two PNGs per request; left out because the Analyzer does not render).
* **ours**: ``Analyzer.analyze_batch`` on ONNX Runtime (the pack is exported with
  ``export_pack``; engine "auto" picks it), batches of ``--batch`` images, files read by
  ``spinexr.io.prefetch.read_batches`` (as ``spinexr analyze`` reads them): worker processes
  decode the next batch while the current one runs (openjpeg holds the GIL for the whole
  decode, so threads would stall the analyzer's Python). Our path always gates (image
  checks + the committed vertebra detector at 416 px): that is part of its cost.
* **ours, N processes** (role ``engine``): what ``spinexr analyze --engine local --workers N``
  runs, without its results store (no Parquet parts: the benchmark measures the analysis): a
  :class:`~spinexr.batch.LocalEngine` of N worker processes, each loading the pack once and
  reading + analysing whole chunks of ``--engine-chunk`` images (default 1, so the workers
  stay balanced; on 1-2 threads batch 1 costs the same CPU per image) through the same
  ``spinexr.process`` step, the same ONNX export, read policy and gating as "ours". N is
  ``--engine-workers`` (default: the CPUs free when its child starts, as the thread plan
  counts them); the engine sizes each worker's intra-op threads to its share of the free CPUs
  (1 thread each at the default N; ``--plan fixed``: 1 thread each). No decode processes and
  no intra-op threads contending: one image per core. Latency is n/a (images are analysed
  side by side, not in order), and so is the CPU time in the models (the workers do not
  report it); its rows are checked against "ours" (same probabilities and gate outcomes).

Shared: the pack's safetensors (classifiers stored 1-channel; the baseline's 3-channel stems
get the 1-channel kernel / 3 per colour, and the pack's grey mean/std are the ImageNet ones
folded into one channel, so both compute the same function of a grey image), squash resize to
S x S with antialiased bilinear, the YOLO11 weights, ``--threads`` intra-op threads (2) in
torch and ORT, denormals flushed in both. By default both detect on every image (``--detect``).
Weights are untrained (fixed seeds): the numbers are about speed; the probabilities mean
nothing. Each path runs in a fresh subprocess (peak RSS from VmHWM); ours also runs at batch 1
and with a full-resolution decode as extra columns. "ours" reads as ``spinexr analyze`` does:
JPEG 2000 is decoded only down to the largest model input (``read_radiograph(min_side=)``,
here level 1 of a 2500 px image for YOLO's 640), results still in source pixels.

    python benchmarks/pipeline.py --quick      # ~2 min: 12 images of 2500 x 2000, batch 4
    python benchmarks/pipeline.py              # ~9 min: 40 images, batch 8, 2 rounds
    python benchmarks/pipeline.py --reduce 0   # the ratio with ours decoding at full size
    python benchmarks/pipeline.py --size 384 --yolo l
    python benchmarks/pipeline.py --quick --busy 1   # one CPU-burning process during both sides
    python benchmarks/pipeline.py --quick --busy 1 --int8 passed   # ours on int8 models (those
                                     # within the accuracy tolerances); baseline fp32
    python benchmarks/pipeline.py --quick --engine-workers 0   # without the N-processes column

Under ``--plan auto`` (the default) ours sizes its intra-op threads and decode processes to the
CPUs free when its child starts, as ``spinexr`` does (``spinexr.models.threads``); the
baseline keeps ``--threads`` (the seed's design: torch's default, every core). ``--busy N``
holds for every column: the burners run through all rounds of all of them.

The output ends with one ``ratio (COLUMN): X`` line per column of ours (its images/s over the
baseline's), then the headline: the last line printed is ``ratio: X``, the best of those
columns that read at the configured ``--reduce`` ("ours", "ours (batch 1)" and "ours, N
processes"; not the full-decode diagnostic column), named on the line before it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

#: The seed's triage ensemble (DERNet): member -> weight.
MEMBERS = {"densenet121": 0.38, "tf_efficientnetv2_s": 0.36, "resnet50": 0.26}
THRESHOLD = 0.449          # the seed's operating point (app.py CLASSIFICATION_THRESHOLD)
SEED_CONF = 0.25           # the seed's YOLO confidence
#: Our path's runs: the configured one ("ours"), its variants and the process-pool engine.
VARIANTS = {"ours": {}, "ours-b1": {"batch": 1}, "ours-full": {"reduce": 0}, "engine": {}}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
VERTEBRAE = Path(__file__).resolve().parents[1] / "models" / "vertebrae"
#: ``--int8``: which of ours' models become int8 (pack -> model keys).
INT8 = {"none": {},
        "passed": {"pack": tuple(MEMBERS), "vertebrae": ("vertebra_detector",)},
        "all": {"pack": (*MEMBERS, "lesions"), "vertebrae": ("vertebra_detector",)}}
#: Calibration phantoms are drawn from seeds this far from the timed images' seeds.
CALIBRATION_SEED_OFFSET = 100_000


# ------------------------------------------------------------------------------------ setup
def grey_mean_std() -> tuple[float, float]:
    """Grey (mean, std) with ``w (x - m) / s == sum_c (w / 3) (x - m_c) / s_c`` for every x:
    a 1-channel model on them computes exactly what its 3-channel twin (kernel / 3 per colour)
    computes on the ImageNet-normalised RGB replica of the same image."""
    inv = float(np.mean([1.0 / s for s in IMAGENET_STD]))
    return float(np.mean([m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])) / inv, 1.0 / inv


def build_pack(root: Path, size: int, yolo: str, seed: int) -> None:
    """The benchmark pack: the seed's three triage CNNs (binary heads) and a YOLO11 lesion
    detector, untrained from fixed seeds, saved as a spinexr pack (fp16 safetensors)."""
    import torch

    from spinexr.labels import LESION_CLASSES
    from spinexr.models.classifier import Preprocess, create_classifier
    from spinexr.models.pack import save_pack, save_weights
    from spinexr.models.yolo import build_detection_model

    mean, std = grey_mean_std()
    pre = Preprocess(size, mean=mean, std=std, interpolation="bilinear", resize="squash")
    models = {}
    for i, arch in enumerate(MEMBERS):
        torch.manual_seed(seed + i)
        sha = save_weights(create_classifier(arch, 2, head="binary").state_dict(),
                           root / f"{arch}.safetensors")
        models[arch] = {"kind": "classifier", "arch": arch, "head": "binary", "dtype": "float16",
                        "labels": ["normal", "abnormal"], "input": pre.to_dict(),
                        "weights": f"{arch}.safetensors", "sha256": sha}
    torch.manual_seed(seed + len(MEMBERS))
    det = build_detection_model(f"yolo11{yolo}", list(LESION_CLASSES))
    sha = save_weights(det.state_dict(), root / "lesions.safetensors")
    models["lesions"] = {"kind": "detector", "arch": f"yolo11{yolo}", "dtype": "float16",
                         "labels": list(LESION_CLASSES), "input": {"size": 640},
                         "weights": "lesions.safetensors", "sha256": sha,
                         "thresholds": {"conf": SEED_CONF}}
    save_pack(root, {"name": "pipeline-bench", "version": "0.0.0", "synthetic": True,
                     "card": {"intended_use": "benchmarks only: untrained weights"},
                     "models": models,
                     "ensemble": {"members": list(MEMBERS), "weights": MEMBERS,
                                  "operating_points": {"youden": THRESHOLD}}})


def make_images(out: Path, n: int, hw: tuple[int, int], seed: int, vertebrae: Path) -> dict:
    """``n`` JPEG 2000 lossless phantom DICOMs that our gate accepts, written to ``out``.

    Phantoms the gate refuses are skipped (their analysis would stop at the gate and make our
    path look faster); the gate is run on the uncompressed encoding (lossless: same pixels).
    """
    import io

    import pydicom

    from spinexr.analyze import Analyzer
    from spinexr.io import read_radiograph
    from spinexr.models.pack import load_pack
    from spinexr.phantom import XrayConfig, generate_xray, xray_to_dicom

    gate = Analyzer(load_pack(vertebrae))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    kept, tried, sizes = 0, 0, []
    while kept < n:
        if tried >= 4 * n + 8:
            raise RuntimeError(f"only {kept} of {tried} phantoms passed the gate")
        ph = generate_xray(seed + tried, XrayConfig(size=hw))
        tried += 1
        buf = io.BytesIO()
        xray_to_dicom(ph).save_as(buf, enforce_file_format=True)
        if not gate.analyze(read_radiograph(buf.getvalue())).gate.accepted:
            continue
        path = out / f"{kept:03d}.dcm"
        xray_to_dicom(ph, transfer_syntax=pydicom.uid.JPEG2000Lossless).save_as(
            path, enforce_file_format=True)
        sizes.append(path.stat().st_size)
        kept += 1
    return {"n": n, "tried": tried, "mb": float(np.mean(sizes)) / 1e6}


def yolo_shape(hw: tuple[int, int], imgsz: int = 640, stride: int = 32) -> tuple[int, int]:
    """The input (H, W) of ultralytics' predict (``rect=True``: letterbox to the next stride)."""
    r = min(imgsz / hw[0], imgsz / hw[1])
    h, w = round(hw[0] * r), round(hw[1] * r)
    return h + (imgsz - h) % stride, w + (imgsz - w) % stride


def count_flops(pack_dir: Path, vertebrae: Path, size: int, hw: tuple[int, int]) -> dict:
    """FLOPs (torch's FlopCounterMode, 2 per multiply-add) of every CNN at the input each path
    gives it, batch 1: ``{"ours": {model: flops}, "baseline": {model: flops}}``."""
    import timm
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from spinexr.models.pack import load_pack

    def flops(module, shape) -> float:
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            module.eval()(torch.zeros(shape))
        return float(counter.get_total_flops())

    pack, vpack = load_pack(pack_dir), load_pack(vertebrae)
    ours, base = {}, {}
    for arch in MEMBERS:
        ours[arch] = flops(pack.classifier(arch, engine="torch").model, (1, 1, size, size))
        base[arch] = flops(timm.create_model(arch, num_classes=1), (1, 3, size, size))
    det = pack.detector("lesions", engine="torch").model
    ours["lesions"] = flops(det, (1, 3, 640, 640))
    base["lesions"] = flops(det, (1, 3, *yolo_shape(hw)))
    ours["vertebrae"] = flops(vpack.detector("vertebra_detector", engine="torch").model,
                              (1, 3, 416, 416))
    return {"ours": ours, "baseline": base}


def matmul_peak(threads: int, n: int = 4096, reps: int = 5) -> dict[str, float]:
    """Best GFLOP/s of an n x n fp32 matmul with ``threads`` threads, in torch (MKL) and in
    ONNX Runtime (MLAS). MKL takes its AVX2 path on AMD processors: on a Zen 5 (full-width
    AVX-512) it reaches about half of what MLAS does, so the larger one is the peak."""
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper

    torch.set_num_threads(threads)
    a, b = torch.rand(n, n), torch.rand(n, n)
    spec = [helper.make_tensor_value_info(k, TensorProto.FLOAT, [n, n]) for k in "ABC"]
    graph = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["C"])], "mm",
                              spec[:2], spec[2:])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    feeds = {"A": a.numpy(), "B": b.numpy()}
    calls = {"torch": lambda: a @ b, "onnxruntime": lambda: session.run(None, feeds)}
    out = {}
    for name, call in calls.items():
        call()
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            call()
            best = min(best, time.perf_counter() - t0)
        out[name] = 2 * n ** 3 / best / 1e9
    return out


def fp32_peaks(threads: list[int]) -> dict[int, float]:
    """The fp32 peak (best of torch and ONNX Runtime) for each of ``threads``, printed. Measured
    before the runs, without the burners, for 1 thread and ``--threads``; a thread count a
    column's plan chose beyond those is measured after the runs (burners stopped)."""
    peaks = {}
    for t in threads:
        rates = matmul_peak(t)
        peaks[t] = max(rates.values())
        print(f"fp32 peak, 4096^2 matmul with {t} thread{'s' if t > 1 else ''}, best of 5: "
              + ", ".join(f"{k} {v:.0f}" for k, v in rates.items())
              + f" GFLOP/s; {peaks[t]:.0f} used as the peak of columns with {t}")
    return peaks


def cpu_name() -> str:
    """Model name, family and model from /proc/cpuinfo (family 25 is Zen 3/4, 26 is Zen 5)."""
    info = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    avx512 = "avx512f" in info.get("flags", "").split()
    return (f"{info.get('model name', '?')}, family {info.get('cpu family', '?')} model "
            f"{info.get('model', '?')}{', AVX-512' if avx512 else ''}")


@contextmanager
def burners(n: int):
    """``n`` processes that each keep one CPU busy (a spinning Python loop) for the block: the
    contention a shared server or CI runner adds, the same for every run inside the block."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------------- baseline
def seed_pixels(path: Path) -> np.ndarray:
    """The seed's ``preprocess_dicom``: stored values, MONOCHROME1 flipped, min-max to uint8."""
    import pydicom

    ds = pydicom.dcmread(path)
    ds.pixel_array_options(decoding_plugin="pylibjpeg")   # the seed asks for pylibjpeg
    arr = ds.pixel_array
    if ds.get("PhotometricInterpretation") == "MONOCHROME1":
        arr = np.amax(arr) - arr
    arr = np.maximum(arr.astype(np.float64), 0)
    lo, hi = arr.min(), arr.max()
    arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
    return np.uint8(arr)


class SeedPipeline:
    """The seed's per-image path with the pack's weights (torch eager, batch 1)."""

    def __init__(self, pack_dir: Path, size: int):
        import timm
        from torchvision import transforms

        from spinexr.models.pack import load_pack

        pack = load_pack(pack_dir)
        self.models = {arch: _three_channel(timm.create_model(arch, num_classes=1),
                                            pack.state_dict(arch)) for arch in MEMBERS}
        self.transform = transforms.Compose([
            transforms.Resize((size, size)), transforms.ToTensor(),
            transforms.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD)])
        self.yolo = _seed_yolo(pack)
        self.last_input = None

    def __call__(self, path: Path, detect: str) -> dict:
        import cv2
        import torch
        from PIL import Image

        t = [time.perf_counter()]
        pixels = seed_pixels(path)
        t.append(time.perf_counter())
        x = self.transform(Image.fromarray(np.stack([pixels] * 3, axis=-1))).unsqueeze(0)
        self.last_input = x
        t.append(time.perf_counter())
        with torch.no_grad():
            per_model = {k: torch.sigmoid(m(x)).item() for k, m in self.models.items()}
        prob = sum(MEMBERS[k] * p for k, p in per_model.items()) / sum(MEMBERS.values())
        t.append(time.perf_counter())
        detected = detect == "always" or (detect == "abnormal" and prob > THRESHOLD)
        boxes, yolo_inf = 0, 0.0
        if detected:
            result = self.yolo(cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB), conf=SEED_CONF,
                               verbose=False)[0]
            boxes, yolo_inf = len(result.boxes), result.speed["inference"] / 1e3
        t.append(time.perf_counter())
        return {"probability": prob, "per_model": per_model, "boxes": boxes,
                "detected": detected,
                "stages": {"decode+8bit": t[1] - t[0], "transforms": t[2] - t[1],
                           "classifiers": t[3] - t[2], "yolo": t[4] - t[3]},
                "cnn_s": t[3] - t[2] + yolo_inf}


def _three_channel(model, state: dict):
    """Load a 1-channel state dict into the seed's 3-channel model: stem kernel / 3 per colour."""
    own = model.state_dict()
    model.load_state_dict({k: v.expand(-1, 3, -1, -1) / 3 if v.ndim == 4 and v.shape[1] == 1
                           and own[k].shape[1] == 3 else v for k, v in state.items()})
    return model.eval()


def _seed_yolo(pack):
    """An ultralytics ``YOLO`` holding the pack's lesion detector (the seed loads best.pt)."""
    from spinexr.models.yolo import build_detection_model, import_ultralytics

    import_ultralytics()
    from ultralytics import YOLO

    spec = pack.model_spec("lesions")
    model = build_detection_model(spec.arch, list(spec.labels))
    model.load_state_dict(pack.state_dict("lesions"))
    yolo = YOLO(f"{spec.arch}.yaml", task="detect", verbose=False)
    yolo.model = model.float().eval()
    return yolo


def run_baseline(cfg: dict) -> dict:
    """Child process: load the seed pipeline, warm up, analyse every image one by one."""
    t0 = time.perf_counter()
    seed = SeedPipeline(Path(cfg["pack"]), cfg["size"])
    load_s, rss_loaded = time.perf_counter() - t0, _rss_mib()
    paths = [Path(p) for p in cfg["images"]]
    for p in paths[:2]:
        seed(p, cfg["detect"])
    rows, t0 = [], time.perf_counter()
    for p in paths:
        start = time.perf_counter()
        row = seed(p, cfg["detect"])
        rows.append({**row, "latency": time.perf_counter() - start})
    wall = time.perf_counter() - t0
    out = {"wall": wall, "load_s": load_s, "rss_loaded": rss_loaded, "peak_rss": _peak_mib(),
           "peak_workers": 0.0, "rows": rows}
    out["checks"] = _same_function_checks(seed, Path(cfg["pack"]), paths[:2])  # after the peak
    return out


def _same_function_checks(seed: SeedPipeline, pack_dir: Path, paths: list[Path]) -> dict:
    """Untimed. (1) the same model input through the baseline's 3-channel torch models and our
    1-channel ORT members: same weights and function? (2) the seed's 8-bit image through each
    path's own resize: how much the 8-bit PIL resize alone moves the fused probability."""
    import torch

    from spinexr.models.pack import load_pack

    triage = load_pack(pack_dir).triage(engine="onnx")
    mean, std = grey_mean_std()
    logit_diff, prob_diff = 0.0, 0.0
    for p in paths:
        row = seed(p, "never")   # classification only
        x3 = seed.last_input
        grey = x3[:, :1] * IMAGENET_STD[0] + IMAGENET_MEAN[0]   # undo channel 0's Normalize
        x1 = (grey - mean) / std
        for k, m in seed.models.items():
            with torch.no_grad():
                ref = float(m(x3))
            got = float(triage.members[k].logits_from_batch(x1)[0, 0])
            logit_diff = max(logit_diff, abs(ref - got))
        ours = triage.predict([seed_pixels(p).astype(np.float32) / 255.0]).probability[0]
        prob_diff = max(prob_diff, abs(float(ours) - row["probability"]))
    return {"n": len(paths), "logit_diff": logit_diff, "resize_prob_diff": prob_diff}


# ------------------------------------------------------------------------------------- ours
class TimedEngine:
    """Wraps an engine (``OrtModel``) and adds up the seconds spent in it, by ``clock``
    (wall time; ``time.thread_time``: the calling thread's CPU)."""

    def __init__(self, engine, clock=time.perf_counter):
        self.engine, self.seconds, self.clock = engine, 0.0, clock

    def __call__(self, x):
        t0 = self.clock()
        try:
            return self.engine(x)
        finally:
            self.seconds += self.clock() - t0


def gating(cfg: dict) -> str:
    """Our gating for the ``--detect`` setting: detect on every image, or where P > 0.449."""
    return "vindr" if cfg["detect"] == "always" else "dernet"


def build_analyzer(cfg: dict):
    """Our Analyzer on ONNX Runtime with ``threads`` intra-op threads; engines timed."""
    from spinexr.analyze import Analyzer, AnalyzerConfig
    from spinexr.models.onnx_runtime import OrtModel
    from spinexr.models.pack import load_pack

    analyzer = Analyzer(load_pack(cfg["pack"]), vertebrae_pack=load_pack(cfg["vertebrae"]),
                        config=AnalyzerConfig(gating=gating(cfg)))
    parts = [*analyzer.triage_model.members.values(), analyzer.lesion_detector,
             analyzer.vertebra_detector]
    for part in parts:   # the pack API has no thread count: rebuild each session with one
        if part.engine is None:
            raise RuntimeError("a model runs on torch: the ONNX export is missing or stale")
        part.engine = TimedEngine(OrtModel(part.engine.path, threads=cfg["threads"]))
    return analyzer, [p.engine for p in parts]


def read_kwargs(analyzer, reduce: int | str) -> dict:
    """How ours reads: ``auto`` as ``spinexr analyze`` does (the one process step's decode
    policy: JPEG 2000 decoded down to the analyzer's
    :meth:`~spinexr.analyze.Analyzer.decode_side`), or a fixed ``reduce`` level."""
    from spinexr.process import Processor

    policy = Processor(analyzer).read_kwargs()
    return policy if reduce == "auto" else {**policy, "min_side": None, "reduce": reduce}


def pipelined(analyzer, paths: list[str], batch: int, kw: dict, workers: int):
    """Analyse ``paths`` through the one process step (``spinexr.process.Processor``, as
    ``spinexr analyze`` and the service do) in batches of ``batch`` while worker processes read
    the next batch; no renditions (the benchmark measures the analysis).

    Yields ``(read_start, read_seconds, analysis)`` per image as its batch completes.
    """
    from spinexr.io.prefetch import read_batches
    from spinexr.process import ProcessOptions, Processor, Source

    proc, options = Processor(analyzer), ProcessOptions(render=False)
    for read in read_batches(paths, batch, kwargs=kw, workers=workers):
        done = proc.process_reads([Source(path=r.path) for r in read], read, options)
        for r, p in zip(read, done):
            yield r.started, r.seconds, p.analysis


def run_ours(cfg: dict) -> dict:
    """Child process: build the Analyzer, warm up one batch, analyse every image."""
    t0 = time.perf_counter()
    analyzer, engines = build_analyzer(cfg)
    load_s, rss_loaded = time.perf_counter() - t0, _rss_mib()
    kw = read_kwargs(analyzer, cfg["reduce"])
    paths, args = cfg["images"], (cfg["batch"], kw, cfg["workers"])
    for _ in pipelined(analyzer, paths[:cfg["batch"]], *args):
        pass
    for e in engines:
        e.seconds = 0.0
    rows, t0 = [], time.perf_counter()
    for start, read_s, a in pipelined(analyzer, paths, *args):
        tri = a.triage
        rows.append({"latency": time.perf_counter() - start, "accepted": a.gate.accepted,
                     "probability": tri.probability if tri else None,
                     "per_model": dict(tri.per_model) if tri else {},
                     "boxes": len(a.findings), "detected": bool(
                         tri and (cfg["detect"] == "always" or tri.abnormal)),
                     "stages": {"read (pool)": read_s, **a.timings}})
    wall = time.perf_counter() - t0
    peak, workers = _peak_mib(), _peak_mib(children=True)
    out = {"wall": wall, "load_s": load_s, "rss_loaded": rss_loaded, "peak_rss": peak + workers,
           "peak_workers": workers, "rows": rows, "cnn_s": sum(e.seconds for e in engines)}
    out["decode"] = {k: v for k, v in kw.items() if k != "policy"}   # JSON-able part
    if cfg["reduce"]:
        out["reduce_check"] = _reduce_check(analyzer, paths[:4], kw)
    return out


def _reduce_check(analyzer, paths: list[Path], kw: dict) -> dict:
    """Untimed: what decoding at 1/2**reduce changes at the classifiers' input and after."""
    from spinexr.io import read_radiograph
    from spinexr.models.classifier import resize_to_input

    pre = next(iter(analyzer.triage_model.members.values())).pre
    px, dp = 0.0, 0.0
    for p in paths:
        full, small = read_radiograph(p), read_radiograph(p, **kw)
        px = max(px, float(np.abs(resize_to_input(full.pixels, pre)
                                  - resize_to_input(small.pixels, pre)).mean()))
        probs = analyzer.triage_model.predict([full.pixels, small.pixels]).probability
        dp = max(dp, abs(float(probs[0] - probs[1])))
    return {"n": len(paths), "input_mae": px, "prob_diff": dp}


# ------------------------------------------------------------------------ ours, N processes
def engine_spec(cfg: dict):
    """The :class:`~spinexr.batch.BatchSpec` the engine's workers build their process step
    from: the benchmark's packs (ONNX exports), ours' gating and read policy, no renditions.
    ``--plan auto``: the engine plans each worker's threads (as ``spinexr analyze --engine
    local`` does); ``fixed``: one intra-op thread per worker."""
    from spinexr.analyze import AnalyzerConfig
    from spinexr.batch import BatchSpec
    from spinexr.models.threads import ThreadPlan, available_cpus

    cpus = available_cpus()
    threads = None if cfg["plan"] == "auto" else ThreadPlan(1, 0, cpus, float(cpus))
    return BatchSpec(pack=cfg["pack"], vertebrae=cfg["vertebrae"],
                     config=AnalyzerConfig(gating=gating(cfg)),
                     full_resolution=cfg["reduce"] == 0, threads=threads)


def _check_onnx(cfg: dict) -> None:
    """The workers pick ONNX Runtime where a pack has a current export (engine "auto"), as
    "ours" does; fail here rather than measure torch silently."""
    from spinexr.models.onnx_runtime import export_status
    from spinexr.models.pack import load_pack

    for root in (cfg["pack"], cfg["vertebrae"]):
        pack = load_pack(root)
        for key in pack.manifest.models:
            problem, _ = export_status(pack, key)
            if problem is not None:
                raise RuntimeError(f"{root}: {problem}; the engine's workers would run torch")


def _engine_row(row: dict, detect: str) -> dict:
    """A results row of the engine as the benchmark's row (no latency, no stage timings)."""
    if row["outcome"] == "error":
        raise RuntimeError(f"{row['path']}: {row['error_code']}: {row['error']}")
    tri = row["probability"] is not None
    return {"latency": None, "accepted": row["accepted"], "probability": row["probability"],
            "per_model": {}, "boxes": row["n_findings"], "stages": {},
            "detected": tri and (detect == "always" or bool(row["abnormal"]))}


def run_engine(cfg: dict) -> dict:
    """Child process: a ``LocalEngine`` of ``engine_workers`` processes over every image.

    Warm-up (timed as ``load_s``, with the workers' start and pack loads): one chunk of 2
    images per worker. Peak RSS is read before the workers exit: this process plus all its
    descendants (the workers and their fork server)."""
    from spinexr.batch import LocalEngine
    from spinexr.batch.run import chunked

    _check_onnx(cfg)
    paths, t0 = cfg["images"], time.perf_counter()
    with LocalEngine(engine_spec(cfg), workers=cfg["engine_workers"]) as engine:
        for _ in engine.map_chunks(chunked(paths[:2 * engine.workers], 2)):
            pass
        load_s, done, t0 = time.perf_counter() - t0, {}, time.perf_counter()
        for _, rows in engine.map_chunks(chunked(paths, cfg["engine_chunk"])):
            done.update((r["path"], r) for r in rows)
        wall = time.perf_counter() - t0
        peak, workers = _peak_mib(), _peak_mib(children=True)
        plan = engine.spec.threads
    return {"wall": wall, "load_s": load_s, "rss_loaded": None, "peak_rss": peak + workers,
            "peak_workers": workers, "cnn_s": None, "processes": engine.workers,
            "rows": [_engine_row(done[p], cfg["detect"]) for p in paths],
            "planned": f"{engine.workers} process(es) x {plan.intra_op} thread(s), chunks of "
                       f"{cfg['engine_chunk']} ({plan.free:g} of {plan.cpus} CPUs free)"}


# ------------------------------------------------------------------------------------ child
def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_mib(children: bool = False) -> float:
    """Peak RSS (VmHWM) of this process, or the sum over its live descendants (decode workers).

    Not ``getrusage``: its ru_maxrss survives exec, so a child started by a big parent
    reports at least the parent's size."""
    import psutil

    me = psutil.Process()
    procs = me.children(recursive=True) if children else [me]
    return sum(_vmhwm_kib(p.pid) for p in procs) / 1024


def _vmhwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def child_main(role: str, workdir: Path) -> int:
    """Run one path in this fresh process and write ``<workdir>/<role>-<round>.json``."""
    import torch

    cfg = json.loads((workdir / "config.json").read_text())
    if role != "baseline" and cfg["plan"] == "auto":   # ours sizes itself to the free CPUs
        from spinexr.models.threads import apply_thread_plan, plan_threads

        plan = apply_thread_plan(plan_threads(1))
        cfg.update(threads=plan.intra_op, workers=plan.decode_workers,
                   planned=f"{plan.intra_op} threads, {plan.decode_workers} decode workers "
                           f"({plan.free:g} of {plan.cpus} CPUs free)")
    torch.set_num_threads(cfg["threads"])
    torch.set_flush_denormal(True)       # before any pool thread exists: they inherit it
    warnings.filterwarnings("ignore")
    cfg.update(VARIANTS.get(role, {}))
    if role == "engine":                 # default: one worker per free CPU, as planned above
        cfg["engine_workers"] = cfg["engine_workers"] or cfg["threads"]
        result = run_engine(cfg)
    else:
        result = run_baseline(cfg) if role == "baseline" else run_ours(cfg)
    result.setdefault("planned", cfg.get("planned"))
    result.setdefault("threads", None if role == "engine" else cfg["threads"])
    (workdir / f"{role}-{cfg['round']}.json").write_text(json.dumps(result))
    return 0


def run_child(role: str, workdir: Path, cfg: dict, rnd: int) -> dict:
    (workdir / "config.json").write_text(json.dumps({**cfg, "round": rnd}))
    subprocess.run([sys.executable, __file__, "--child", role, "--workdir", str(workdir)],
                   check=True, env=os.environ.copy())
    return json.loads((workdir / f"{role}-{rnd}.json").read_text())


# ----------------------------------------------------------------------------------- report
def run_flops(res: dict, flops: dict) -> float:
    """CNN FLOPs of a run: every model on every image, the lesion detector where it ran
    (all of them with ``--detect always``), the classifiers only where the gate accepted."""
    total = 0.0
    for row in res["rows"]:
        accepted = row.get("accepted", True)
        total += sum(v for k, v in flops.items() if k not in ("lesions", "vertebrae")) * accepted
        total += flops["lesions"] * row["detected"] + flops.get("vertebrae", 0.0)
    return total


def summarize(res: dict, flops: dict, peaks: dict[int, float]) -> dict:
    """Throughput, latency, memory and achieved GFLOP/s of one run; ``None`` where the run
    does not measure it (the engine: latency, CPU time in the models, RSS after loading)."""
    n = len(res["rows"])
    lat = [r["latency"] for r in res["rows"] if r["latency"] is not None]
    cnn_s = res.get("cnn_s", sum(r.get("cnn_s", 0.0) for r in res["rows"]))
    total = run_flops(res, flops)
    gflops = total / cnn_s / 1e9 if cnn_s else None
    return {"ips": n / res["wall"], "p50": float(np.percentile(lat, 50)) if lat else None,
            "p95": float(np.percentile(lat, 95)) if lat else None, "peak": res["peak_rss"],
            "workers": res["peak_workers"],
            "loaded": res["rss_loaded"], "load_s": res["load_s"],
            "cnn_per_img": cnn_s / n if cnn_s is not None else None,
            "cnn_gflops": gflops,
            "cnn_pct": 100 * gflops / peaks[res["threads"]] if gflops else None,
            "e2e_gflops": total / res["wall"] / 1e9}


ROWS = (("images/s", "ips", "{:.3f}"), ("latency p50 (s)", "p50", "{:.3f}"),
        ("latency p95 (s)", "p95", "{:.3f}"), ("peak RSS (MiB)", "peak", "{:.0f}"),
        ("  of which worker processes", "workers", "{:.0f}"),
        ("RSS after model load (MiB)", "loaded", "{:.0f}"), ("model load (s)", "load_s", "{:.1f}"),
        ("CNN time per image (s)", "cnn_per_img", "{:.3f}"),
        ("CNN GFLOP/s (in CNN calls)", "cnn_gflops", "{:.1f}"),
        ("  % of fp32 peak at its threads", "cnn_pct", "{:.0f}%"),
        ("CNN GFLOP/s (over wall time)", "e2e_gflops", "{:.1f}"))


def column_titles(args, best: dict) -> dict[str, str]:
    """Each run's column title (the engine's names its number of processes)."""
    titles = {"baseline": "baseline (seed)", "ours": f"ours (batch {args.batch})",
              "ours-b1": "ours (batch 1)", "ours-full": f"ours (b{args.batch}, full decode)"}
    if "engine" in best:
        n = best["engine"]["processes"]
        titles["engine"] = f"ours, {n} process" + ("es" if n != 1 else "")
    return {role: titles[role] for role in best}


def _cell(fmt: str, value) -> str:
    return "n/a" if value is None else fmt.format(value)


def print_table(args, flops: dict, peaks: dict[int, float], best: dict) -> dict:
    """The side-by-side table; returns the summaries by role."""
    per_image = {"baseline": sum(flops["baseline"].values()), "ours": sum(flops["ours"].values())}
    for name, f in flops.items():
        print(f"CNN GFLOPs per image, {name} (FlopCounterMode, batch 1): "
              f"{per_image[name] / 1e9:.2f} = "
              + " + ".join(f"{k} {v / 1e9:.2f}" for k, v in f.items()))
    sums = {role: summarize(res, flops["baseline" if role == "baseline" else "ours"], peaks)
            for role, res in best.items()}
    titles = column_titles(args, best)
    w = max(20, *(len(t) + 2 for t in titles.values()))
    print("\n" + " " * 30 + "".join(f"{titles[r]:>{w}s}" for r in best))
    for label, key, fmt in ROWS:
        print(f"{label:30s}" + "".join(f"{_cell(fmt, sums[r][key]):>{w}s}" for r in best))
    print("latency: from the start of an image's read to its result (ours: includes waiting "
          "for its batch; n/a for N processes, which analyse images side by side); peak RSS: "
          "VmHWM, ours adds its worker processes' (decode or engine workers and their fork "
          "server; an upper bound: shared pages count in each); model load of N processes: "
          "workers' start, pack loads and a warm-up chunk each")
    return sums


def print_details(runs: dict, best: dict, cfg: dict) -> None:
    if any(len(v) > 1 for v in runs.values()):
        print("images/s per round (best used above): " + "; ".join(
            f"{k} " + ", ".join(f"{len(r['rows']) / r['wall']:.3f}" for r in v)
            for k, v in runs.items()))
    for role, res in ((k, v) for k, v in best.items() if v["rows"][0]["stages"]):
        keys = [k for k in res["rows"][0]["stages"] if k not in ("grades", "explain")]
        means = {k: statistics.mean(r["stages"].get(k, 0.0) for r in res["rows"]) for k in keys}
        print(f"{role} s/image by stage: " + ", ".join(f"{k} {v:.3f}" for k, v in means.items()))
    print("  (ours: reads run in the pool, overlapping inference; gate/triage/lesions are "
          "analyze_batch's per-image shares, resizing and NMS included)")
    _print_agreement(best, cfg)
    if "engine" in best:
        print(same_as_ours(best["ours"], best["engine"]))
    for role in (r for r in best if r != "baseline" and best[r].get("planned")):
        print(f"{role} thread plan: {best[role]['planned']}")
    for role in (r for r in best if r != "baseline"):
        rows = best[role]["rows"]
        refused = sum(not r["accepted"] for r in rows)
        print(f"{role}: gate accepted {len(rows) - refused}, refused {refused}; lesion boxes "
              f"{sum(r['boxes'] for r in rows)} (baseline "
              f"{sum(r['boxes'] for r in best['baseline']['rows'])}; untrained detector)")


def _agreement(base: dict, ours: dict) -> dict:
    pairs = [(b["probability"], o["probability"]) for b, o in zip(base["rows"], ours["rows"])
             if o["probability"] is not None]
    b, o = (np.array(pairs).T if pairs else (np.zeros(0), np.zeros(0)))
    diff = np.abs(b - o)
    return {"n": len(pairs), "max": float(diff.max(initial=0.0)),
            "mean": float(diff.mean()) if len(diff) else 0.0,
            "spread": float(np.std(b)) if len(b) else 0.0,
            "same": int(((b > THRESHOLD) == (o >= THRESHOLD)).sum())}


def same_as_ours(ours: dict, engine: dict) -> str:
    """The engine's rows against ours' (same files, models, reads; other thread counts)."""
    pairs = [(o["probability"], e["probability"]) for o, e in zip(ours["rows"], engine["rows"])
             if o["probability"] is not None and e["probability"] is not None]
    diff = max((abs(o - e) for o, e in pairs), default=0.0)
    same = sum(o["accepted"] == e["accepted"] and o["boxes"] == e["boxes"]
               for o, e in zip(ours["rows"], engine["rows"]))
    return (f"  ours, N processes vs ours: max |P diff| {diff:.1e} on {len(pairs)} images; same "
            f"gate decision and lesion box count on {same}/{len(ours['rows'])}")


def worst_image(cfg: dict, best: dict) -> str:
    """Untimed, in the parent: the image where the fused P differs most, decomposed."""
    from spinexr.models.pack import load_pack

    diffs = [abs(b["probability"] - o["probability"]) if o["probability"] is not None else -1
             for b, o in zip(best["baseline"]["rows"], best["ours"]["rows"])]
    i = int(np.argmax(diffs))
    triage = load_pack(cfg["pack"]).triage(engine="onnx")
    on_seed = triage.predict([seed_pixels(Path(cfg["images"][i])).astype(np.float32) / 255])
    return (f"  worst image #{i}: baseline P {best['baseline']['rows'][i]['probability']:.4f}, "
            f"ours P {best['ours']['rows'][i]['probability']:.4f}; ours on the seed's 8-bit "
            f"pixels P {on_seed.probability[0]:.4f}")


def _print_agreement(best: dict, cfg: dict) -> None:
    a, c = _agreement(best["baseline"], best["ours"]), best["baseline"]["checks"]
    print(f"agreement of fused P(abnormal) on {a['n']} images: max |diff| {a['max']:.4f}, mean "
          f"{a['mean']:.4f} (across images P varies with std {a['spread']:.4f}); same decision "
          f"at {THRESHOLD} on {a['same']}/{a['n']}. Not 0 because the inputs differ: the seed "
          "maps stored values min-max to 8 bits (truncating) and resizes that with PIL; ours "
          "applies the DICOM window in float and resizes in float")
    print(f"  same model input, baseline's 3-channel torch vs our 1-channel ORT members, "
          f"{c['n']} images: max |logit diff| {c['logit_diff']:.1e} (same weights and function)")
    print(f"  the seed's 8-bit image through each path's own resize and models: max |P diff| "
          f"{c['resize_prob_diff']:.4f} ({c['n']} images; so the rest is the windowing)")
    print(worst_image(cfg, best))
    for role in (r for r in best if best[r].get("reduce_check")):
        r, a = best[role]["reduce_check"], _agreement(best["baseline"], best[role])
        print(f"  {role}: decoding at reduced resolution changes the classifiers' input by mean "
              f"|pixel diff| {r['input_mae']:.4f} (of 1.0) and P by at most {r['prob_diff']:.4f} "
              f"vs full decode ({r['n']} images); vs baseline max |P diff| {a['max']:.4f}")


def machine_state() -> str:
    import psutil

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    me = os.getpid()
    busy = []
    for p in psutil.process_iter(["pid", "name", "cmdline", "cpu_percent", "nice"]):
        if p.info["pid"] != me and p.info["name"] != "kthreadd":
            busy.append(p)
    time.sleep(0.5)
    hot = []
    for p in busy:
        try:
            cpu = p.cpu_percent()
            if cpu > 20:
                cmd = " ".join(p.info["cmdline"] or [p.info["name"]])[:80]
                hot.append(f"{cmd} ({cpu:.0f}% CPU, nice {p.info['nice']})")
        except Exception:  # the process ended
            pass
    return f"load average {load}; busy processes: " + ("; ".join(hot) or "none")


# ------------------------------------------------------------------------------------- main
def _reduce_arg(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give 'auto' or a level 0..16") from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="12 images, batch 4, 1 round (~2 min)")
    p.add_argument("--images", type=int, help="timed images (default 40, quick 12)")
    p.add_argument("--image-size", type=int, nargs=2, default=(2500, 2000), metavar=("H", "W"))
    p.add_argument("--size", type=int, default=224, help="triage input side (224 or 384)")
    p.add_argument("--yolo", default="n", choices=list("nsmlx"), help="lesion YOLO11 size")
    p.add_argument("--batch", type=int, help="our batch size (default 8, quick 4)")
    p.add_argument("--workers", type=int, default=2, help="our decode workers")
    p.add_argument("--threads", type=int, default=2,
                   help="torch and ORT intra-op threads (the baseline's; ours' with --plan "
                        "fixed)")
    p.add_argument("--plan", choices=("auto", "fixed"), default="auto",
                   help="auto (default, as spinexr runs): ours sizes its intra-op threads and "
                        "decode workers to the CPUs free when it starts "
                        "(spinexr.models.threads); fixed: --threads and --workers")
    p.add_argument("--busy", type=int, default=0,
                   help="N processes burning one CPU each while every column runs")
    p.add_argument("--engine-workers", type=int, default=None, metavar="N",
                   help="column 'ours, N processes': the LocalEngine's worker processes "
                        "(default: the CPUs free when its child starts; 0: leave the column "
                        "out)")
    p.add_argument("--engine-chunk", type=int, default=1, metavar="K",
                   help="images per chunk of the engine's workers (default 1)")
    p.add_argument("--reduce", type=_reduce_arg, default="auto",
                   help="ours: 'auto' (default, as spinexr analyze: JPEG 2000 decoded down to "
                        "the largest model input) or N (decode at 1/2**N; 0 = full size)")
    p.add_argument("--detect", default="always", choices=["always", "abnormal"],
                   help="always: both paths detect on every image (ours: gating 'vindr'); "
                        "abnormal: the seed's gating, P > 0.449 (ours: 'dernet')")
    p.add_argument("--rounds", type=int, help="runs of each path, alternating (default 2, "
                                              "quick 1); the best of each is reported")
    p.add_argument("--int8", choices=tuple(INT8), default="none",
                   help="ours' models in int8 (QDQ, calibrated on phantoms of another seed "
                        "through spinexr export --int8; the baseline stays fp32 torch): "
                        "'passed' the models within the accuracy tolerances on the committed "
                        "packs (triage members, the gate's vertebra detector; docs/scaling.md), "
                        "'all' the whole-image lesion detector too (outside them on the demo "
                        "pack 1.0.0: a diagnostic)")
    p.add_argument("--calibration-images", type=int, default=16, metavar="N",
                   help="phantoms for the int8 calibration (default 16; never the timed ones)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, help="keep the pack and images here")
    p.add_argument("--child", choices=["baseline", *VARIANTS], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    q = args.quick
    args.images = args.images or (12 if q else 40)
    args.batch = args.batch or (4 if q else 8)
    args.rounds = args.rounds or (1 if q else 2)
    if args.engine_workers is not None and args.engine_workers < 0 or args.engine_chunk < 1:
        p.error("--engine-workers needs 0 or more, --engine-chunk 1 or more")
    return args


def run_settings(args) -> dict:
    """The children's settings that may change between runs on one set-up."""
    return {"threads": args.threads, "batch": args.batch, "workers": args.workers,
            "reduce": args.reduce, "plan": args.plan, "detect": args.detect,
            "engine_workers": args.engine_workers, "engine_chunk": args.engine_chunk}


def setup(args, work: Path) -> dict:
    """Pack, exports, vertebra pack copy and images (not timed); returns the children's cfg.
    With ``--workdir`` a previous setup of the same models and images is reused."""
    from spinexr.models.onnx_export import export_pack

    key = {"size": args.size, "yolo": args.yolo, "seed": args.seed, "images": args.images,
           "image_size": list(args.image_size), "int8": args.int8}
    if args.int8 != "none":
        key["calibration_images"] = args.calibration_images
    done = work / "setup.json"
    if done.is_file() and json.loads(done.read_text())["key"] == key:
        print(f"setup: reusing the pack and images in {work}")
        return {**json.loads(done.read_text())["cfg"], **run_settings(args)}
    t0 = time.perf_counter()
    build_pack(work / "pack", args.size, args.yolo, args.seed)
    export_pack(work / "pack")
    shutil.copytree(VERTEBRAE, work / "vertebrae", ignore=shutil.ignore_patterns("onnx"),
                    dirs_exist_ok=True)
    export_pack(work / "vertebrae")
    t1 = time.perf_counter()
    hw = tuple(args.image_size)
    info = make_images(work / "images", args.images, hw, args.seed, work / "vertebrae")
    print(f"setup: pack built and exported to ONNX in {t1 - t0:.0f} s; {args.images} phantom "
          f"DICOMs {hw[0]}x{hw[1]}, 12-bit, JPEG 2000 lossless, {info['mb']:.1f} MB each, in "
          f"{time.perf_counter() - t1:.0f} s ({info['tried'] - args.images} more phantoms were "
          "refused by our gate and left out)")
    if args.int8 != "none":
        quantise(work, args, hw)
    images = sorted(str(p) for p in (work / "images").glob("*.dcm"))
    cfg = {"pack": str(work / "pack"), "vertebrae": str(work / "vertebrae"), "images": images,
           "size": args.size, **run_settings(args)}
    done.write_text(json.dumps({"key": key, "cfg": cfg}))
    return cfg


def quantise(work: Path, args, hw: tuple[int, int]) -> None:
    """``spinexr export --int8`` on the benchmark pack and the vertebra pack copy (as a user
    runs it), calibrated on phantoms of another seed than the timed images (same size, kind
    and encoding); the lines it prints (fp32 vs int8 per model) go to the output."""
    from spinexr.cli import main as spinexr

    calib = work / "calibration"
    make_images(calib, args.calibration_images, hw, args.seed + CALIBRATION_SEED_OFFSET,
                work / "vertebrae")
    for name, keys in INT8[args.int8].items():
        extra = ["--vertebrae", str(work / "vertebrae")] if name == "pack" else []
        code = spinexr(["export", "--pack", str(work / name), "--int8", ",".join(keys),
                        "--calibration", str(calib), "--calibration-images",
                        str(args.calibration_images), "--runs", "3", "--threads", "1", *extra])
        if code:
            raise RuntimeError(f"spinexr export --int8 on {work / name} exited {code}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="spinexr-pipeline-"))
    os.environ.setdefault("SPINEXR_CACHE", str(work / "cache"))
    os.environ.update(HF_HUB_OFFLINE="1", YOLO_OFFLINE="1", YOLO_AUTOINSTALL="0")
    os.environ.setdefault("YOLO_VERBOSE", "False")   # no settings-file chatter in the output
    if args.child:
        return child_main(args.child, work)
    print(f"spinexr pipeline benchmark: untrained weights from seed {args.seed} (speed only; "
          "the probabilities mean nothing)")
    print(f"machine: {os.cpu_count()} CPUs, {cpu_name()}; before: {machine_state()}")
    print(f"models: triage {', '.join(f'{k} {w}' for k, w in MEMBERS.items())} at {args.size}, "
          f"binary heads; lesions yolo11{args.yolo} at 640; gate (ours only): committed "
          f"vertebra YOLO11n at 416; {args.threads} threads; ours batch {args.batch}, "
          + (f"{args.workers} decode processes" if args.plan == "fixed" else
             "threads and decode processes planned") + f", reduce {args.reduce}; detection: "
          f"{args.detect}; {args.busy} CPU-burning process(es) during every column")
    if args.int8 != "none":
        print(f"ours in int8 ({args.int8}): " + "; ".join(
            f"{name}: {', '.join(keys)}" for name, keys in INT8[args.int8].items())
            + f"; calibrated on {args.calibration_images} phantoms of seeds from "
              f"{args.seed + CALIBRATION_SEED_OFFSET}; the baseline stays fp32")
    roles = ["baseline", "ours"] + (["ours-b1"] if args.batch > 1 else []) + (
        ["ours-full"] if args.reduce != 0 else []) + (["engine"] if engine_column(args) else [])
    if engine_column(args):
        n = args.engine_workers or "one per free CPU (planned in its child)"
        print(f"ours, N processes: LocalEngine worker processes: {n}; chunks of "
              f"{args.engine_chunk} image(s)")
    try:
        cfg = setup(args, work)
        flops = count_flops(work / "pack", work / "vertebrae", args.size, tuple(args.image_size))
        peaks = fp32_peaks(sorted({1, args.threads}))
        runs: dict[str, list] = {r: [] for r in roles}
        with burners(args.busy):
            if args.busy:
                time.sleep(1.0)          # let the burners get going before either side plans
                print(f"with {args.busy} CPU-burning process(es): {machine_state()}")
            for rnd in range(args.rounds):
                for role in (roles if rnd % 2 == 0 else roles[::-1]):
                    runs[role].append(run_child(role, work, cfg, rnd))
        best = {k: max(v, key=lambda r: len(r["rows"]) / r["wall"]) for k, v in runs.items()}
        peaks.update(fp32_peaks(sorted({r["threads"] for r in best.values()
                                        if r.get("threads") and r["threads"] not in peaks})))
        sums = print_table(args, flops, peaks, best)
        print_details(runs, best, cfg)
        print(f"machine after: {machine_state()}")
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print_ratios(column_titles(args, best), sums)
    return 0


def engine_column(args) -> bool:
    """Whether column "ours, N processes" runs: not with ``--engine-workers 0``, nor with a
    fixed ``--reduce`` level other than 0 (the engine reads as ``spinexr analyze``: at the
    models' resolution, or with ``--full-resolution`` at full size)."""
    return args.engine_workers != 0 and args.reduce in ("auto", 0)


#: The columns the headline ratio is the best of (those that read at the configured --reduce).
HEADLINE = ("ours", "ours-b1", "engine")


def print_ratios(titles: dict, sums: dict) -> None:
    """One ratio per column of ours, then the headline: the last line, ``ratio: X``."""
    ratio = {r: sums[r]["ips"] / sums["baseline"]["ips"] for r in sums if r != "baseline"}
    for role, x in ratio.items():
        print(f"ratio ({titles[role]}): {x:.2f}")
    best = max((r for r in ratio if r in HEADLINE), key=ratio.get)
    print(f"headline: the best of {', '.join(titles[r] for r in HEADLINE if r in ratio)}: "
          f"{titles[best]}")
    print(f"ratio: {ratio[best]:.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
