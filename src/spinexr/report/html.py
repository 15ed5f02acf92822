"""One self-contained HTML report: images as data: URIs, inline CSS, no scripts, no external
resources. Every text is escaped.

Built from the ``Analysis``; patient and study identifiers appear only when the caller passes
an :class:`~spinexr.report.identity.Identity` (read from the source header at render time,
never from result.json), so a research export simply passes none. The image viewer is HTML and
CSS only (:mod:`spinexr.report.html_viewer`): report.html runs under a CSP without scripts.
"""
from __future__ import annotations

import base64
from html import escape
from typing import Any, Mapping

from spinexr.report import notices
from spinexr.report._dicom import software_version
from spinexr.report.card import CARD_FIELDS
from spinexr.report.html_viewer import VIEWER_CSS, png_size, viewer_html
from spinexr.report.identity import Identity
from spinexr.report.json_out import disclaimer
from spinexr.report.overlay import BANNER_TEXT, class_color, grade_color, region_grades
from spinexr.report.wording import gate_check_title, gate_check_value, operating_point_title
from spinexr.types import Analysis

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem;
color:#1b1b1b;background:#fafafa;max-width:1200px}
h1{font-size:1.4rem;margin:0 0 .3rem}h2{font-size:1.1rem;margin:1.6rem 0 .5rem;
border-bottom:1px solid #ccc}h3{font-size:1rem;margin:.8rem 0 .2rem}
.banner{background:#000;color:#fff;font-weight:700;padding:.6rem 1rem;margin:.8rem 0;
letter-spacing:.03em}
.identity{border:2px solid #1f2a37;background:#fff;padding:.4rem .8rem;margin:.6rem 0}
.identity dl{display:flex;flex-wrap:wrap;gap:.2rem 1.4rem;margin:0}.identity dt{font-size:.75rem;
color:#555}.identity dd{margin:0;font-weight:600}.identity div{min-width:6rem}
.uncertain{background:#ffbf00;color:#000;font-weight:700;padding:.6rem 1rem;margin:.8rem 0;
border:3px solid #000}
.level-note{font-size:.9rem;margin:.4rem 0}.level-note.unconfirmed{font-weight:600;
color:#8a4b00}
.verdict{font-size:1.1rem;font-weight:600;padding:.4rem .8rem;display:inline-block}
.abnormal{background:#d55e00;color:#fff}.normal{background:#009e73;color:#fff}
.refused{background:#555;color:#fff}
.images{display:flex;flex-wrap:wrap;gap:1rem}.images figure{margin:0;flex:1 1 320px;
max-width:520px}
.images img{width:100%;height:auto;background:#000;image-rendering:auto}
figcaption{font-size:.85rem;color:#555}
.colorbar{display:flex;align-items:center;gap:.5rem;font-size:.85rem;margin:.4rem 0}
.colorbar span.bar{display:inline-block;width:14rem;height:.8rem;border:1px solid #333;
background:linear-gradient(90deg,#440154,#482475,#414487,#355f8d,#2a788e,#21918c,#22a884,
#44bf70,#7ad151,#bddf26,#fde725)}
table{border-collapse:collapse;font-size:.9rem}th,td{border:1px solid #ccc;
padding:.25rem .5rem;text-align:left}th{background:#eee}td.num{text-align:right;
font-variant-numeric:tabular-nums}
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.35em;border:1px solid #333}
details{margin:.5rem 0}summary{cursor:pointer;color:#0b5cad}
.muted{color:#666}.disclaimer{margin-top:2rem;padding:.8rem;border:2px solid #d55e00;
background:#fff}
"""


#: The report's heading per ``Analysis.modality``.
_TITLES = {"radiograph": "spine radiograph analysis", "mri": "lumbar MR stenosis grading"}


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}">'


def _fmt(x: float | None, digits: int = 3) -> str:
    return "&ndash;" if x is None else f"{x:.{digits}f}"


def render_html(a: Analysis, image_png_bytes: bytes, overlay_png_bytes: bytes,
                heatmaps: Mapping[str, bytes], card: Mapping[str, Any], *,
                identity: Identity | None = None) -> str:
    """The report page of one analysis.

    Args:
        a: the analysis.
        image_png_bytes: the radiograph as PNG (shown in the viewer, boxes drawn over it).
        overlay_png_bytes: the overlay (:func:`~spinexr.report.render_overlay`) as PNG.
        heatmaps: caption -> PNG of each explanation map, shown in that order.
        card: the model card: :func:`~spinexr.report.card.clinical_card` of the pack (text
            fields, ``operating_points`` and ``performance``), or the pack's raw ``card``
            (its text fields are shown; other keys such as command lines never are).
        identity: patient and study identifiers to show at the top; ``None`` shows none.

    Returns:
        A complete HTML5 document as a string.
    """
    viewer, viewer_css = viewer_html(a, _img(image_png_bytes, "radiograph"),
                                     png_size(image_png_bytes))
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(f'spinexr report {a.image_id}')}</title>",
        f"<style>{_CSS}{VIEWER_CSS}{viewer_css}</style>", "</head>", "<body>",
        "<header>", f"<h1>spinexr: {_TITLES.get(a.modality, _TITLES['radiograph'])}</h1>",
        f'<p class="muted">Image {escape(a.image_id)} &middot; model pack '
        f"<strong>{escape(a.pack.name)}</strong> {escape(a.pack.version)} &middot; spinexr "
        f"{escape(software_version())}</p>", _identity(identity),
    ]
    if a.pack.synthetic:
        parts.append(f'<div class="banner">{escape(BANNER_TEXT)}</div>')
    warning = notices.uncertain_warning(a)
    if warning:
        parts.append(f'<div class="uncertain" role="alert">{escape(warning)}</div>')
    mri = a.modality == "mri"
    points = dict(card.get("operating_points") or {})
    results = [_regions(a)] if mri else [_findings(a), _triage(a, points), _grades(a)]
    parts += ["</header>", "<main>", _mri_verdict(a) if mri else _verdict(a),
              f"<section><h2>Image</h2>{viewer}{_overlay(overlay_png_bytes)}</section>",
              _heatmaps(heatmaps), *results, _gate(a), _card(card), "</main>",
              f'<footer class="disclaimer"><strong>Disclaimer.</strong> '
              f"{escape(disclaimer(a.pack.synthetic))}</footer>", "</body>", "</html>"]
    return "\n".join(p for p in parts if p) + "\n"


def _identity(identity: Identity | None) -> str:
    """The patient and study at the top of the report (wrong-patient check)."""
    if not identity:
        return ""
    items = "".join(f"<div><dt>{escape(t)}</dt><dd>{escape(v)}</dd></div>"
                    for t, v in identity.rows())
    return (f'<section class="identity" aria-label="Patient and study"><dl>{items}</dl>'
            "</section>")


def _verdict(a: Analysis) -> str:
    if not a.gate.accepted:
        return (f'<p class="verdict refused">Not analysed: {escape(a.gate.reason)}</p>')
    if a.triage is None:
        return '<p class="verdict refused">No triage result</p>'
    t = a.triage
    cls, word = ("abnormal", "Abnormal") if t.abnormal else ("normal", "Normal")
    return (f'<p class="verdict {cls}">{word}: P(abnormal) = {t.probability:.3f} '
            f"at the {escape(operating_point_title(t.operating_point))} operating point "
            f"(threshold {t.threshold:.3f}); {len(a.findings)} finding(s)</p>")


def _overlay(overlay_png: bytes) -> str:
    return ("<details><summary>The same findings burnt into one picture (overlay.png, as in "
            f'the Secondary Capture)</summary><div class="images"><figure>'
            f"{_img(overlay_png, 'findings overlay')}<figcaption>Findings overlay"
            "</figcaption></figure></div></details>")


def _heatmaps(heatmaps: Mapping[str, bytes]) -> str:
    if not heatmaps:
        return ""
    figures = "".join(f"<figure>{_img(png, caption)}<figcaption>{escape(caption)}</figcaption>"
                      "</figure>" for caption, png in heatmaps.items())
    return ('<section><h2>Explanations</h2><p class="colorbar">Where the model looked: '
            '<span>low</span><span class="bar" role="img" aria-label="colour scale from dark '
            'purple (low) to yellow (high)"></span><span>high</span></p>'
            f'<div class="images">{figures}</div></section>')


def _findings(a: Analysis) -> str:
    if not a.findings:
        return '<section><h2>Findings</h2><p>No findings.</p></section>'
    rows = []
    for i in sorted(range(len(a.findings)), key=lambda i: -a.findings[i].score):
        f = a.findings[i]
        r, g, b = class_color(f.label)
        size = ("&ndash;" if f.size_mm is None
                else f"{f.size_mm[0]:.1f} &times; {f.size_mm[1]:.1f}")
        box = ", ".join(f"{v:.1f}" for v in f.box.as_list())
        level = notices.level_label(f.level, a) or ""
        rows.append(f'<tr><td><span class="swatch" style="background:rgb({r},{g},{b})"></span>'
                    f'<a href="#rv-f{i}">{escape(f.label)}</a></td><td>{escape(level)}</td>'
                    f'<td class="num">{f.score:.3f}</td><td class="num">{size}</td>'
                    f'<td class="num">[{box}]</td></tr>')
    return ("<section><h2>Findings</h2><table><thead><tr><th>Finding</th><th>Level</th>"
            "<th>Score</th><th>Size (mm, w &times; h)</th><th>Box [x1, y1, x2, y2] (px)</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>{_level_note(a)}</section>")


def _level_note(a: Analysis) -> str:
    """How the level names were found, under the findings: a "?" legend when counted,
    unconfirmed."""
    if a.levels is None or not any(f.level for f in a.findings):
        return ""
    legend = notices.level_legend(a)
    if legend:
        return f'<p class="level-note unconfirmed">{escape(legend)}</p>'
    note = a.levels.note
    return f'<p class="level-note muted">{escape(note[:1].upper() + note[1:])}.</p>'


def _triage(a: Analysis, thresholds: Mapping[str, float]) -> str:
    """Per-model probabilities, the decision, and every operating point with its threshold
    (``thresholds`` from the pack; the one used is always known from the result)."""
    t = a.triage
    if t is None:
        return ""
    rows = "".join(f'<tr><td>{escape(str(m))}</td><td class="num">{_fmt(p)}</td></tr>'
                   for m, p in t.per_model.items())
    rows += (f'<tr><th>Fused (ensemble)</th><th class="num">{_fmt(t.probability)}</th></tr>')
    known = {**thresholds, t.operating_point: t.threshold}
    names = list(dict.fromkeys([t.operating_point, *t.decisions]))
    points = "".join(
        f"<tr><td>{escape(operating_point_title(op))}"
        f"{' (used)' if op == t.operating_point else ''}</td>"
        f'<td class="num">{_fmt(known.get(op))}</td>'
        f"<td>{_decision(t.decisions.get(op, t.abnormal if op == t.operating_point else None))}"
        "</td></tr>" for op in names)
    return ("<section><h2>Triage</h2><table><thead><tr><th>Model</th><th>P(abnormal)</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>"
            f"<p>Decision at the <strong>{escape(operating_point_title(t.operating_point))}"
            f"</strong> operating point (threshold {t.threshold:.3f}): "
            f"<strong>{'abnormal' if t.abnormal else 'normal'}</strong></p>"
            "<table><thead><tr><th>Operating point</th><th>Threshold</th><th>Decision</th></tr>"
            f"</thead><tbody>{points}</tbody></table>"
            '<p class="muted">An image is called abnormal when P(abnormal) reaches the '
            "threshold. Balanced: the best sum of sensitivity and specificity on the pack's "
            "validation images; high sensitivity: misses fewer abnormal images at the cost of "
            "more false alarms.</p></section>")


def _decision(abnormal: bool | None) -> str:
    return "&ndash;" if abnormal is None else ("abnormal" if abnormal else "normal")


def _grades(a: Analysis) -> str:
    if not a.grades:
        return ""
    rows = "".join(
        f"<tr><td>{escape(g.task)}</td><td>{escape(g.label)}</td>"
        f"<td>{escape(notices.grade_location(g, a))}</td><td>"
        + escape(", ".join(f"{k} {v:.2f}" for k, v in g.probabilities.items())) + "</td></tr>"
        for g in a.grades)
    return ("<section><h2>Grades</h2><table><thead><tr><th>Task</th><th>Grade</th>"
            "<th>Where</th><th>Probabilities</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></section>")


def _mri_verdict(a: Analysis) -> str:
    """The MR slice's verdict: the worst graded region, or why nothing was graded."""
    graded = region_grades(a)
    if not a.gate.accepted:
        return _verdict(a)
    if not graded:
        return '<p class="verdict refused">No stenosis region found</p>'
    worst = max(graded, key=lambda g: g.index)
    cls = "normal" if worst.index == 0 else "abnormal"
    return (f'<p class="verdict {cls}">Stenosis grading: {len(graded)} region(s); worst '
            f"{escape(worst.label)} ({escape(worst.box.label)})</p>")


def _regions(a: Analysis) -> str:
    """The table of graded regions (MRI): region, grade, probabilities, detector score, box."""
    graded = region_grades(a)
    if not graded:
        return '<section><h2>Regions</h2><p>No stenosis region found.</p></section>'
    rows = []
    for g in graded:
        r, gr, b = grade_color(g.label)
        probs = ", ".join(f"{k} {v:.2f}" for k, v in g.probabilities.items())
        box = ", ".join(f"{v:.1f}" for v in g.box.as_list())
        rows.append(f"<tr><td>{escape(g.box.label)}</td><td><span class=\"swatch\" "
                    f'style="background:rgb({r},{gr},{b})"></span>{escape(g.label)}</td>'
                    f"<td>{escape(probs)}</td><td class=\"num\">{_fmt(g.box.score)}</td>"
                    f'<td class="num">[{box}]</td></tr>')
    return ("<section><h2>Regions</h2><table><thead><tr><th>Region</th><th>Grade</th>"
            "<th>Probabilities</th><th>Detector score</th><th>Box [x1, y1, x2, y2] (px)</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table></section>")


def _gate(a: Analysis) -> str:
    """The input check in words; its technical measurements behind a details toggle."""
    p_spine = ("" if a.gate.p_spine is None
               else f" (P(spine radiograph) = {_fmt(a.gate.p_spine)})")
    checks = "".join(f"<tr><td>{escape(gate_check_title(str(k)))}</td>"
                     f"<td>{escape(gate_check_value(str(k), v))}</td></tr>"
                     for k, v in a.gate.checks.items())
    table = ("<details><summary>Technical checks of the input</summary><table><thead><tr>"
             f"<th>Check</th><th>Value</th></tr></thead><tbody>{checks}</tbody></table>"
             "</details>" if checks else "")
    return (f"<section><h2>Input check</h2><p>Input <strong>{escape(a.gate.outcome)}"
            f"</strong>: {escape(a.gate.reason)}{p_spine}</p>{table}</section>")


def _card(card: Mapping[str, Any]) -> str:
    """The model card's clinical summary: intended use, training data, measured performance,
    limitations, licence. Nothing else of the card (command lines stay in the pack README)."""
    texts = {key: card.get(key) for key, _ in CARD_FIELDS}
    body = [f"<h3>{escape(title)}</h3><p>{escape(str(texts[key]))}</p>"
            for key, title in CARD_FIELDS[:2] if texts[key]]
    perf = [p for p in card.get("performance") or () if isinstance(p, Mapping)]
    if perf:
        items = "".join(f"<li><strong>{escape(str(p.get('title', '')))}</strong>: "
                        f"{escape(str(p.get('text', '')))}</li>" for p in perf)
        body.append(f"<h3>Measured performance (the pack's test images)</h3><ul>{items}</ul>")
    body += [f"<h3>{escape(title)}</h3><p>{escape(str(texts[key]))}</p>"
             for key, title in CARD_FIELDS[2:] if texts[key]]
    return ("<section><h2>Model card</h2>"
            + ("".join(body) or '<p class="muted">No model card was provided.</p>')
            + "</section>")
