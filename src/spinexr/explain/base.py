"""The one interface of every explanation method: target, model state, geometry, scaling.

:func:`explain` turns a :class:`~spinexr.models.classifier.Classifier` and one (H, W) source
image into a :class:`~spinexr.types.Heatmap` aligned to that source. The steps, shared by all
methods (each method lives in its own module and only computes a map on the model canvas):

1. **Canvas.** The image goes through :func:`~spinexr.models.classifier.prepare` exactly as at
   inference (letterbox or squash to S x S, then ``(x - mean) / std``).
2. **Target.** Every method attributes one scalar per image, ``score(x) -> (N,)``:

   * ``binary`` head: the abnormal logit ``z`` (``target=1``, the default); ``target=0``
     attributes ``-z``, the logit of "normal";
   * ``softmax`` head: the logit (not the probability) of ``target``, by default the
     predicted class;
   * ``ordinal`` (CORAL) head: by default the **expected grade** ``sum_k sigmoid(z_k)``
     (``= sum_c c * p_c`` while the cumulative probabilities are non-increasing); positive
     attribution pushes towards a worse grade. A class is not a good target there: the
     gradient of one class probability changes sign around the mode. ``target=k``
     (1 <= k < C) attributes the cumulative logit ``z_{k-1}`` of ``P(y >= k)``. For a
     :class:`~spinexr.models.classifier.CoralModel` all of these share the direction of the
     backbone's gradient, so Grad-CAM and saliency maps agree after scaling.
3. **Model state.** The model inside the classifier is used in place (no copy), in eval mode,
   with parameters' ``requires_grad`` off (gradients flow to the input or to the activations
   only); afterwards every module's mode, every ``requires_grad`` flag and the hook dictionaries
   are as they were, the parameters untouched and ``torch.is_grad_enabled()`` unchanged.
4. **Geometry.** The method's (S, S) map is cropped to the image inside the letterbox and
   resized (bilinear; antialiased when shrinking) to (H, W), so it overlays the source exactly.
5. **Scaling to [0, 1]**, done by each method: Grad-CAM ReLU / max; IG and saliency robust
   (positive values / their 99th percentile, clipped); LIME positive coefficients / max. An
   all-zero attribution gives an all-zero map.
"""
from __future__ import annotations

import importlib
import inspect
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spinexr.errors import ConfigError
from spinexr.models.classifier import Preprocess, output_width, prepare
from spinexr.models.ensemble import positive_probability
from spinexr.models.spine_crops import window_pixels
from spinexr.types import Heatmap

#: Method names accepted by :func:`explain`, each one module of this package.
METHODS = ("gradcam", "ig", "saliency", "lime")
_MODULES = {"gradcam": "gradcam", "ig": "integrated_gradients", "saliency": "saliency",
            "lime": "lime"}
# nn.Module's hook registries; a RemovableHandle removes its id from each of them.
#: The attributed scalar: a batch (B, 1, S, S) -> (B,).
Score = Callable[[torch.Tensor], torch.Tensor]
_HOOK_DICTS = ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
               "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_backward_hooks",
               "_backward_pre_hooks")


@dataclass(frozen=True)
class Canvas:
    """What a method needs to explain one image on the model canvas.

    Attributes:
        x: float32 tensor (1, 1, S, S), the normalised model input, on the model's device.
        score: maps a batch (B, 1, S, S) to the attributed scalar per image, shape (B,).
        model: the classifier's ``nn.Module`` (in eval mode while the method runs).
        box: ``(top, left, height, width)`` of the image inside the S x S canvas.
        pre: the classifier's preprocessing contract.
    """

    x: torch.Tensor
    score: Score
    model: nn.Module
    box: tuple[int, int, int, int]
    pre: Preprocess

    def crop(self, canvas_map: np.ndarray) -> np.ndarray:
        """The (height, width) part of an (S, S) map that covers the image (not the padding)."""
        top, left, h, w = self.box
        return canvas_map[top:top + h, left:left + w]


def content_box(height: int, width: int, pre: Preprocess) -> tuple[int, int, int, int]:
    """Where an (height, width) image lands in the (S, S) canvas: ``(top, left, h, w)``.

    The same arithmetic as :func:`~spinexr.models.classifier.resize_to_input`: letterbox scales
    the longer side to S and centres the image; squash fills the canvas.
    """
    s = pre.input_size
    if pre.resize != "letterbox":
        return 0, 0, s, s
    scale = s / max(height, width)
    h = min(s, max(1, round(height * scale)))
    w = min(s, max(1, round(width * scale)))
    return (s - h) // 2, (s - w) // 2, h, w


def resize_map(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a 2-D map to ``shape`` (bilinear, antialiased when shrinking); float32 copy."""
    arr = np.ascontiguousarray(values, dtype=np.float32)
    if arr.shape == tuple(shape):
        return arr.copy()
    t = torch.from_numpy(arr)[None, None]
    shrink = shape[0] < arr.shape[0] or shape[1] < arr.shape[1]
    out = F.interpolate(t, size=tuple(shape), mode="bilinear", align_corners=False,
                        antialias=shrink)
    return out[0, 0].numpy().astype(np.float32)


def robust_scale(values: np.ndarray, percentile: float = 99.0) -> np.ndarray:
    """Positive part divided by the ``percentile`` of the positive values, clipped to [0, 1].

    Taking the percentile over positive values only keeps a small hot spot (under 1% of the
    pixels) visible. No positive value: zeros. Returns float32 of the same shape.
    """
    if not 0.0 < percentile <= 100.0:
        raise ConfigError(f"percentile={percentile!r}: need a number in (0, 100]", "percentile")
    v = np.asarray(values, dtype=np.float32)
    pos = v[v > 0]
    if pos.size == 0:
        return np.zeros(v.shape, np.float32)
    top = float(np.percentile(pos, percentile))
    return np.clip(v / top, 0.0, 1.0).astype(np.float32)


def max_scale(values: np.ndarray) -> np.ndarray:
    """Positive part divided by its maximum (zeros when nothing is positive); float32."""
    v = np.maximum(np.asarray(values, dtype=np.float32), 0.0)
    top = float(v.max()) if v.size else 0.0
    return (v / top).astype(np.float32) if top > 0 else np.zeros(v.shape, np.float32)


def baseline_like(canvas: Canvas, baseline: str | float) -> torch.Tensor:
    """A reference input for IG and LIME: the image region filled, the padding kept.

    ``"mean"`` fills with 0 in normalised space, i.e. grey at the preprocessing mean;
    ``"black"`` with the normalised value of 0; a float v in [0, 1] with that grey level.
    The letterbox padding keeps the input's own values, so it never carries attribution.
    """
    if baseline == "mean":
        fill = 0.0
    elif baseline == "black":
        fill = (0.0 - canvas.pre.mean) / canvas.pre.std
    elif isinstance(baseline, (int, float)) and not isinstance(baseline, bool) and (
            0.0 <= baseline <= 1.0):
        fill = (float(baseline) - canvas.pre.mean) / canvas.pre.std
    else:
        raise ConfigError(f"baseline={baseline!r}: use 'mean', 'black' or a grey level in "
                          "[0, 1]", "baseline")
    top, left, h, w = canvas.box
    out = canvas.x.detach().clone()
    out[..., top:top + h, left:left + w] = fill
    return out


def select_target(classifier, x: torch.Tensor, target: int | None) -> tuple[Score, str]:
    """The attributed scalar ``score(batch) -> (B,)`` and its name (see the module docstring).

    ``x`` is the prepared (1, 1, S, S) input, used to find the predicted class of a softmax
    head when ``target`` is None.
    """
    head, labels, model = classifier.head, classifier.labels, classifier.model
    width = output_width(head, len(labels))

    def logits(batch: torch.Tensor) -> torch.Tensor:
        # channels_last as in Classifier.logits_from_batch: a (N, 1, S, S) batch in the default
        # layout sends a channels_last model down a slow path (~9x at 224 px, batch 1)
        batch = batch.contiguous(memory_format=torch.channels_last)
        return model(batch).float().reshape(len(batch), width)

    if head == "binary":
        t = 1 if target is None else _check_target(target, range(2), head)
        sign = 1.0 if t == 1 else -1.0
        return (lambda b: sign * logits(b)[:, 0]), labels[t]
    if head == "softmax":
        if target is None:
            with torch.no_grad():
                t = int(logits(x).argmax(dim=1)[0])
        else:
            t = _check_target(target, range(len(labels)), head)
        return (lambda b: logits(b)[:, t]), labels[t]
    if target is None:
        return (lambda b: torch.sigmoid(logits(b)).sum(dim=1)), "expected grade"
    k = _check_target(target, range(1, len(labels)), head)
    return (lambda b: logits(b)[:, k - 1]), f"{labels[k]} or higher"


def _check_target(target: Any, allowed: range, head: str) -> int:
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or (
            int(target) not in allowed):
        raise ConfigError(f"target={target!r} for a {head} head: need an integer in "
                          f"{allowed.start}..{allowed.stop - 1}", "target")
    return int(target)


@contextmanager
def preserved_state(model: nn.Module) -> Iterator[nn.Module]:
    """Run with ``model`` in eval mode and its parameters frozen; restore everything after.

    Restores each module's ``training`` flag and each parameter's ``requires_grad``, and
    removes any hook registered meanwhile (captum removes its own; this is the safety net
    for an exception half-way). Grad mode is left to the callers' context managers.
    """
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    hooks = [(m, {name: set(getattr(m, name, {})) for name in _HOOK_DICTS})
             for m in model.modules()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, before in hooks:
            for name, keys in before.items():
                registry = getattr(m, name, None)
                for key in [k for k in (registry or {}) if k not in keys]:
                    del registry[key]


def _method_module(method: str):
    if method not in METHODS:
        raise ConfigError(f"unknown explanation method {method!r}; choose one of {METHODS}",
                          "method")
    # imported here: the method modules import this one's helpers
    return importlib.import_module(f"spinexr.explain.{_MODULES[method]}")


def _check_options(fn: Callable, method: str, options: dict[str, Any]) -> None:
    params = inspect.signature(fn).parameters
    known = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown} for method {method!r}; it takes "
                          f"{known}", "options")


def explain(classifier, image: np.ndarray, method: str, *, target: int | None = None,
            **options: Any) -> Heatmap:
    """Explain one prediction of ``classifier`` on ``image`` with ``method``.

    Args:
        classifier: a :class:`~spinexr.models.classifier.Classifier`; its model is used in
            place and left as it was (mode, ``requires_grad``, hooks, parameters).
        image: (H, W) float image in [0, 1], bone bright (the classifier's input contract).
        method: one of :data:`METHODS`: ``"gradcam"``, ``"ig"`` (Integrated Gradients),
            ``"saliency"`` or ``"lime"``.
        target: which output to explain (see the module docstring); None: the default of the
            head (binary: abnormal; softmax: the predicted class; ordinal: the expected grade).
        **options: the method's own options, e.g. ``steps`` for IG or ``n_samples`` for LIME;
            see each method's ``canvas_map``. Unknown options raise :class:`ConfigError`.

    Returns:
        Heatmap with ``array`` float32 (H, W) in [0, 1] aligned pixel for pixel to ``image``,
        ``method``, ``target`` (the label explained) and ``model`` (the classifier's name).
    """
    module = _method_module(method)
    _check_options(module.canvas_map, method, options)
    img = np.asarray(image)
    if img.ndim != 2 or min(img.shape) < 1:
        raise ConfigError(f"expected one (H, W) grayscale image, got shape {img.shape}", "image")
    box = content_box(img.shape[0], img.shape[1], classifier.pre)
    # inference_mode(False): a caller inside inference_mode would otherwise hand us tensors
    # that autograd refuses; grad mode itself is switched on by the gradient methods only.
    with torch.inference_mode(False), preserved_state(classifier.model) as model:
        x = prepare([img], classifier.pre).to(classifier.device).contiguous(
            memory_format=torch.channels_last)
        score, name = select_target(classifier, x, target)
        canvas = Canvas(x=x, score=score, model=model, box=box, pre=classifier.pre)
        cropped = module.canvas_map(canvas, **options)
    array = np.clip(resize_map(cropped, img.shape), 0.0, 1.0).astype(np.float32)
    return Heatmap(method=method, target=name, array=array, model=classifier.name)


def explain_ensemble(ensemble, image: np.ndarray, method: str, *, target: int = 1,
                     **options: Any) -> Heatmap:
    """The weighted mean of the members' heatmaps for the abnormal class.

    Each member (binary or 2-class softmax head) is explained for ``target`` (1 = abnormal,
    not each member's own prediction), its map scaled to [0, 1] on its own (raw attributions
    of different models are not comparable; temperatures only rescale a logit, which the
    scaling removes), then ``sum_m w_m map_m`` with the ensemble weights (summing to 1), so
    the result stays in [0, 1] and is dimmer where members disagree. Members of weight 0 are
    skipped.

    Returns:
        Heatmap (H, W) float32 in [0, 1], ``model="ensemble"``, target the first member's
        label for ``target``.
    """
    _check_options(_method_module(method).canvas_map, method, options)
    total, name = None, None
    for member_name, clf in ensemble.members.items():
        weight = float(ensemble.weights[member_name])
        if weight <= 0:
            continue
        heat = explain(clf, image, method, target=target, **options)
        total = weight * heat.array if total is None else total + weight * heat.array
        name = name or heat.target
    if total is None:
        raise ConfigError("every ensemble weight is 0: nothing to explain", "ensemble.weights")
    array = np.clip(total, 0.0, 1.0).astype(np.float32)
    return Heatmap(method=method, target=str(name), array=array, model="ensemble")


def explain_windows(triage, image: np.ndarray, method: str, *, vertebrae=None, top: int = 3,
                    **options: Any) -> Heatmap:
    """Explain a window triage (:class:`~spinexr.models.spine_crops.WindowTriage`).

    The ``top`` windows with the highest ensemble probability are explained with
    :func:`explain_ensemble` on their crops; each crop's map, times that window's probability,
    is placed where the window lies (the maximum where windows overlap). A normal image thus
    gets a dim map, and the bright spots sit in the windows that drove the pooled score.
    ``vertebrae``: the bodies the triage already used (else its detector runs).
    """
    _check_options(_method_module(method).canvas_map, method, options)
    windows = triage.windows([image], None if vertebrae is None else [vertebrae])[0]
    full = np.zeros(image.shape, dtype=np.float32)
    ens = triage.ensemble
    target = "abnormal"
    if windows:
        crops = [window_pixels(image, w, triage.spec) for w in windows]
        names = list(ens.members)
        probs = np.stack([positive_probability(ens.members[k].predict_logits(crops),
                                               ens.members[k].head, ens.temperatures[k])
                          for k in names])
        p = np.tensordot([ens.weights[k] for k in names], probs, axes=1)
        for i in np.argsort(-p, kind="stable")[:max(1, top)]:
            heat = explain_ensemble(ens, crops[i], method, **options)
            target = heat.target
            w = windows[i]
            y1, x1 = int(np.floor(w.y1)), int(np.floor(w.x1))
            region = full[y1:y1 + heat.array.shape[0], x1:x1 + heat.array.shape[1]]
            np.maximum(region, heat.array[:region.shape[0], :region.shape[1]] * float(p[i]),
                       out=region)
    return Heatmap(method=method, target=str(target), array=np.clip(full, 0.0, 1.0),
                   model="ensemble")
