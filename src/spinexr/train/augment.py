"""Training augmentations that keep a radiograph plausible, applied to whole batches on tensors.

Geometry: a small rotation, isotropic scale, translation and a horizontal flip (left-right
mirroring is a plausible patient position; a vertical flip is not: a spine has a head end, so
this module offers none and refuses recipe keys asking for one). Intensity: gamma, contrast,
brightness and Gaussian noise, as exposure and detector differences do.

Every function is pure: a batch (B, 1, S, S) of float images in [0, 1] and an explicit
``torch.Generator`` in, a new batch out; the input is never modified. Parameters are drawn on
the CPU generator, so the same generator state gives the same batch on any device.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

import torch
import torch.nn.functional as F

from spinexr.errors import ConfigError

_FORBIDDEN = ("vflip", "flipud", "vertical_flip", "flip_vertical")
MAX_DEGREES = 30.0


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths; zero switches one off.

    Attributes:
        hflip: probability of a left-right mirror.
        degrees: rotation drawn uniformly in [-degrees, degrees] (at most 30).
        scale: zoom factor drawn log-uniformly in [1/(1+scale), 1+scale].
        translate: shift drawn uniformly in [-translate, translate] of the image side, per axis.
        brightness: added offset drawn in [-brightness, brightness].
        contrast: factor around the image mean drawn in [1-contrast, 1+contrast].
        gamma: exponent drawn log-uniformly in [1/(1+gamma), 1+gamma].
        noise: Gaussian noise with a standard deviation drawn in [0, noise].
        fill: value of pixels moved in from outside the image (the letterbox pad value).
    """

    hflip: float = 0.5
    degrees: float = 7.0
    scale: float = 0.1
    translate: float = 0.05
    brightness: float = 0.05
    contrast: float = 0.1
    gamma: float = 0.15
    noise: float = 0.01
    fill: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.hflip <= 1.0:
            raise ConfigError(f"hflip={self.hflip}: a probability in [0, 1]", "augment.hflip")
        if not 0.0 <= self.degrees <= MAX_DEGREES:
            raise ConfigError(f"degrees={self.degrees}: use 0..{MAX_DEGREES:g}; larger turns "
                              "stop looking like a positioned radiograph", "augment.degrees")
        for name in ("scale", "translate", "brightness", "contrast", "gamma", "noise"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)}: must be >= 0",
                                  f"augment.{name}")
        if self.contrast >= 1.0:
            raise ConfigError(f"contrast={self.contrast}: must be < 1", "augment.contrast")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None, *, fill: float = 0.0) -> AugmentConfig:
        """Build from a recipe's ``augment`` mapping; refuses vertical flips and unknown keys."""
        raw = dict(raw or {})
        bad = [k for k in raw if k in _FORBIDDEN]
        if bad:
            raise ConfigError(f"{bad}: vertical flips are not offered, a spine radiograph has a "
                              "head end", "train.augment")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"unknown keys {unknown}; use {sorted(known)}", "train.augment")
        return cls(**{"fill": fill, **{k: float(v) for k, v in raw.items()}})

    @classmethod
    def off(cls) -> AugmentConfig:
        """No augmentation at all."""
        return cls(hflip=0.0, degrees=0.0, scale=0.0, translate=0.0, brightness=0.0,
                   contrast=0.0, gamma=0.0, noise=0.0)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)


def affine_matrices(n: int, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """(n, 2, 3) sampling matrices for ``F.affine_grid`` (output -> input, normalised coords).

    ``theta[:, :, :2] = R(angle) @ diag(flip, 1) / zoom``; ``flip`` is -1 (mirror) or 1, so the
    y axis is never reversed: ``theta[:, 1, 1] = cos(angle) / zoom > 0`` for every draw.
    """
    angle = _uniform(n, -cfg.degrees, cfg.degrees, gen) * (math.pi / 180.0)
    log_s = math.log1p(cfg.scale)
    zoom = torch.exp(_uniform(n, -log_s, log_s, gen))
    shift = _uniform(2 * n, -2 * cfg.translate, 2 * cfg.translate, gen).reshape(n, 2)
    flip = torch.where(torch.rand(n, generator=gen, dtype=torch.float64) < cfg.hflip, -1.0, 1.0)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 1] = cos * flip, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin * flip, cos
    theta[:, :, 2] = shift
    return theta


def apply_affine(x: torch.Tensor, theta: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """Resample a batch (B, C, S, S) with matrices (B, 2, 3); outside pixels get ``fill``."""
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if fill:
        inside = F.grid_sample(torch.ones_like(x[:, :1]), grid, mode="bilinear",
                               padding_mode="zeros", align_corners=False)
        out = out + fill * (1.0 - inside)
    return out


def adjust_intensity(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Gamma, then contrast around each image's mean, then brightness; clipped to [0, 1]."""
    n = x.shape[0]
    shape = (n,) + (1,) * (x.ndim - 1)
    log_g = math.log1p(cfg.gamma)
    gamma = torch.exp(_uniform(n, -log_g, log_g, gen)).to(x).reshape(shape)
    contrast = _uniform(n, 1 - cfg.contrast, 1 + cfg.contrast, gen).to(x).reshape(shape)
    bright = _uniform(n, -cfg.brightness, cfg.brightness, gen).to(x).reshape(shape)
    y = x.clamp(0.0, 1.0).pow(gamma)
    mean = y.mean(dim=tuple(range(1, x.ndim)), keepdim=True)
    return ((y - mean) * contrast + mean + bright).clamp(0.0, 1.0)


def add_noise(x: torch.Tensor, sigma_max: float, gen: torch.Generator) -> torch.Tensor:
    """Gaussian noise with a per-image standard deviation in [0, sigma_max]; clipped to [0, 1]."""
    n = x.shape[0]
    sigma = _uniform(n, 0.0, sigma_max, gen).to(x).reshape((n,) + (1,) * (x.ndim - 1))
    noise = torch.randn(x.shape, generator=gen, dtype=torch.float32).to(x)
    return (x + sigma * noise).clamp(0.0, 1.0)


def augment_batch(x: torch.Tensor, gen: torch.Generator, cfg: AugmentConfig) -> torch.Tensor:
    """All augmentations of ``cfg`` on a batch (B, 1, S, S) in [0, 1]; returns a new tensor.

    Draws happen in a fixed order (geometry, intensity, noise) and always (even for a zero
    strength), so one setting never shifts the random stream of the others.
    """
    out = apply_affine(x, affine_matrices(x.shape[0], cfg, gen), cfg.fill)
    out = adjust_intensity(out, cfg, gen)
    return add_noise(out, cfg.noise, gen)
