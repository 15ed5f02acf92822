"""LIME (Ribeiro et al. 2016) on a grid of superpixels, through captum's ``Lime``.

The image region of the canvas is cut into a ``cells`` x ``cells`` grid (regular cells
rather than SLIC superpixels: no scikit-image dependency, and a radiograph's soft gradients
give SLIC little to hold on to). Each of ``n_samples`` perturbations keeps every cell with
probability 1/2 and fills the others with the baseline grey; a weighted ridge regression
(sklearn ``Ridge(alpha=1)``, as the LIME reference code; weights: captum's exponential kernel
on the cosine distance to the input) of the target score on the kept/filled indicators gives
one coefficient per cell. The letterbox padding is one more feature whose baseline equals the
input, so toggling it changes nothing and its coefficient is ~0.

Cost: ``n_samples`` forward passes (no gradients), 200 by default: with a ResNet-18 at 224 px
about 4 s on one free CPU core (1000 samples: about 20 s), some 3x 32-step Integrated
Gradients. With fewer samples than about twice the number of cells the regression is
underdetermined and the map noisy: lower ``cells`` with ``n_samples``. Sampling uses its own ``torch.Generator`` seeded with ``seed``: the same
call gives the same map.
"""
from __future__ import annotations

import numpy as np
import torch

from spinexr.errors import ConfigError
from spinexr.explain.base import Canvas, Score, baseline_like, max_scale


def grid_mask(size: int, box: tuple[int, int, int, int], cells: int) -> torch.Tensor:
    """Feature ids (1, 1, S, S): a ``cells`` x ``cells`` grid over the image region ``box``
    (fewer rows or columns if the region has fewer pixels), numbered row by row from 0; the
    padding, if any, gets the next id."""
    top, left, h, w = box
    rows, cols = min(cells, h), min(cells, w)
    r = np.arange(h) * rows // h
    c = np.arange(w) * cols // w
    mask = np.full((size, size), rows * cols, dtype=np.int64)
    mask[top:top + h, left:left + w] = r[:, None] * cols + c[None, :]
    return torch.from_numpy(mask)[None, None]


def _bernoulli_sampler(generator: torch.Generator):
    def perturb(original_input, **kwargs) -> torch.Tensor:
        n = int(kwargs["num_interp_features"])
        keep = torch.bernoulli(torch.full((1, n), 0.5), generator=generator)
        return keep.long().to(original_input.device)

    return perturb


def attribute(score: Score, x: torch.Tensor, baseline: torch.Tensor, feature_mask: torch.Tensor, *,
              n_samples: int = 200, perturbations_per_eval: int = 16,
              seed: int = 0) -> torch.Tensor:
    """LIME coefficients of ``score`` (batch -> (B,)) for the features of ``feature_mask``.

    Returns:
        tensor shaped like ``x`` holding, at every pixel, its feature's coefficient.
    """
    from captum._utils.models.linear_model import SkLearnRidge
    from captum.attr import Lime

    generator = torch.Generator().manual_seed(int(seed))
    lime = Lime(score, interpretable_model=SkLearnRidge(alpha=1.0),
                perturb_func=_bernoulli_sampler(generator))
    with torch.no_grad():
        out = lime.attribute(x, baselines=baseline, feature_mask=feature_mask.to(x.device),
                             n_samples=int(n_samples),
                             perturbations_per_eval=int(perturbations_per_eval))
    return out.detach()


def canvas_map(canvas: Canvas, *, n_samples: int = 200, cells: int = 8,
               baseline: str | float = "mean", seed: int = 0,
               perturbations_per_eval: int = 16) -> np.ndarray:
    """LIME over the image region of the canvas, float32 (h, w) in [0, 1].

    Args:
        canvas: the prepared image and target.
        n_samples: perturbed images evaluated, the cost (see the module docstring).
        cells: grid cells along each side of the image region (8: 64 superpixels).
        baseline: fill of a switched-off cell: ``"mean"`` (default), ``"black"`` or a grey
            level in [0, 1].
        seed: seeds the sampling; the map is a deterministic function of the inputs and seed.
        perturbations_per_eval: perturbed images per forward pass (memory vs speed).

    Cells with positive coefficients (evidence for the target) are shown, divided by the
    largest coefficient.
    """
    for name, value, low in (("n_samples", n_samples, 2), ("cells", cells, 1),
                             ("perturbations_per_eval", perturbations_per_eval, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name}={value!r}: need an integer >= {low}", name)
    mask = grid_mask(canvas.pre.input_size, canvas.box, cells)
    coef = attribute(canvas.score, canvas.x, baseline_like(canvas, baseline), mask,
                     n_samples=n_samples, perturbations_per_eval=perturbations_per_eval,
                     seed=seed)
    return max_scale(canvas.crop(coef[0, 0].float().cpu().numpy()))
