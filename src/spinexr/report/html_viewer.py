"""report.html's image viewer, without a line of script.

report.html is served with ``default-src 'none'; img-src data:; style-src 'unsafe-inline';
sandbox`` and opened from disk as a file: no script may run. The viewer is HTML and CSS only:

- zoom: radio buttons (Fit, 1:1 = one pixel of the embedded picture per screen pixel, 2x,
  4x) set the picture's width; pan: the viewport scrolls (wheel, scroll bars, touch);
- boxes: an inline SVG over the picture whose viewBox is the source image in pixels, so
  result.json's ``[x1, y1, x2, y2]`` are drawn as they are; lines keep 2 screen pixels at any
  zoom (``vector-effect: non-scaling-stroke``); labels sit on a background of the class colour;
- toggles: one checkbox per class, and for labels, vertebral levels and graded regions
  (``:checked ~`` selectors);
- a finding in the table links to its box (``#rv-f3``), which ``:target`` highlights.

Pure: an :class:`~spinexr.types.Analysis` and picture sizes in, markup and CSS out.
"""
from __future__ import annotations

import struct
from html import escape

from spinexr.report import notices
from spinexr.report.overlay import class_color, grade_tag_color
from spinexr.types import Analysis

#: Zoom choices: (id suffix, button text, width of the picture as CSS, ``None`` for fit).
_ZOOMS = (("fit", "Fit", None), ("z1", "1:1", 1), ("z2", "2\u00d7", 2), ("z4", "4\u00d7", 4))

VIEWER_CSS = """
.rv{margin:.4rem 0}.rv>input{position:absolute;opacity:0;width:1px;height:1px}
.rv-bar{display:flex;flex-wrap:wrap;gap:.3rem .5rem;align-items:center;font-size:.9rem;
margin-bottom:.4rem}.rv-bar .rv-sep{color:#666;margin-left:.6rem}
.rv-bar label{border:1px solid #999;border-radius:4px;padding:.1rem .5rem;cursor:pointer;
background:#fff;user-select:none}
.rv-port{display:flex;overflow:auto;max-height:80vh;background:#000;border-radius:4px;
resize:vertical}
.rv-img{position:relative;flex:none;margin:auto}.rv-img img{display:block;width:100%;
height:100%}.rv-img svg{position:absolute;inset:0;width:100%;height:100%;overflow:visible}
.rv-img rect.rv-box{fill:none;stroke-width:2;vector-effect:non-scaling-stroke}
.rv-img .rv-lvl rect{stroke-dasharray:6 4;stroke-width:1}
.rv-img text{font-family:system-ui,sans-serif;font-weight:600;dominant-baseline:hanging}
.rv-f:target rect.rv-box{stroke-width:5}
.rv-lvl{display:none}
"""


def png_size(png: bytes) -> tuple[int, int]:
    """``(width, height)`` from a PNG's IHDR chunk."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 24:
        return (1, 1)
    return struct.unpack(">II", png[16:24])


def viewer_html(a: Analysis, image_png: str, picture: tuple[int, int]) -> tuple[str, str]:
    """The viewer's markup and its image-specific CSS.

    Args:
        a: the analysis (``a.image_size`` is the source image in pixels, ``(W, H)``).
        image_png: the ``<img>`` element of the picture (a data: URL).
        picture: the embedded picture's ``(width, height)`` in pixels (1:1 zoom).
    """
    src_w, src_h = a.image_size or picture
    pw, ph = picture
    classes = sorted({f.label for f in a.findings})
    toggles = [(f"rv-c{i}", f"{name} ({sum(f.label == name for f in a.findings)})",
                class_color(name), True) for i, name in enumerate(classes)]
    graded = [g for g in a.grades if g.box is not None]
    if graded:
        toggles.append(("rv-grades", "Graded regions" if a.modality == "mri"
                        else "Graded windows", None, True))
    if a.vertebrae:
        toggles.append(("rv-levels", "Vertebral levels", None, False))
    if a.findings or graded:
        toggles.append(("rv-labels", "Labels", None, True))
    inputs = [f'<input type="radio" name="rv-zoom" id="rv-{key}"{" checked" if not i else ""}>'
              for i, (key, _, _) in enumerate(_ZOOMS)]
    inputs += [f'<input type="checkbox" id="{key}"{" checked" if on else ""}>'
               for key, _, _, on in toggles]
    bar = ['<span>Zoom:</span>'] + [f'<label for="rv-{key}">{text}</label>'
                                    for key, text, _ in _ZOOMS]
    if toggles:
        bar.append('<span class="rv-sep">Show:</span>')
    for key, text, color, _ in toggles:
        sw = ('<span class="swatch" style="background:rgb({},{},{})"></span>'.format(*color)
              if color else "")
        bar.append(f'<label for="{key}">{sw}{escape(text)}</label>')
    layers = _shapes(a, classes, (src_w, src_h))
    markup = (f'<div class="rv">{"".join(inputs)}<div class="rv-bar">{"".join(bar)}</div>'
              f'<div class="rv-port"><div class="rv-img">{image_png}'
              f'<svg viewBox="0 0 {src_w} {src_h}" preserveAspectRatio="none" role="group" '
              f'aria-label="Findings on the image">{layers}</svg></div></div>'
              '<p class="muted">Zoom with the buttons; scroll the image to pan. Colours as in '
              "the findings table; a finding's row links to its box.</p></div>")
    return markup, _css(pw, ph, toggles)


def _css(pw: int, ph: int, toggles) -> str:
    ratio = f"{pw} / {ph}"
    rules = [f".rv-img{{aspect-ratio:{ratio};width:min(100%, calc(78vh * {pw} / {ph}))}}"]
    for key, _, scale in _ZOOMS:
        on = f"#rv-{key}:checked ~ .rv-bar label[for=rv-{key}]"
        rules.append(f"{on}{{background:#1f2a37;color:#fff;border-color:#1f2a37}}")
        if scale:
            rules.append(f"#rv-{key}:checked ~ .rv-port .rv-img{{width:{pw * scale}px}}")
    for key in [f"rv-{k}" for k, _, _ in _ZOOMS] + [t[0] for t in toggles]:
        rules.append(f"#{key}:focus-visible ~ .rv-bar label[for={key}]"
                     "{outline:3px solid #ffbf47;outline-offset:1px}")
    for key, *_ in toggles:
        rules.append(f"#{key}:checked ~ .rv-bar label[for={key}]{{background:#e8eef6;"
                     "border-color:#1f2a37}")
        rules.append(f"#{key}:not(:checked) ~ .rv-bar label[for={key}]{{opacity:.6;"
                     "text-decoration:line-through}")
        target = {"rv-labels": ".rv-label", "rv-grades": ".rv-g", "rv-levels": ".rv-lvl"}.get(
            key, f".{key}")
        shown = "inline" if key == "rv-levels" else "none"
        state = ":checked" if key == "rv-levels" else ":not(:checked)"
        rules.append(f"#{key}{state} ~ .rv-port {target}{{display:{shown}}}")
    return "\n".join(rules)


def _shapes(a: Analysis, classes: list[str], size: tuple[int, int]) -> str:
    """The SVG groups: vertebral levels (hidden unless asked), graded windows/regions, then
    findings, strongest last (on top); labels placed so that none covers another."""
    font = size[1] / 60                     # about 12 screen pixels when fitted to 78vh
    out = []
    for v in a.vertebrae:
        out.append(f'<g class="rv-lvl">{_rect(v.as_list(), "#c8c8c8")}'
                   + (_label(v.x2 + 2, v.y1, notices.level_label(v.level, a) or "",
                             "#c8c8c8", font * 0.8) if v.level else "") + "</g>")
    graded = [g for g in a.grades if g.box is not None]
    texts = {("f", i): _finding_text(f, a) for i, f in enumerate(a.findings)}
    texts.update({("g", k): f"{g.task}: {g.label} ({notices.grade_location(g, a)})"
                  for k, g in enumerate(graded)})
    boxes = {("f", i): f.box for i, f in enumerate(a.findings)}
    boxes.update({("g", k): g.box for k, g in enumerate(graded)})
    scores = {key: (a.findings[key[1]].score if key[0] == "f" else -1.0) for key in boxes}
    at = _place(sorted(boxes, key=lambda k: -scores[k]), boxes, texts, font)
    labels = []                             # drawn last: no box line crosses a label
    for k, g in enumerate(graded):
        color = "#{:02x}{:02x}{:02x}".format(*grade_tag_color(g))
        out.append(f'<g class="rv-g">{_rect(g.box.as_list(), color)}</g>')
        labels.append(f'<g class="rv-g">{_label(*at[("g", k)], texts[("g", k)], color, font)}'
                      "</g>")
    for i in sorted(range(len(a.findings)), key=lambda i: a.findings[i].score):
        f = a.findings[i]
        color = "#{:02x}{:02x}{:02x}".format(*class_color(f.label))
        cls = f"rv-c{classes.index(f.label)}"
        out.append(f'<g class="rv-f {cls}" id="rv-f{i}"><title>{escape(texts[("f", i)])}'
                   f"</title>{_rect(f.box.as_list(), color)}</g>")
        labels.append(f'<g class="{cls}">{_label(*at[("f", i)], texts[("f", i)], color, font)}'
                      "</g>")
    return "".join(out + labels)


def _finding_text(f, a: Analysis) -> str:
    level = notices.level_label(f.level, a)
    return f"{f.label} {f.score:.2f}" + (f" \u00b7 {level}" if level else "")


def _place(order, boxes, texts, font: float) -> dict:
    """Where each label goes (top left, source pixels): above its box, else below it, moved
    down past labels placed before (``order``: most important first)."""
    placed, at = [], {}
    h = font * 1.3
    for key in order:
        b = boxes[key]
        w = _label_width(texts[key], font)
        y = b.y1 - h - 1 if b.y1 >= h + 1 else b.y2 + 1
        for _ in range(12):
            if not any(b.x1 < px + pw and px < b.x1 + w and y < py + ph and py < y + h
                       for px, py, pw, ph in placed):
                break
            y += h + 1
        placed.append((b.x1, y, w, h))
        at[key] = (b.x1, y)
    return at


def _label_width(text: str, font: float) -> float:
    """Estimated (no script can measure it): 0.58 em a character fits the system sans bold."""
    return 0.58 * font * len(text) + font * 0.6


def _rect(box: list[float], color: str) -> str:
    x1, y1, x2, y2 = box
    return (f'<rect class="rv-box" x="{x1:.1f}" y="{y1:.1f}" width="{max(x2 - x1, 1):.1f}" '
            f'height="{max(y2 - y1, 1):.1f}" stroke="{color}"/>')


def _label(x: float, y: float, text: str, color: str, font: float) -> str:
    """Text on a background of ``color`` (dark text), its width estimated from the length."""
    width = _label_width(text, font)
    return (f'<g class="rv-label"><rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
            f'height="{font * 1.3:.1f}" fill="{color}" rx="{font * 0.15:.1f}"/>'
            f'<text x="{x + font * 0.3:.1f}" y="{y + font * 0.15:.1f}" font-size="{font:.1f}" '
            f'fill="#111">{escape(text)}</text></g>')


__all__ = ["VIEWER_CSS", "png_size", "viewer_html"]
