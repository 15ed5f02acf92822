"""The model card's clinical summary: intended use, training data, limitations, licence, the
operating points with their thresholds, and measured performance in plain words.

What a clinician reads in report.html and the browser UI. Command lines and training recipes
stay in the pack's README and ``card.command``: they are never part of the summary.
Pure: a parsed pack manifest in, a JSON-ready dict out.
"""
from __future__ import annotations

from typing import Any, Mapping

from spinexr.report.wording import operating_point_title

#: The card's text fields that belong to the clinical summary, with their titles.
CARD_FIELDS = (("intended_use", "Intended use"), ("training_data", "Training data"),
               ("limitations", "Limitations"), ("licence", "Licence and attribution"))
#: Metric groups (``"<part>/test"`` in pack.json) -> what the part does.
PART_TITLES = {"triage": "Normal / abnormal triage", "lesions": "Lesion detection",
               "vertebrae": "Vertebra detection", "degeneration": "Degeneration grade",
               "cervical": "Cervical injury grade", "stenosis_grades": "MR stenosis grade",
               "stenosis_regions": "MR stenosis regions", "gate": "Spine radiograph check"}


def clinical_card(manifest: Any) -> dict[str, Any]:
    """The clinical summary of a pack (a :class:`~spinexr.models.manifest.PackManifest`, or
    anything with ``card``, ``metrics`` and ``ensemble``; ``None`` gives an empty summary).

    Returns:
        ``{"intended_use", "training_data", "limitations", "licence"`` (text or ``None``),
        ``"operating_points": {name: threshold}``, ``"performance": [{"title", "text"}]}``.
    """
    card = dict(getattr(manifest, "card", None) or {})
    ensemble = getattr(manifest, "ensemble", None)
    points = {str(k): float(v) for k, v in
              (getattr(ensemble, "operating_points", None) or {}).items()}
    out: dict[str, Any] = {key: (str(card[key]) if card.get(key) else None)
                           for key, _ in CARD_FIELDS}
    out["operating_points"] = points
    out["performance"] = performance(getattr(manifest, "metrics", None) or {}, points)
    return out


def performance(metrics: Mapping[str, Any], points: Mapping[str, float]) -> list[dict]:
    """One ``{"title", "text"}`` per part measured on its test split (``"<part>/test"``),
    e.g. "AUROC 0.77 on 200 test images (95 abnormal); balanced (threshold 0.559):
    sensitivity 31%, specificity 89%"."""
    rows = []
    for key, values in metrics.items():
        part, _, split = str(key).rpartition("/")
        if split != "test" or not isinstance(values, Mapping):
            continue
        text = _describe(part, values, points)
        if text:
            rows.append({"title": PART_TITLES.get(part, part.replace("_", " ").capitalize()),
                         "text": text})
    return rows


def _describe(part: str, m: Mapping[str, Any], points: Mapping[str, float]) -> str | None:
    if "auroc" in m:
        return _triage(m, points)
    if "map50" in m:
        n = f" on {int(m['n_images'])} test images" if m.get("n_images") else ""
        return f"mean average precision at 50% overlap {_num(m['map50'])}{n}"
    if "accuracy" in m:
        n = f" on {int(m['n'])} test images" if m.get("n") else ""
        extra = (f", balanced accuracy {_pct(m['balanced_accuracy'])}"
                 if m.get("balanced_accuracy") is not None else "")
        return f"accuracy {_pct(m['accuracy'])}{extra}{n}"
    if "sensitivity" in m and "specificity" in m:
        return f"sensitivity {_pct(m['sensitivity'])}, specificity {_pct(m['specificity'])}"
    return None


def _triage(m: Mapping[str, Any], points: Mapping[str, float]) -> str:
    n = ""
    if m.get("n"):
        pos = f" ({int(m['n_positive'])} abnormal)" if m.get("n_positive") is not None else ""
        n = f" on {int(m['n'])} test images{pos}"
    parts = [f"AUROC {_num(m['auroc'])}{n}"]
    for name in sorted({*points, *(k.split(".")[0] for k in m if ".sensitivity" in k)}):
        sens, spec = m.get(f"{name}.sensitivity"), m.get(f"{name}.specificity")
        if sens is None or spec is None:
            continue
        threshold = points.get(name, m.get(f"{name}.threshold"))
        at = f" (threshold {_num(threshold, 3)})" if threshold is not None else ""
        parts.append(f"{operating_point_title(name)}{at}: sensitivity {_pct(sens)}, "
                     f"specificity {_pct(spec)}")
    return "; ".join(parts)


def _num(x: Any, digits: int = 2) -> str:
    return f"{float(x):.{digits}f}"


def _pct(x: Any) -> str:
    return f"{100 * float(x):.0f}%"


__all__ = ["CARD_FIELDS", "PART_TITLES", "clinical_card", "performance"]
