// The image viewer: the radiograph in a canvas, the heatmap in a second canvas above it, and
// the findings as an SVG whose viewBox is the source image in pixels, so boxes [x1, y1, x2, y2]
// from result.json are drawn as they are. Images are fetched (with the API key) and painted,
// never put in <img src>, so no blob: or data: URL is needed.

import { analysisUrl, getBlob } from "./api.js";
import { $, colorOf, el, gradeColor, levelText, num, svg, swatch } from "./dom.js";

const VERTEBRAE = "__vertebrae__";
const view = { result: null, hidden: new Set([VERTEBRAE]) };

/** Show ``r`` (a result document with ``id``); resolves when the image is painted. */
export async function showImage(r) {
  view.result = r;
  renderToggles(r);
  renderHeatmapChoices(r);
  hideTip();
  drawBoxes();
  await paintImage(r);
  layout();
  drawBoxes();
  await updateHeatmap();
}

export function wireViewer() {
  $("heatmap-method").addEventListener("change", updateHeatmap);
  $("heatmap-opacity").addEventListener("input", updateHeatmap);
  new ResizeObserver(layout).observe($("viewer"));
}

/** Highlight the box of finding ``i`` (the findings table calls this on hover/focus). */
export function highlightBox(i, on) {
  const g = $("boxes").querySelector(`.finding[data-index="${i}"]`);
  if (g) g.classList.toggle("hot", on);
}

// ------------------------------------------------------------------ image
async function paintImage(r) {
  const canvas = $("image-canvas");
  const note = $("image-note");
  note.hidden = true;
  canvas.hidden = true;
  if (!r.id || !r.image_size) return;
  // image.png is the plain picture; overlay.png (boxes burnt in) is the fallback.
  const names = ["image.png", "overlay.png"].filter((n) => !r.links || n in r.links);
  for (const name of names) {
    try {
      const bmp = await createImageBitmap(await getBlob(analysisUrl(r.id, name)));
      if (view.result !== r) return;                      // another result was opened meanwhile
      paint(canvas, bmp);
      canvas.hidden = false;
      if (name !== "image.png") {
        note.textContent =
          "The plain image is not available: boxes are also drawn into this picture.";
        note.hidden = false;
      }
      return;
    } catch { /* try the next picture */ }
  }
  note.textContent = "The image cannot be shown.";
  note.hidden = false;
}

function paint(canvas, bmp) {
  canvas.width = bmp.width;
  canvas.height = bmp.height;
  canvas.getContext("2d").drawImage(bmp, 0, 0);
}

/** Fit the stage (canvases and SVG share it) into the viewer, keeping the aspect ratio. */
function layout() {
  const r = view.result;
  if (!r || !r.image_size) return;
  const [w, h] = r.image_size;
  const box = $("viewer").getBoundingClientRect();
  const scale = Math.min((box.width - 8) / w, (box.height - 8) / h);
  if (!(scale > 0)) return;
  $("stage").style.width = `${Math.floor(w * scale)}px`;
  $("stage").style.height = `${Math.floor(h * scale)}px`;
}

// ------------------------------------------------------------------ boxes
function drawBoxes() {
  const layer = $("boxes");
  layer.replaceChildren();
  const r = view.result;
  if (!r || !r.image_size) return;
  layer.setAttribute("viewBox", `0 0 ${r.image_size[0]} ${r.image_size[1]}`);
  layer.setAttribute("preserveAspectRatio", "none");
  if (!view.hidden.has(VERTEBRAE)) {
    for (const v of r.vertebrae || []) layer.append(vertebraShape(v));
  }
  (r.findings || []).forEach((f, i) => {
    if (!view.hidden.has(f.label)) layer.append(findingShape(f, i));
  });
  (r.grades || []).filter((g) => g.box).forEach((g) => layer.append(regionShape(g)));
}

/** A graded region (MRI stenosis): its box in the grade's colour, "region: grade" above it. */
function regionShape(grade) {
  const [x1, y1, x2, y2] = grade.box;
  const text = `${grade.region || grade.task}: ${grade.label}`;
  const g = svg("g", { class: "region", "data-testid": "region-box", "data-region": grade.region,
    "data-grade": grade.label, role: "img", "aria-label": text });
  g.append(svg("rect", { x: x1, y: y1, width: Math.max(x2 - x1, 1), height: Math.max(y2 - y1, 1),
    fill: "none", stroke: gradeColor(grade.label), "stroke-width": 2 }));
  const t = svg("text", { x: x1, y: y1 - 2, "font-size": Math.max(6, (y2 - y1) / 3),
    fill: gradeColor(grade.label) });
  t.textContent = grade.label;
  const title = svg("title");
  title.textContent = `${text} (score ${num(grade.score)})`;
  g.append(t, title);
  return g;
}

export function describe(f, r = view.result) {
  const level = f.level ? `, level ${levelText(r, f.level)}` : "";
  return `${f.label}, score ${num(f.score)}${level}`;
}

function findingShape(f, i) {
  const [x1, y1, x2, y2] = f.box;
  const g = svg("g", { class: "finding", "data-testid": "box", "data-label": f.label,
    "data-index": i, tabindex: 0, role: "img", "aria-label": describe(f) });
  // Strokes are in screen pixels (vector-effect: non-scaling-stroke in app.css).
  g.append(svg("rect", { x: x1, y: y1, width: Math.max(x2 - x1, 1), height: Math.max(y2 - y1, 1),
    fill: "none", stroke: colorOf(f.label), "stroke-width": 2 }));
  for (const t of ["mouseenter", "focus"]) g.addEventListener(t, () => showTip(g, f, i));
  for (const t of ["mouseleave", "blur"]) g.addEventListener(t, hideTip);
  return g;
}

function vertebraShape(v) {
  const [x1, y1, x2, y2] = v.box;
  const g = svg("g", { class: "vertebra", "data-testid": "vertebra-box" });
  g.append(svg("rect", { x: x1, y: y1, width: x2 - x1, height: y2 - y1, fill: "none",
    stroke: "#c8c8c8", "stroke-width": 1, "stroke-dasharray": "6 4" }));
  if (v.level) {
    const t = svg("text", { x: x1 - 4, y: (y1 + y2) / 2, "text-anchor": "end",
      "dominant-baseline": "middle", "font-size": Math.max(10, (y2 - y1) / 3), fill: "#e0e0e0" });
    t.textContent = levelText(view.result, v.level);
    g.append(t);
  }
  return g;
}

function showTip(target, f, i) {
  const tip = $("tooltip");
  tip.replaceChildren(el("strong", { text: f.label }),
    el("span", { text: `score ${num(f.score)}` }),
    el("span", { text: f.level ? `level ${levelText(view.result, f.level)}` : "level unknown" }));
  tip.hidden = false;
  const stage = $("stage").getBoundingClientRect();
  const box = target.getBoundingClientRect();
  // Below the box, or above it when there is no room below; never past the stage's edges.
  const left = Math.min(box.left - stage.left, stage.width - tip.offsetWidth);
  const below = box.bottom - stage.top + 4;
  const above = box.top - stage.top - tip.offsetHeight - 4;
  tip.style.left = `${Math.max(0, left)}px`;
  tip.style.top = `${below + tip.offsetHeight > stage.height ? Math.max(0, above) : below}px`;
  for (const row of $("findings-body").querySelectorAll("tr")) {
    row.classList.toggle("hot", row.dataset.index === String(i));
  }
}

function hideTip() {
  $("tooltip").hidden = true;
  for (const row of $("findings-body").querySelectorAll("tr.hot")) row.classList.remove("hot");
}

function renderToggles(r) {
  const box = $("class-toggles");
  box.replaceChildren(el("legend", { class: "visually-hidden", text: "Show boxes of class" }));
  const counts = new Map();
  for (const f of r.findings || []) counts.set(f.label, (counts.get(f.label) || 0) + 1);
  for (const [label, n] of counts) box.append(toggle(label, `${label} (${n})`, colorOf(label)));
  if ((r.vertebrae || []).length) box.append(toggle(VERTEBRAE, "Vertebral levels", "#c8c8c8"));
  if (!counts.size) box.append(el("span", { class: "muted", text: "No findings to show." }));
}

function toggle(key, text, color) {
  const input = el("input", { type: "checkbox", "data-testid": "class-toggle", "data-label": key });
  input.checked = !view.hidden.has(key);
  input.addEventListener("change", () => {
    if (input.checked) view.hidden.delete(key); else view.hidden.add(key);
    hideTip();
    drawBoxes();
  });
  return el("label", { class: "toggle" }, input, swatch(color), document.createTextNode(text));
}

// ------------------------------------------------------------------ heatmaps
function heatmapMethods(r) {
  if (!(r.gate && r.gate.accepted)) return [];
  return [...new Set((r.heatmaps || []).map((m) => m.method))];
}

function renderHeatmapChoices(r) {
  const select = $("heatmap-method");
  const methods = heatmapMethods(r);
  const none = el("option", { value: "", text: methods.length ? "none" : "none computed" });
  select.replaceChildren(none, ...methods.map((m) => el("option", { value: m, text: m })));
  select.disabled = !methods.length;
  $("heatmap-opacity").disabled = !methods.length;
  select.value = methods[0] || "";
  const canvas = $("heatmap-canvas");
  canvas.hidden = true;
  delete canvas.dataset.src;
}

async function updateHeatmap() {
  const r = view.result;
  const method = $("heatmap-method").value;
  const canvas = $("heatmap-canvas");
  const opacity = Number($("heatmap-opacity").value);
  $("heatmap-opacity-value").textContent = `${opacity}%`;
  canvas.style.opacity = String(opacity / 100);
  if (!r || !r.id || !method) { canvas.hidden = true; return; }
  const key = `${r.id}/${method}`;
  if (canvas.dataset.src !== key) {
    try {
      const bmp = await createImageBitmap(await getBlob(
        analysisUrl(r.id, `heatmap/${encodeURIComponent(method)}.png`)));
      if (view.result !== r || $("heatmap-method").value !== method) return;
      paint(canvas, bmp);
      canvas.dataset.src = key;
    } catch (err) {
      canvas.hidden = true;
      $("image-note").textContent = `Heatmap ${method} cannot be shown: ${err.message || err}`;
      $("image-note").hidden = false;
      return;
    }
  }
  canvas.hidden = false;
}
