"""What a phantom generator is asked to make: validated, frozen configurations.

Every field has a default that gives a realistic random mix; tests and dataset builders pin the
fields they care about (view, region, size, forced lesions, forced grades).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from spinexr.errors import ConfigError
from spinexr.labels import (
    CERVICAL_CLASSES,
    DEGENERATION_GRADES,
    LESION_CLASSES,
    LESION_FREQUENCY,
    STENOSIS_GRADES,
    STENOSIS_REGIONS,
)

VIEWS: tuple[str, ...] = ("lateral", "ap")
REGIONS: tuple[str, ...] = ("cervical", "lumbar")
#: Smallest image side accepted: below this the anatomy is a few pixels wide.
MIN_SIDE = 128
#: Largest image side accepted (memory guard, 4096^2 float32 layers are 64 MiB each).
MAX_SIDE = 4096


def _frozen_frequency() -> Mapping[str, float]:
    return MappingProxyType(dict(LESION_FREQUENCY))


def _check_rate(name: str, value: float) -> None:
    if not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"{name} is {value!r}; give a probability in [0, 1]", name)


def _check_size(size: tuple[int, int] | None, name: str = "size") -> None:
    if size is None:
        return
    if len(size) != 2 or any(int(s) != s or not MIN_SIDE <= s <= MAX_SIDE for s in size):
        raise ConfigError(f"{name} is {size!r}; give (height, width) in pixels, each "
                          f"{MIN_SIDE}..{MAX_SIDE}", name)


@dataclass(frozen=True, eq=False)
class XrayConfig:
    """How to draw one synthetic spine radiograph.

    Attributes:
        view: ``"lateral"``, ``"ap"`` or ``None`` (random, 50/50).
        region: ``"cervical"``, ``"lumbar"`` or ``None`` (random: 35 % cervical).
        size: (height, width) in pixels, or ``None`` for a realistic random size (about
            1200-3000 px per side, pixel spacing 0.1-0.2 mm). A given size keeps the anatomy's
            size in mm: the pixel spacing becomes field of view / size.
        abnormal_rate: probability that the image has at least one lesion.
        lesion_frequency: relative frequency of each lesion class (renormalised over the
            classes that can be drawn in the chosen view and region).
        lesions_per_image: mean number of lesions in an abnormal image (at least 1).
        monochrome1_rate: probability of MONOCHROME1 (stored values inverted).
        cervical_injury_rate: in abnormal cervical images, probability of an injury
            (half fracture, half dislocation) on top of the sampled lesions.
        force_lesions: draw exactly these lesion classes (one lesion each, when the view and
            region allow it); overrides ``abnormal_rate`` and ``lesion_frequency``.
        degeneration: force this degeneration grade (0-4) by choosing the osteophyte and disc
            space narrowing burden; ``None`` lets it follow the sampled lesions.
        cervical: force this index into ``CERVICAL_CLASSES`` (cervical region only).
        noise: scale of quantum noise (1 realistic, 0 noiseless, for tests of geometry).
        markers: burn in the side marker ("L"/"R") and, sometimes, a ruler.
    """

    view: str | None = None
    region: str | None = None
    size: tuple[int, int] | None = None
    abnormal_rate: float = 0.5
    lesion_frequency: Mapping[str, float] = field(default_factory=_frozen_frequency)
    lesions_per_image: float = 1.6
    monochrome1_rate: float = 0.3
    cervical_injury_rate: float = 0.25
    force_lesions: tuple[str, ...] | None = None
    degeneration: int | None = None
    cervical: int | None = None
    noise: float = 1.0
    markers: bool = True

    def __post_init__(self) -> None:
        if self.view not in (None, *VIEWS):
            raise ConfigError(f"view is {self.view!r}; use one of {VIEWS} or None", "view")
        if self.region not in (None, *REGIONS):
            raise ConfigError(f"region is {self.region!r}; use one of {REGIONS} or None",
                              "region")
        _check_size(self.size)
        for name in ("abnormal_rate", "monochrome1_rate", "cervical_injury_rate"):
            _check_rate(name, getattr(self, name))
        self._check_lesions()
        if self.degeneration is not None and self.degeneration not in range(
                len(DEGENERATION_GRADES)):
            raise ConfigError(f"degeneration is {self.degeneration!r}; use 0..4 or None",
                              "degeneration")
        if self.cervical is not None:
            if self.cervical not in range(len(CERVICAL_CLASSES)):
                raise ConfigError(f"cervical is {self.cervical!r}; use 0..2 or None", "cervical")
            if self.region == "lumbar":
                raise ConfigError("cervical is set but region is 'lumbar'; use region "
                                  "'cervical' or None", "cervical")
        if not self.noise >= 0.0:
            raise ConfigError(f"noise is {self.noise!r}; give a scale >= 0", "noise")
        if not self.lesions_per_image >= 1.0:
            raise ConfigError(f"lesions_per_image is {self.lesions_per_image!r}; give >= 1",
                              "lesions_per_image")

    def _check_lesions(self) -> None:
        unknown = [k for k in self.lesion_frequency if k not in LESION_CLASSES]
        if unknown or any(v < 0 for v in self.lesion_frequency.values()):
            raise ConfigError(f"lesion_frequency has unknown classes {unknown} or negative "
                              f"weights; keys must be among {LESION_CLASSES}",
                              "lesion_frequency")
        if sum(self.lesion_frequency.values()) <= 0:
            raise ConfigError("lesion_frequency weights sum to 0", "lesion_frequency")
        for name in self.force_lesions or ():
            if name not in LESION_CLASSES:
                raise ConfigError(f"force_lesions has {name!r}; use names from "
                                  f"{LESION_CLASSES}", "force_lesions")


@dataclass(frozen=True, eq=False)
class MriConfig:
    """How to draw one synthetic axial T2-weighted lumbar MRI slice.

    Attributes:
        size: image side in pixels (square), or ``None`` for a random 320-512.
        abnormal_rate: probability that at least one region is stenotic.
        grades: force grades per region (names from ``STENOSIS_REGIONS``, values 0-3);
            regions not named are sampled.
        level: the disc level of the slice, e.g. ``"L4-L5"``; ``None`` for random.
        noise: scale of the Rician noise (1 realistic, 0 noiseless).
    """

    size: int | None = None
    abnormal_rate: float = 0.5
    grades: Mapping[str, int] | None = None
    level: str | None = None
    noise: float = 1.0

    def __post_init__(self) -> None:
        if self.size is not None and not (isinstance(self.size, int)
                                          and MIN_SIDE <= self.size <= MAX_SIDE):
            raise ConfigError(f"size is {self.size!r}; give one side in pixels, "
                              f"{MIN_SIDE}..{MAX_SIDE}", "size")
        _check_rate("abnormal_rate", self.abnormal_rate)
        for region, grade in (self.grades or {}).items():
            if region not in STENOSIS_REGIONS or grade not in range(len(STENOSIS_GRADES)):
                raise ConfigError(f"grades has {region!r}: {grade!r}; regions are "
                                  f"{STENOSIS_REGIONS}, grades 0..3", "grades")
        if self.level not in (None, "L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"):
            raise ConfigError(f"level is {self.level!r}; use a lumbar disc level such as "
                              "'L4-L5' or None", "level")
        if not self.noise >= 0.0:
            raise ConfigError(f"noise is {self.noise!r}; give a scale >= 0", "noise")
