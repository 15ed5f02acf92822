"""Box detection on radiographs with a YOLO11 ``DetectionModel``: our own pre/post-processing.

Inputs are float images in [0, 1] (bone bright) straight from :mod:`spinexr.io`: no 8-bit
round trip. Each image is letterboxed to ``imgsz`` (aspect kept, grey padding as in
ultralytics), replicated to 3 channels, run as one batch, then non-maximum suppression; boxes
come back in source-pixel coordinates ``[x1, y1, x2, y2]``, clipped to the image.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from spinexr.io.contrast import apply_preprocess
from spinexr.models.onnx_runtime import flush_denormals
from spinexr.types import Box


@dataclass(frozen=True)
class Letterbox:
    """How a source image was placed into the square model input."""

    scale: float
    pad_x: float
    pad_y: float
    width: int
    height: int


#: ``max_time_img`` for ultralytics' NMS: it gives up after 2 s + 0.05 s per image and returns
#: what it kept so far, so on a busy machine (a loaded server, a shared CI runner) images
#: silently lose detections. Results must not depend on the machine's load: no limit.
NMS_NO_TIME_LIMIT = 1.0e9


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Resize (H, W) float32 to fit ``size`` x ``size`` keeping aspect, pad with 114/255 grey.

    Returns the (size, size) float32 array and the transform to map boxes back.
    """
    from PIL import Image

    h, w = image.shape
    scale = min(size / h, size / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = np.asarray(Image.fromarray(np.asarray(image, np.float32), mode="F").resize(
        (nw, nh), Image.Resampling.BILINEAR if scale > 0.5 else Image.Resampling.BOX))
    out = np.full((size, size), 114.0 / 255.0, dtype=np.float32)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top:top + nh, left:left + nw] = resized
    return out, Letterbox(scale=scale, pad_x=left, pad_y=top, width=w, height=h)


def unletterbox(xyxy: np.ndarray, lb: Letterbox) -> np.ndarray:
    """Map (N, 4) boxes from model-input pixels back to the source image, clipped to it."""
    out = np.empty_like(xyxy, dtype=np.float64)
    out[:, [0, 2]] = (xyxy[:, [0, 2]] - lb.pad_x) / lb.scale
    out[:, [1, 3]] = (xyxy[:, [1, 3]] - lb.pad_y) / lb.scale
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, lb.width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, lb.height)
    return out


class Detector:
    """A YOLO11 detector with its class names and input size. Not thread-safe for training.

    ``preprocess`` is the input contract's contrast step (``"equalize"``: see
    :func:`spinexr.io.contrast.apply_preprocess`), applied to each image before letterboxing;
    ``tile_aspect`` (optional) makes :meth:`predict` tile images longer than that aspect.

    ``engine``, when given, computes the raw predictions instead of ``model``: a callable from
    a float32 (N, 3, S, S) numpy batch to the decoded (N, 4 + nc, anchors) array, e.g. an
    :class:`~spinexr.models.onnx_runtime.OrtModel`; ``model`` stays the torch model.
    """

    def __init__(self, model, names: Sequence[str], imgsz: int, *, device: str = "cpu",
                 engine=None, preprocess: str | None = None,
                 tile_aspect: float | None = None) -> None:
        import torch

        apply_preprocess(np.zeros((2, 2), np.float32), preprocess)  # unknown names fail here
        self.preprocess = None if preprocess in (None, "none") else preprocess
        self.tile_aspect = float(tile_aspect) if tile_aspect else None
        self.model = model.to(device).eval()
        self.names = tuple(names)
        self.imgsz = int(imgsz)
        self.device = torch.device(device)
        self.engine = engine

    @property
    def backend(self) -> str:
        """What computes the predictions: ``"onnxruntime"`` (an ``engine``) or ``"torch"``."""
        return "torch" if self.engine is None else "onnxruntime"

    def predict(self, images: Sequence[np.ndarray], *, conf: float = 0.25, iou: float = 0.6,
                max_det: int = 300, contrast_applied: bool = False) -> list[list[Box]]:
        """Detect boxes in each (H, W) float image in [0, 1]; one list of boxes per image
        (tall images also in tiles when the input contract sets ``tile_aspect``: see
        :meth:`predict_tiled`). ``contrast_applied``: the images already went through the
        contract's ``preprocess`` step (a caller sharing it between models), so it is skipped."""
        if self.tile_aspect:
            return self.predict_tiled(images, max_aspect=self.tile_aspect, conf=conf, iou=iou,
                                      max_det=max_det, contrast_applied=contrast_applied)
        return self._predict(images, conf=conf, iou=iou, max_det=max_det,
                             preprocess=None if contrast_applied else self.preprocess)

    def _predict(self, images: Sequence[np.ndarray], *, conf: float, iou: float,
                 max_det: int, preprocess: str | None) -> list[list[Box]]:
        import torch
        from ultralytics.utils.nms import non_max_suppression

        if not images:
            return []
        boxed = [letterbox(apply_preprocess(img, preprocess), self.imgsz) for img in images]
        batch = torch.from_numpy(np.stack([b[0] for b in boxed]))[:, None].expand(-1, 3, -1, -1)
        if self.engine is not None:
            preds = torch.from_numpy(np.asarray(self.engine(batch.contiguous().numpy()),
                                                np.float32))
        else:
            with torch.inference_mode(), flush_denormals():  # denormals: 2-4x slower
                preds = self.model(batch.contiguous().to(self.device))
        dets = non_max_suppression(preds, conf_thres=conf, iou_thres=iou, max_det=max_det,
                                   nc=len(self.names), max_time_img=NMS_NO_TIME_LIMIT)
        return [self._boxes(d.cpu().numpy(), lb) for d, (_, lb) in zip(dets, boxed)]

    def predict_tiled(self, images: Sequence[np.ndarray], *, max_aspect: float,
                      conf: float = 0.25, iou: float = 0.6, max_det: int = 300,
                      contrast_applied: bool = False) -> list[list[Box]]:
        """As :meth:`predict`, but an image longer than ``max_aspect`` times its short side
        (a whole-spine film of 1:3, say) is also cut into overlapping tiles of at most that
        aspect along its long side, so that its vertebrae are not shrunk below the sizes the
        model saw in training; the boxes of the whole image and of its tiles are merged by
        non-maximum suppression, and boxes cut by a tile's inner edge are dropped."""
        step = None if contrast_applied else self.preprocess
        prepared = [apply_preprocess(img, step) for img in images]
        jobs = [(i, (0, 0, im.shape[1], im.shape[0])) for i, im in enumerate(prepared)]
        jobs += [(i, t) for i, im in enumerate(prepared) for t in tiles(im.shape, max_aspect)
                 if t != (0, 0, im.shape[1], im.shape[0])]
        # the contrast step was applied once, to the whole image, not per tile
        found = self._predict([prepared[i][y0:y1, x0:x1] for i, (x0, y0, x1, y1) in jobs],
                              conf=conf, iou=iou, max_det=max_det, preprocess=None)
        per_image: list[list[Box]] = [[] for _ in images]
        for (i, tile), boxes in zip(jobs, found):
            per_image[i] += from_tile(boxes, tile, prepared[i].shape)
        return [merge_boxes(b, iou, max_det) for b in per_image]

    def _boxes(self, det: np.ndarray, lb: Letterbox) -> list[Box]:
        xyxy = unletterbox(det[:, :4], lb)
        out = []
        for (x1, y1, x2, y2), score, cls in zip(xyxy, det[:, 4], det[:, 5]):
            if x2 > x1 and y2 > y1:
                out.append(Box(float(x1), float(y1), float(x2), float(y2),
                               label=self.names[int(cls)], score=float(score)))
        return out


def tiles(shape: tuple[int, int], max_aspect: float, overlap: float = 0.25
          ) -> list[tuple[int, int, int, int]]:
    """Tiles ``(x0, y0, x1, y1)`` along the long side of an (H, W) image, each at most
    ``max_aspect`` times as long as the short side, overlapping by ``overlap`` of a tile;
    ``[]`` when the whole image is within ``max_aspect``."""
    h, w = shape
    short, long_ = min(h, w), max(h, w)
    if long_ <= max_aspect * short:
        return []
    size = int(max_aspect * short)
    step = max(1, int(size * (1.0 - overlap)))
    starts = list(range(0, long_ - size + 1, step))
    if starts[-1] + size < long_:
        starts.append(long_ - size)
    return [(0, s, w, s + size) if h >= w else (s, 0, s + size, h) for s in starts]


def from_tile(boxes: Sequence[Box], tile: tuple[int, int, int, int],
              shape: tuple[int, int], edge: float = 2.0) -> list[Box]:
    """Boxes found in a tile ``(x0, y0, x1, y1)`` of an (H, W) image, in image coordinates,
    without those cut by an inner tile edge (within ``edge`` pixels of a side of the tile that
    is not a side of the image)."""
    from dataclasses import replace

    x0, y0, x1, y1 = tile
    h, w = shape
    out = []
    for b in boxes:
        cut = ((y0 > 0 and b.y1 <= edge) or (y1 < h and b.y2 >= y1 - y0 - edge)
               or (x0 > 0 and b.x1 <= edge) or (x1 < w and b.x2 >= x1 - x0 - edge))
        if not cut:
            out.append(replace(b, x1=b.x1 + x0, y1=b.y1 + y0, x2=b.x2 + x0, y2=b.y2 + y0))
    return out


def merge_boxes(boxes: Sequence[Box], iou: float, max_det: int = 300) -> list[Box]:
    """Class-wise non-maximum suppression over boxes from several views of one image."""
    import torch
    from torchvision.ops import batched_nms

    if not boxes:
        return []
    xyxy = torch.tensor([b.as_list() for b in boxes], dtype=torch.float32)
    scores = torch.tensor([b.score or 0.0 for b in boxes], dtype=torch.float32)
    labels = sorted({b.label for b in boxes})
    idx = torch.tensor([labels.index(b.label) for b in boxes])
    kept = batched_nms(xyxy, scores, idx, iou)[:max_det]
    return [boxes[int(k)] for k in kept]
