"""One step from sources to results: read -> refuse -> analyse -> render, for every caller.

The CLI, the web service, the benchmarks, the DICOM node and the batch engine all call
:meth:`Processor.process` (or :meth:`Processor.stream` for many files): sources (paths, or bytes
with a name) are read with the analyzer's decode policy (JPEG 2000 decoded down to the size the
models use, unless ``full_resolution``), unreadable ones become refused analyses that say why,
the readable ones go through :meth:`~spinexr.analyze.Analyzer.analyze_batch` together, and every
rendition (result.json, overlay, HTML, DICOM SR / GSPS / SC) is made in memory. Where the bytes
go (a folder, a database, a PACS) is the caller's business.

The same file gives the same figures through every caller because they share this step.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from spinexr.analyze import Analyzer, refused_analysis
from spinexr.errors import ConfigError, SpinexrError
from spinexr.io.prefetch import ReadResult, read_batches, read_one
from spinexr.report.card import clinical_card
from spinexr.report.json_out import analysis_to_dict, json_bytes
from spinexr.report.outputs import render_outputs
from spinexr.types import Analysis, Radiograph


@dataclass(frozen=True)
class Source:
    """An input: a file ``path``, or ``data`` bytes called ``name`` in messages."""

    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)
    name: str | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.data is None):
            raise ConfigError("a Source is a path or bytes, exactly one of them", "source")

    @property
    def label(self) -> str:
        return self.name or (str(self.path) if self.path is not None else "upload")

    @classmethod
    def of(cls, item: Source | str | os.PathLike) -> Source:
        return item if isinstance(item, Source) else cls(path=Path(item))


@dataclass(frozen=True)
class Processed:
    """The result of one source: its analysis, the renditions (file name -> bytes, result.json
    first; empty when rendering was not asked for), the image read (``None`` when refused at
    reading) and, for a refused read, the reader's ``(error code, reason)``."""

    source: Source
    analysis: Analysis
    files: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    image: Radiograph | None = field(default=None, repr=False)
    read_error: tuple[str, str] | None = None

    @property
    def outcome(self) -> str:
        """``accepted``, ``uncertain`` or ``refused``."""
        return self.analysis.gate.outcome


@dataclass(frozen=True)
class ProcessOptions:
    """Per-call settings.

    Attributes:
        explain: explanation methods (``gradcam``, ``ig``, ``saliency``, ``lime``); ``None``:
            the analyzer's configured ones.
        region: the spine region (``cervical``, ``thoracic``, ``lumbar``, ``whole``) of inputs
            whose header names none (PNG/JPEG, DICOM without Body Part Examined).
        heatmap: the explanation blended into overlay.png (``None``: none).
        render: make the renditions (``False``: analyses only, e.g. for evaluation).
        uid_root: organisation UID root for the DICOM outputs (default: ``2.25.`` UIDs).
        identifiers: patient and study identifiers in report.html (``False``: research
            exports; result.json never holds them).
    """

    explain: tuple[str, ...] | None = None
    region: str | None = None
    heatmap: str | None = None
    render: bool = True
    uid_root: str | None = None
    identifiers: bool = True


class Processor:
    """The one file-to-result step around an :class:`~spinexr.analyze.Analyzer`.

    Args:
        analyzer: built once (models loaded once); shared by every call.
        full_resolution: decode JPEG 2000 at full size instead of the models' resolution.
        max_pixels: the reader's decompression-bomb limit (default the reader's).
        card: the model card shown in report.html (default: the clinical summary of the
            analyzer's pack, :func:`~spinexr.report.card.clinical_card`).
    """

    def __init__(self, analyzer: Analyzer, *, full_resolution: bool = False,
                 max_pixels: int | None = None, card: Mapping[str, Any] | None = None) -> None:
        self.analyzer = analyzer
        self.full_resolution = full_resolution
        self.max_pixels = max_pixels
        self.card = dict(card if card is not None else clinical_card(analyzer.pack.manifest))

    def read_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``read_radiograph`` for this analyzer (decode policy)."""
        kwargs: dict[str, Any] = {"policy": self.analyzer.read_policy}
        if not self.full_resolution:
            kwargs["min_side"] = self.analyzer.decode_side()
        if self.max_pixels is not None:
            kwargs["max_pixels"] = self.max_pixels
        return kwargs

    def read(self, source: Source | str | os.PathLike) -> ReadResult:
        """Read one source (never raises a :class:`SpinexrError`: the result carries it)."""
        source = Source.of(source)
        if source.path is not None:
            return read_one(source.path, self.read_kwargs())
        return read_one(source.data, {**self.read_kwargs(), "name": source.label},
                        label=source.label)

    def process(self, sources: Sequence[Source | str | os.PathLike],
                options: ProcessOptions = ProcessOptions()) -> list[Processed]:
        """Read, analyse (as one batch) and render ``sources``; one result each, in order."""
        sources = [Source.of(s) for s in sources]
        return self.process_reads(sources, [self.read(s) for s in sources], options)

    def stream(self, paths: Sequence[str | os.PathLike], *, batch: int = 4, workers: int = 2,
               options: ProcessOptions = ProcessOptions()) -> Iterator[list[Processed]]:
        """:meth:`process` over many files in batches of ``batch``, reading the next batch in
        ``workers`` processes meanwhile (see :func:`~spinexr.io.prefetch.read_batches`)."""
        for reads in read_batches(paths, batch, kwargs=self.read_kwargs(), workers=workers):
            yield self.process_reads([Source(path=r.path) for r in reads], reads, options)

    def process_reads(self, sources: Sequence[Source], reads: Sequence[ReadResult],
                      options: ProcessOptions = ProcessOptions()) -> list[Processed]:
        """Analyse and render what was read (``reads[i]`` is the read of ``sources[i]``)."""
        ok = [i for i, r in enumerate(reads) if r.image is not None]
        analyses = self.analyzer.analyze_batch([reads[i].image for i in ok],
                                               explain=options.explain,
                                               region=options.region) if ok else []
        by_index = dict(zip(ok, analyses))
        out = []
        for i, (source, r) in enumerate(zip(sources, reads)):
            if r.image is None:
                a = refused_analysis(source.label, r.error or "unreadable",
                                     self.analyzer.info)
                out.append(Processed(source, a, self._refused_files(a, source) if
                                     options.render else {},
                                     read_error=(r.error_code or SpinexrError.code,
                                                 r.error or "unreadable")))
                continue
            a = by_index[i]
            uids = {"uid_root": options.uid_root} if options.uid_root else {}
            files = render_outputs(a, r.image, heatmap=options.heatmap, card=self.card,
                                   identifiers=options.identifiers,
                                   **uids) if options.render else {}
            out.append(Processed(source, a, files, r.image))
        return out

    @staticmethod
    def _refused_files(a: Analysis, source: Source) -> dict[str, bytes]:
        path = str(source.path) if source.path is not None else None
        return {"result.json": json_bytes(analysis_to_dict(a, source_path=path))}


__all__ = ["ProcessOptions", "Processed", "Processor", "Source"]
