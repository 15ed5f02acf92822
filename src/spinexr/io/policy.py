"""Which DICOM modalities a reading path accepts."""
from __future__ import annotations

from dataclasses import dataclass

from spinexr.errors import ModalityNotAllowedError

#: Modality values that mean "not stated": VinDr-SpineXR has no (0008,0060) at all, and
#: secondary captures say OT. The later input gate decides on the image content.
UNKNOWN_MODALITIES: frozenset[str] = frozenset({"", "OT"})


@dataclass(frozen=True)
class ModalityPolicy:
    """The (0008,0060) Modality values a reading path accepts.

    Attributes:
        name: what the path is called in messages, e.g. ``"radiograph"``.
        allowed: accepted modality codes (upper case), e.g. ``frozenset({"CR", "DX"})``.
        allow_unknown: accept files whose Modality is missing, empty or ``OT``.
        description: what the accepted modalities are, for messages.
    """

    name: str
    allowed: frozenset[str]
    allow_unknown: bool = True
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed", frozenset(m.strip().upper() for m in self.allowed))

    def accepts(self, modality: str | None) -> bool:
        """True when ``modality`` (as read, may be ``None``) passes this policy."""
        code = (modality or "").strip().upper()
        if code in UNKNOWN_MODALITIES:
            return self.allow_unknown or code in self.allowed
        return code in self.allowed

    def check(self, modality: str | None, source: str | None = None) -> None:
        """Raise :class:`ModalityNotAllowedError` unless ``modality`` passes."""
        if self.accepts(modality):
            return
        accepted = ", ".join(sorted(self.allowed)) or "no stated modality"
        what = self.description or f"the {self.name} path"
        shown = (modality or "").strip() or "missing"
        raise ModalityNotAllowedError(
            f"(0008,0060) Modality {shown!r} is not {what}; the {self.name} path accepts "
            f"{accepted}" + (" (or no stated modality)" if self.allow_unknown else "")
            + "; use the reader for that modality or check the file", source)


#: Projection radiography: CR, DX, RG and the non-standard DR seen in the wild, plus unknown.
RADIOGRAPH_POLICY = ModalityPolicy(
    name="radiograph", allowed=frozenset({"CR", "DX", "RG", "DR"}), allow_unknown=True,
    description="projection radiography")

#: Magnetic resonance, plus unknown.
MRI_POLICY = ModalityPolicy(
    name="mri", allowed=frozenset({"MR"}), allow_unknown=True, description="magnetic resonance")

#: Both paths of a pack with the MRI models: projection radiographs and MR slices, plus unknown
#: (the analyzer then routes each image by its Modality).
RADIOGRAPH_OR_MRI_POLICY = ModalityPolicy(
    name="radiograph or MRI", allowed=frozenset({"CR", "DX", "RG", "DR", "MR"}),
    allow_unknown=True, description="projection radiography or magnetic resonance")
