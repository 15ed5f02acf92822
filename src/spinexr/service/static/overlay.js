// The boxes over the image: an SVG the size of the viewport, in screen pixels, so lines stay
// 2 px and labels stay legible at any zoom. Elements are built when the result or a toggle
// changes, and only moved (layout) when the camera changes: focus and highlight survive pans.
//
// Boxes come from result.json in source pixels [x1, y1, x2, y2]; the display image may be
// smaller (image.png is at most 2048 px on its long side), so each box is scaled by the
// display/source ratio and then mapped through the camera.

import { colorOf, gradeColor, levelText, num, svg } from "./dom.js";

/** Keys of the layers that are not lesion classes (class toggles use the class name). */
export const LAYERS = { VERTEBRAE: "__vertebrae__", GRADES: "__grades__", LABELS: "__labels__" };

const FONT_PX = 12;
const LABEL_PAD = 3;

export class Overlay {
  /** ``onSelect(i)``: a finding's box or label was clicked or focused. */
  constructor(layer, camera, onSelect) {
    this.layer = layer;
    this.camera = camera;
    this.onSelect = onSelect;
    this.hidden = new Set([LAYERS.VERTEBRAE]);
    this.items = [];
    this.selected = null;
    this.r = null;
    this.ratio = [1, 1];
  }

  /** Draw result ``r`` over a display image of ``size`` = [w, h] pixels. */
  show(r, size) {
    this.r = r;
    this.selected = null;
    const [sw, sh] = r.image_size || size;
    this.ratio = [size[0] / sw, size[1] / sh];
    this.build();
  }

  clear() {
    this.r = null;
    this.items = [];
    this.layer.replaceChildren();
  }

  isHidden(key) { return this.hidden.has(key); }

  setHidden(key, hidden) {
    if (hidden) this.hidden.add(key); else this.hidden.delete(key);
    this.build();
  }

  /** Highlight finding ``i`` (``null``: none); its label is placed first. */
  select(i) {
    this.selected = i;
    for (const it of this.items) {
      if (it.kind !== "finding") continue;
      const on = it.index === i;
      it.g.classList.toggle("hot", on);
      it.g.dataset.active = String(on);
      if (it.label) it.label.classList.toggle("hot", on);
    }
    this.layout();
  }

  build() {
    const r = this.r;
    const shapes = svg("g", { class: "shapes" });
    const labels = svg("g", { class: "labels" });
    this.layer.replaceChildren(shapes, labels);
    this.items = [];
    if (!r) return;
    const withLabels = !this.hidden.has(LAYERS.LABELS);
    if (!this.hidden.has(LAYERS.VERTEBRAE)) {
      for (const v of r.vertebrae || []) shapes.append(this.add(vertebra(v, r)).g);
    }
    if (!this.hidden.has(LAYERS.GRADES)) {
      for (const g of (r.grades || []).filter((x) => x.box)) {
        const it = this.add(gradeBox(g, r));
        shapes.append(it.g);
        if (withLabels) labels.append(this.addLabel(it, gradeText(g, r), it.color));
      }
    }
    const order = (r.findings || []).map((f, i) => i)
      .sort((a, b) => r.findings[a].score - r.findings[b].score);   // strongest drawn last
    for (const i of order) {
      const f = r.findings[i];
      if (this.hidden.has(f.label)) continue;
      const it = this.add(finding(f, i, r));
      shapes.append(it.g);
      for (const t of ["click", "focus"]) it.g.addEventListener(t, () => this.onSelect(i));
      if (withLabels) {
        const label = this.addLabel(it, findingText(f, r), colorOf(f.label));
        label.addEventListener("click", () => this.onSelect(i));
        labels.append(label);
      }
    }
    this.select(this.selected);
  }

  add(item) {
    this.items.push(item);
    return item;
  }

  addLabel(item, text, color) {
    const g = svg("g", { class: "label", "data-testid": "box-label",
      "data-index": item.index ?? "", "data-kind": item.kind });
    const bg = svg("rect", { fill: color, rx: 2 });
    const t = svg("text", { "font-size": FONT_PX, fill: "#111" });
    t.textContent = text;
    g.append(bg, t);
    item.label = g;
    return g;
  }

  /** Move every element to where the camera now shows its box. */
  layout() {
    if (!this.r) return;
    const [vw, vh] = this.camera.view();
    this.layer.setAttribute("viewBox", `0 0 ${vw} ${vh}`);
    for (const it of this.items) {
      it.screen = this.toScreen(it.box);
      const [x1, y1, x2, y2] = it.screen;
      for (const rect of it.rects) {
        rect.setAttribute("x", x1); rect.setAttribute("y", y1);
        rect.setAttribute("width", Math.max(1, x2 - x1));
        rect.setAttribute("height", Math.max(1, y2 - y1));
      }
      if (it.hit) it.hit.setAttribute("d", `M${x1} ${y1}H${x2}V${y2}H${x1}Z`);
      if (it.text) { it.text.setAttribute("x", x1 - 4); it.text.setAttribute("y", (y1 + y2) / 2); }
    }
    this.placeLabels(vw);
  }

  toScreen([x1, y1, x2, y2]) {
    const [kx, ky] = this.ratio;
    const [a, b] = this.camera.toScreen(x1 * kx, y1 * ky);
    const [c, d] = this.camera.toScreen(x2 * kx, y2 * ky);
    return [a, b, c, d];
  }

  /** Labels above their box (below when there is no room), never over one placed before;
   *  the highlighted finding's first, then the strongest. */
  placeLabels(vw) {
    const placed = [];
    const labelled = this.items.filter((it) => it.label)
      .sort((a, b) => (b.index === this.selected) - (a.index === this.selected)
        || (b.score ?? 0) - (a.score ?? 0));
    for (const it of labelled) {
      const [bg, t] = it.label.children;
      const w = t.getComputedTextLength() + 2 * LABEL_PAD;
      const h = FONT_PX + 2 * LABEL_PAD;
      const [x1, y1, , y2] = it.screen;
      const x = Math.min(Math.max(0, x1), Math.max(0, vw - w));
      let y = y1 - h - 1 >= 0 ? y1 - h - 1 : y2 + 1;
      for (let k = 0; k < 12 && placed.some((p) => overlaps(p, [x, y, w, h])); k += 1) y += h + 1;
      placed.push([x, y, w, h]);
      bg.setAttribute("x", x); bg.setAttribute("y", y);
      bg.setAttribute("width", w); bg.setAttribute("height", h);
      t.setAttribute("x", x + LABEL_PAD); t.setAttribute("y", y + h - LABEL_PAD - 2);
    }
  }
}

function overlaps([ax, ay, aw, ah], [bx, by, bw, bh]) {
  return ax < bx + bw && bx < ax + aw && ay < by + bh && by < ay + ah;
}

export function findingText(f, r) {
  const level = f.level ? ` \u00b7 ${levelText(r, f.level)}` : "";
  return `${f.label} ${num(f.score)}${level}`;
}

function gradeText(g, r) {
  if (r.modality === "mri") return `${g.region || g.task}: ${g.label}`;
  const where = g.level ? levelText(r, g.level) : (g.region || "window");
  return `${g.task}: ${g.label} (${where})`;
}

function finding(f, i, r) {
  const g = svg("g", { class: "finding", "data-testid": "box", "data-label": f.label,
    "data-index": i, tabindex: 0, role: "button", "aria-label": findingText(f, r) });
  const rect = svg("rect", { fill: "none", stroke: colorOf(f.label), "stroke-width": 2 });
  const hit = svg("path", { class: "hit", fill: "none", stroke: "transparent",
    "stroke-width": 12 });
  g.append(rect, hit);
  return { kind: "finding", index: i, score: f.score, box: f.box, g, rects: [rect], hit };
}

function gradeBox(grade, r) {
  const color = gradeColor(grade.label);
  const mri = r.modality === "mri";
  const g = svg("g", { class: mri ? "region" : "grade-box",
    "data-testid": mri ? "region-box" : "grade-box", "data-region": grade.region || "",
    "data-grade": grade.label, role: "img", "aria-label": gradeText(grade, r) });
  const rect = svg("rect", { fill: "none", stroke: color, "stroke-width": 2,
    "stroke-dasharray": mri ? "" : "8 4" });
  g.append(rect);
  return { kind: "grade", index: null, score: grade.score ?? 0, box: grade.box, g,
    rects: [rect], color };
}

function vertebra(v, r) {
  const g = svg("g", { class: "vertebra", "data-testid": "vertebra-box" });
  const rect = svg("rect", { fill: "none", stroke: "#c8c8c8", "stroke-width": 1,
    "stroke-dasharray": "6 4" });
  g.append(rect);
  let text = null;
  if (v.level) {
    text = svg("text", { "text-anchor": "end", "dominant-baseline": "middle",
      "font-size": FONT_PX, class: "level-name" });
    text.textContent = levelText(r, v.level);
    g.append(text);
  }
  return { kind: "vertebra", index: null, box: v.box, g, rects: [rect], text };
}
