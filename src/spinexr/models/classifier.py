"""Image classifiers on radiographs: a model factory, the preprocessing contract, heads, inference.

* :func:`create_classifier` builds any timm model (``pretrained=False``, ``in_chans=1``) or a
  torchvision one (``tv:<name>``, or a name timm lacks such as ``alexnet`` / ``googlenet``) with
  its first convolution adapted to one channel: radiographs are never faked as RGB.
* :class:`Preprocess` is the input contract stored in the pack next to the weights (timm's
  ``pretrained_cfg`` idea); :func:`prepare` is the one function that turns float images into a
  model batch, used by training-time evaluation (through :func:`resize_to_input` +
  :func:`normalize`, of which it is the composition) and by inference alike.
* Heads: ``softmax`` (C logits), ``binary`` (one logit, sigmoid; ``predict_proba`` returns the two
  columns ``[1 - p, p]``), ``ordinal`` (CORAL: C-1 cumulative logits ``P(y > k)``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spinexr.errors import ConfigError
from spinexr.io.contrast import PREPROCESS, apply_preprocess
from spinexr.models.onnx_runtime import flush_denormals

HEADS = ("softmax", "binary", "ordinal")
RESIZE_MODES = ("letterbox", "squash")
INTERPOLATIONS = ("bilinear", "bicubic", "area")
# torchvision builders whose defaults need changing for 1-channel, from-scratch use
_TV_EXTRA: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "init_weights": True, "transform_input": False},
    "inception_v3": {"aux_logits": False, "init_weights": True, "transform_input": False},
}


@dataclass(frozen=True)
class Preprocess:
    """How a float image in [0, 1] becomes model input; stored in the pack as ``input``.

    Attributes:
        input_size: side S of the square model input in pixels.
        mean, std: the input is ``(x - mean) / std`` after resizing.
        interpolation: ``"area"``, ``"bilinear"`` or ``"bicubic"`` (antialiased when shrinking).
        resize: ``"letterbox"`` keeps the aspect ratio and pads with ``pad_value``;
            ``"squash"`` stretches to S x S.
        pad_value: letterbox fill in [0, 1] before normalisation (0 = black, like air).
        contrast: ``"none"`` or ``"equalize"``: a contrast step applied to the whole image
            before resizing (:func:`spinexr.io.contrast.apply_preprocess`), in training and at
            inference alike.
    """

    input_size: int
    mean: float = 0.5
    std: float = 0.25
    interpolation: str = "area"
    resize: str = "letterbox"
    pad_value: float = 0.0
    contrast: str = "none"

    def __post_init__(self) -> None:
        if isinstance(self.input_size, bool) or not isinstance(self.input_size, int) or not (
                8 <= self.input_size <= 4096):
            raise ConfigError(f"input_size={self.input_size!r}: need an integer 8..4096",
                              "input.size")
        if not float(self.std) > 0:
            raise ConfigError(f"std={self.std!r}: need a positive number", "input.std")
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError(f"interpolation {self.interpolation!r} is not one of "
                              f"{INTERPOLATIONS}", "input.interpolation")
        if self.contrast not in PREPROCESS:
            raise ConfigError(f"contrast {self.contrast!r} is not one of {PREPROCESS}",
                              "input.contrast")
        if self.resize not in RESIZE_MODES:
            raise ConfigError(f"resize {self.resize!r} is not one of {RESIZE_MODES}",
                              "input.resize")

    def to_dict(self) -> dict[str, Any]:
        """The manifest form: ``size`` (not ``input_size``, as detector specs), channels, range."""
        d = asdict(self)
        if d["contrast"] == "none":  # packs written before the field existed stay identical
            del d["contrast"]
        return {"size": d.pop("input_size"), **d, "channels": 1, "range": [0.0, 1.0]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Preprocess:
        """Read the manifest form (``size`` or ``input_size``); unknown keys are ignored."""
        size = d.get("size", d.get("input_size"))
        if size is None:
            raise ConfigError("input needs 'size'", "input")
        keys = ("mean", "std", "interpolation", "resize", "pad_value", "contrast")
        return cls(input_size=int(size), **{k: d[k] for k in keys if k in d})


def resize_to_input(image: np.ndarray, pre: Preprocess) -> np.ndarray:
    """Resize one (H, W) float image in [0, 1] to the (S, S) float32 model canvas, not normalised.

    The training cache stores exactly this (so cached training images and served images
    go through the same resampling). The input is not modified.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2 or min(img.shape) < 1:
        raise ConfigError(f"expected a 2-D (H, W) image, got shape {img.shape}", "images")
    if pre.contrast != "none":
        img = apply_preprocess(img, pre.contrast)
    s = pre.input_size
    h, w = img.shape
    if pre.resize == "letterbox":
        scale = s / max(h, w)
        nh, nw = min(s, max(1, round(h * scale))), min(s, max(1, round(w * scale)))
    else:
        nh, nw = s, s
    if not img.flags.writeable or not img.flags.c_contiguous:
        img = np.array(img, dtype=np.float32, order="C")  # Radiograph pixels are read-only
    x = torch.from_numpy(img)[None, None]
    if (nh, nw) != (h, w):
        if pre.interpolation == "area":
            x = F.interpolate(x, size=(nh, nw), mode="area")
        else:
            x = F.interpolate(x, size=(nh, nw), mode=pre.interpolation, align_corners=False,
                              antialias=nh < h or nw < w)
    resized = x[0, 0].clamp_(0.0, 1.0).numpy()
    if (nh, nw) == (s, s):
        return np.array(resized, dtype=np.float32)
    out = np.full((s, s), pre.pad_value, dtype=np.float32)
    top, left = (s - nh) // 2, (s - nw) // 2
    out[top:top + nh, left:left + nw] = resized
    return out


def normalize(batch, pre: Preprocess):
    """``(x - mean) / std`` of a float tensor (N, 1, S, S) in [0, 1]; returns a new tensor."""
    return (batch - float(pre.mean)) / float(pre.std)


def prepare(images: Sequence[np.ndarray], pre: Preprocess):
    """The model batch for a list of (H, W) float images in [0, 1] (bone bright).

    Returns:
        float32 tensor (N, 1, S, S): ``normalize(stack(resize_to_input(img)))``.
    """
    if len(images) == 0:
        s = pre.input_size
        return torch.zeros((0, 1, s, s), dtype=torch.float32)
    canvas = np.stack([resize_to_input(img, pre) for img in images])[:, None]
    return normalize(torch.from_numpy(canvas), pre)


def default_preprocess(arch: str, input_size: int | None = None) -> Preprocess:
    """A Preprocess from timm's pretrained_cfg (channel-mean of mean/std, its interpolation)."""
    size, mean, std, interp = 224, 0.449, 0.226, "bilinear"
    name = arch[3:] if arch.startswith("tv:") else arch
    try:
        import timm

        if timm.is_model(name):
            cfg = timm.get_pretrained_cfg(name)
            if cfg is not None:
                size = int(cfg.input_size[-1])
                mean, std = float(np.mean(cfg.mean)), float(np.mean(cfg.std))
                interp = cfg.interpolation if cfg.interpolation in INTERPOLATIONS else interp
    except ImportError:
        pass
    return Preprocess(input_size=int(input_size or size), mean=mean, std=std,
                      interpolation=interp)


def output_width(head: str, num_classes: int) -> int:
    """Number of logits a head emits for ``num_classes`` classes."""
    if head not in HEADS:
        raise ConfigError(f"head {head!r} is not one of {HEADS}", "head")
    if num_classes < 2:
        raise ConfigError(f"num_classes={num_classes}: need at least 2", "num_classes")
    if head == "binary":
        if num_classes != 2:
            raise ConfigError(f"the binary head has 2 classes, got {num_classes}; use softmax "
                              "or ordinal for more", "head")
        return 1
    return num_classes - 1 if head == "ordinal" else num_classes


def create_classifier(arch: str, num_classes: int, *, head: str = "softmax", in_chans: int = 1,
                      drop_rate: float = 0.0, init_file: str | Path | None = None):
    """Build a classifier, untrained or from a local checkpoint (never downloads weights).

    Args:
        arch: a timm model name, or ``tv:<name>`` for torchvision; names timm lacks
            (``alexnet``, ``googlenet``, ...) fall back to torchvision.
        num_classes: number of classes C (2 for the binary head).
        head: ``softmax`` (C logits), ``binary`` (1 logit) or ``ordinal`` (CORAL, C-1 logits).
        in_chans: input channels; the first conv of torchvision models is adapted to it.
        drop_rate: dropout before the classifier.
        init_file: a local timm checkpoint (e.g. ImageNet weights you downloaded yourself,
            ``.safetensors`` or ``.pth``) to start from; timm adapts its first conv to
            ``in_chans`` (summing the RGB kernels) and drops its classifier. timm models only.

    Returns:
        ``nn.Module`` mapping (N, in_chans, S, S) float32 to (N, output_width(head, C)) logits.
    """
    out = output_width(head, num_classes)
    base_out = 1 if head == "ordinal" else out
    name, use_tv = _resolve(arch)
    if use_tv:
        if init_file is not None:
            raise ConfigError(f"init_file is supported for timm models, not torchvision's "
                              f"{name!r}", "init_file")
        model = _torchvision_model(name, base_out, in_chans, drop_rate)
    else:
        import timm

        extra = {}
        if init_file is not None:
            if not Path(init_file).is_file():
                raise ConfigError("initial weights file not found", str(init_file))
            extra = {"pretrained": True, "pretrained_cfg_overlay": {"file": str(init_file)}}
        model = timm.create_model(name, num_classes=base_out, in_chans=in_chans,
                                  drop_rate=drop_rate, **{"pretrained": False, **extra})
    return CoralModel(model, num_classes) if head == "ordinal" else model


def _resolve(arch: str) -> tuple[str, bool]:
    if arch.startswith("tv:"):
        return arch[3:], True
    import timm

    if timm.is_model(arch):
        return arch, False
    from torchvision.models import list_models

    if arch in list_models():
        return arch, True
    similar = timm.list_models(f"*{arch}*")[:8]
    raise ConfigError(f"unknown architecture {arch!r}: neither a timm nor a torchvision model"
                      + (f"; similar timm names: {similar}" if similar else ""), "arch")


def _torchvision_model(name: str, out: int, in_chans: int, drop_rate: float):
    from torchvision.models import get_model

    kwargs = dict(_TV_EXTRA.get(name, {}))
    if name in ("alexnet", "googlenet") or name.startswith(("vgg", "squeezenet")):
        kwargs["dropout"] = float(drop_rate)
    model = get_model(name, weights=None, num_classes=out, **kwargs)
    if in_chans != 3:
        adapt_first_conv(model, in_chans)
    return model


def adapt_first_conv(model, in_chans: int) -> None:
    """Replace the first 3-channel ``Conv2d`` by an ``in_chans`` one (in place).

    The new kernel is the RGB kernel summed over channels (for 1 channel) as timm's
    ``adapt_input_conv`` does, so a grey image gives the same response as its RGB replica.
    """
    for parent in model.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.Conv2d) and child.in_channels == 3:
                conv = nn.Conv2d(in_chans, child.out_channels, child.kernel_size, child.stride,
                                 child.padding, child.dilation, child.groups,
                                 child.bias is not None, child.padding_mode)
                with torch.no_grad():
                    w = child.weight.sum(dim=1, keepdim=True)
                    conv.weight.copy_(w.repeat(1, in_chans, 1, 1) / in_chans)
                    if child.bias is not None:
                        conv.bias.copy_(child.bias)
                setattr(parent, child_name, conv)
                return
    raise ConfigError("no 3-channel Conv2d found to adapt to one channel", "arch")


class CoralModel(nn.Module):
    """CORAL ordinal head: a backbone with one output f(x), plus C-1 learned biases.

    ``logits[:, k] = f(x) + cutpoints[k]`` is the logit of ``P(y > k)`` (Cao et al. 2020).
    """

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        k = np.arange(1, num_classes, dtype=np.float64) / num_classes
        init = np.log((1 - k) / k)  # P(y > k-1) = 1 - k/C: a uniform class prior
        self.cutpoints = nn.Parameter(torch.tensor(init, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x) + self.cutpoints


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def coral_probabilities(logits: np.ndarray) -> np.ndarray:
    """Class probabilities (N, C) from CORAL logits (N, C-1) of ``P(y > k)``.

    The cumulative probabilities are made non-increasing (running minimum) so that every
    class probability ``P(y > k-1) - P(y > k)`` is >= 0 and the row sums to 1.
    """
    cum = np.minimum.accumulate(_sigmoid(np.asarray(logits, np.float64)), axis=1)
    n = cum.shape[0]
    upper = np.concatenate([np.ones((n, 1)), cum], axis=1)
    lower = np.concatenate([cum, np.zeros((n, 1))], axis=1)
    return upper - lower


def expected_grade(probs: np.ndarray) -> np.ndarray:
    """Expected grade ``sum_k k * p_k`` of (N, C) class probabilities; returns (N,)."""
    probs = np.asarray(probs, np.float64)
    return probs @ np.arange(probs.shape[1], dtype=np.float64)


def probabilities(logits: np.ndarray, head: str, temperature: float = 1.0) -> np.ndarray:
    """Class probabilities (N, C) from a head's logits, after dividing them by ``temperature``.

    ``binary``: logits (N, 1) or (N,) -> columns ``[1 - p, p]``; ``softmax``: (N, C);
    ``ordinal``: (N, C-1) cumulative logits, see :func:`coral_probabilities`.
    """
    z = np.asarray(logits, np.float64) / float(temperature)
    if head == "binary":
        p = _sigmoid(z.reshape(len(z), -1)[:, 0])
        return np.stack([1.0 - p, p], axis=1)
    if head == "softmax":
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    if head == "ordinal":
        return coral_probabilities(z)
    raise ConfigError(f"head {head!r} is not one of {HEADS}", "head")


class Classifier:
    """A trained classifier with its labels, head and preprocessing; inference only.

    ``predict_logits`` / ``predict_proba`` take (H, W) float images in [0, 1] (bone bright),
    run them through :func:`prepare` in batches of ``batch_size`` under ``inference_mode`` in
    eval mode and channels_last, and return numpy arrays. ``temperature`` (fitted on
    out-of-fold logits, 1 = none) divides the logits in ``predict_proba``. Not thread-safe.

    ``engine``, when given, is what computes the logits instead of ``model``: a callable from a
    float32 (N, C, S, S) numpy batch to (N, K) logits, e.g. an
    :class:`~spinexr.models.onnx_runtime.OrtModel`. ``model`` stays the torch module, for
    explanations (they need gradients).
    """

    def __init__(self, model, labels: Sequence[str], head: str, pre: Preprocess, *,
                 device: str = "cpu", batch_size: int = 16, name: str | None = None,
                 temperature: float = 1.0, engine=None) -> None:
        self.labels = tuple(labels)
        self.head = head
        self.pre = pre
        self.name = name
        self.batch_size = int(batch_size)
        self.temperature = float(temperature)
        if not self.temperature > 0:
            raise ConfigError(f"temperature={temperature!r}: must be > 0", "temperature")
        self.device = torch.device(device)
        output_width(head, len(self.labels))  # validates head / labels
        self.model = model.to(self.device).eval().to(memory_format=torch.channels_last)
        self.engine = engine

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def backend(self) -> str:
        """What computes the logits: ``"onnxruntime"`` (an ``engine``) or ``"torch"``."""
        return "torch" if self.engine is None else "onnxruntime"

    def logits_from_batch(self, batch) -> np.ndarray:
        """Logits (N, K) for an already prepared float32 batch (N, 1, S, S)."""
        self.model.eval()
        chunks = []
        # flushed: untrained-ish weights run 2-4x slower with denormals; restored afterwards
        with torch.inference_mode(), flush_denormals():
            for start in range(0, len(batch), self.batch_size):
                chunks.append(self._forward(batch[start:start + self.batch_size]))
        k = output_width(self.head, self.num_classes)
        return torch.cat(chunks).numpy() if chunks else np.zeros((0, k), np.float32)

    def _forward(self, x):
        if self.engine is not None:
            out = self.engine(x.detach().cpu().contiguous().numpy())
            return torch.from_numpy(np.asarray(out, np.float32)).reshape(len(x), -1)
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        return self.model(x).float().reshape(len(x), -1).cpu()

    def predict_logits(self, images: Sequence[np.ndarray], *,
                       contrast_applied: bool = False) -> np.ndarray:
        """Raw logits (N, K): K = 1 (binary), C (softmax) or C-1 (ordinal).
        ``contrast_applied``: the images already went through the contract's ``contrast``
        step (a caller sharing it between models), so it is skipped."""
        pre = replace(self.pre, contrast="none") if contrast_applied else self.pre
        out = []
        step = max(self.batch_size, 1)
        for start in range(0, len(images), step):  # prepare per chunk: bounded memory
            out.append(self.logits_from_batch(prepare(images[start:start + step], pre)))
        k = output_width(self.head, self.num_classes)
        return np.concatenate(out) if out else np.zeros((0, k), np.float32)

    def predict_proba(self, images: Sequence[np.ndarray],
                      temperature: float | None = None) -> np.ndarray:
        """Class probabilities (N, C) in label order (binary: ``[1 - p, p]``), computed from
        ``logits / temperature`` (default: the classifier's own ``temperature``)."""
        t = self.temperature if temperature is None else temperature
        return probabilities(self.predict_logits(images), self.head, t)

    def spec(self) -> dict[str, Any]:
        """The manifest fields describing this classifier (without weights / arch)."""
        return {"kind": "classifier", "head": self.head, "labels": list(self.labels),
                "input": self.pre.to_dict()}


def shared_logits(classifiers: Mapping[str, Any], images: Sequence[np.ndarray]
                  ) -> dict[str, np.ndarray]:
    """Each classifier's :meth:`Classifier.predict_logits` on the same images, preparing each
    chunk of images once per input contract instead of once per classifier.

    An ensemble's members usually share one contract (size, mean/std, interpolation); then
    the resize of every image, the costliest preprocessing step, runs once, not once per
    member. Classifiers with the same ``pre`` and ``batch_size`` share prepared chunks, so
    each one sees exactly the batches its own ``predict_logits`` would give it (same logits,
    bit for bit). Objects without ``pre`` / ``logits_from_batch`` (stand-ins) are asked
    through ``predict_logits``.

    Returns:
        name -> logits (N, K), in the order of ``classifiers``.
    """
    groups: dict[tuple[Preprocess, int], list[str]] = {}
    out: dict[str, np.ndarray] = {}
    for name, clf in classifiers.items():
        if isinstance(getattr(clf, "pre", None), Preprocess) and hasattr(clf, "logits_from_batch"):
            groups.setdefault((clf.pre, max(int(clf.batch_size), 1)), []).append(name)
        else:
            out[name] = clf.predict_logits(images)
    for (pre, step), names in groups.items():
        parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
        for start in range(0, len(images), step):
            batch = prepare(images[start:start + step], pre)
            for n in names:
                parts[n].append(classifiers[n].logits_from_batch(batch))
        for n in names:
            clf = classifiers[n]
            k = output_width(clf.head, clf.num_classes)
            out[n] = np.concatenate(parts[n]) if parts[n] else np.zeros((0, k), np.float32)
    return {name: out[name] for name in classifiers}
