"""Grad-CAM (Selvaraju et al. 2017) through captum's ``LayerGradCam``.

The map is ``ReLU(sum_c alpha_c A_c)`` on the feature grid of a convolutional layer, with
``alpha_c`` the spatial mean of the gradient of the target score over channel c of the layer's
output ``A``. The layer defaults to the last module whose output is a 4-D feature map larger
than 1 x 1 (found by one forward pass): for timm CNNs that is the end of ``forward_features``
(a ResNet's ``layer4``, an EfficientNet's ``bn2``), before global pooling.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spinexr.errors import ConfigError
from spinexr.explain.base import Canvas, Score, max_scale


def find_target_layer(model: nn.Module, x: torch.Tensor) -> tuple[str, nn.Module]:
    """The last module (in order of completion) whose output is (N, C, h, w) with h * w > 1.

    A container finishes after its children, so of nested modules returning the same
    feature map the outermost one (e.g. ``layer4`` rather than its last activation) is
    chosen. Runs one forward pass of ``x`` without gradients; leaves no hook behind.

    Raises:
        ConfigError: no module returns a spatial feature map (e.g. a vision transformer);
            pass ``layer=`` explicitly.
    """
    found: list[str] = []
    names = {m: n for n, m in model.named_modules()}

    def hook(module: nn.Module, _inputs, output) -> None:
        if isinstance(output, torch.Tensor) and output.ndim == 4 and (
                output.shape[-2] * output.shape[-1] > 1):
            found.append(names[module])

    handles = [m.register_forward_hook(hook) for m in model.modules() if m is not model]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    if not found:
        raise ConfigError("no layer of the model returns a spatial (N, C, h, w) feature map; "
                          "give Grad-CAM one with layer='<module name>'", "layer")
    return found[-1], model.get_submodule(found[-1])


def attribute(score: Score, x: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """Grad-CAM of ``score`` (batch -> (B,)) at ``layer``; (B, 1, h, w), not yet rectified."""
    from captum.attr import LayerGradCam

    return LayerGradCam(score, layer).attribute(x).detach()


def canvas_map(canvas: Canvas, *, layer: str | nn.Module | None = None) -> np.ndarray:
    """Grad-CAM over the image region of the canvas, float32 (h, w) in [0, 1].

    Args:
        canvas: the prepared image and target (see :class:`~spinexr.explain.base.Canvas`).
        layer: the module, or its dotted name in the model (``"layer4"``); None: found by
            :func:`find_target_layer`.

    The feature-grid map is ReLU'd, upsampled bilinearly to the S x S canvas, cropped to the
    image and divided by its maximum.
    """
    model = canvas.model
    if layer is None:
        _, module = find_target_layer(model, canvas.x)
    elif isinstance(layer, str):
        try:
            module = model.get_submodule(layer)
        except AttributeError as exc:
            raise ConfigError(f"the model has no module {layer!r}", "layer") from exc
    else:
        module = layer
    cam = torch.relu(attribute(canvas.score, canvas.x, module)).float()
    s = canvas.pre.input_size
    cam = F.interpolate(cam.cpu(), size=(s, s), mode="bilinear", align_corners=False)
    return max_scale(canvas.crop(cam[0, 0].numpy()))
