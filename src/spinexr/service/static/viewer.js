// The image viewer: image.png in a canvas (contrast through a lookup table, contrast.js), the
// heatmap in a second canvas above it (heat.js), both on a stage that @panzoom/panzoom moves
// (camera.js), and the boxes in an SVG in screen pixels (overlay.js). Images are fetched with
// the API key and painted, never put in <img src>, so no blob: or data: URL is needed.

import { analysisUrl, getBlob } from "./api.js";
import { Camera } from "./camera.js";
import { GreyPainter, IDENTITY, PRESETS, clampWindow } from "./contrast.js";
import { $, colorOf, el, swatch } from "./dom.js";
import { drawColorbar, paintHeat } from "./heat.js";
import { arrowDelta, renderHelp, wireKeys } from "./keys.js";
import { LAYERS, Overlay } from "./overlay.js";

const ZOOM_STEP = 1.25;
const OPACITY_STEP = 10;
const view = { result: null, wl: { ...IDENTITY }, invert: false, wlMode: false, preset: 0,
  fitted: true, size: null, heatMethod: "", drag: null, frame: 0, paint: 0 };
let camera;
let overlay;
let painter;

/** Show ``r`` (a result document with ``id``); resolves when the image is painted. */
export async function showImage(r) {
  view.result = r;
  view.size = null;
  overlay.clear();
  renderToggles(r);
  renderHeatmapChoices(r);
  const bmp = await loadPicture(r);
  if (view.result !== r) return;                      // another result was opened meanwhile
  $("image-canvas").hidden = !bmp;
  if (!bmp) { updateReadout(); return; }
  painter.load(bmp);
  painter.paint(view.wl, view.invert);
  view.size = [bmp.width, bmp.height];
  camera.setImage(bmp.width, bmp.height);
  view.fitted = true;
  overlay.show(r, view.size);
  overlay.layout();
  await updateHeatmap();
  updateReadout();
}

export function wireViewer() {
  const viewer = $("viewer");
  camera = new Camera(viewer, $("stage"), onCamera);
  overlay = new Overlay($("boxes"), camera, (i) => selectFinding(i, { centre: false }));
  painter = new GreyPainter($("image-canvas"));
  $("heatmap-method").addEventListener("change", () => { updateHeatmap(); });
  $("heatmap-opacity").addEventListener("input", setOpacity);
  drawColorbar($("colorbar-canvas"));
  $("wl-preset").replaceChildren(...PRESETS.map((p, i) => el("option", { value: i,
    text: p.name })), el("option", { value: "custom", text: "Custom (dragged)", hidden: true,
    disabled: true }));
  $("wl-preset").addEventListener("change", (e) => applyPreset(Number(e.target.value)));
  $("wl-mode").addEventListener("click", toggleWlMode);
  $("wl-invert").addEventListener("click", toggleInvert);
  $("wl-reset").addEventListener("click", () => applyPreset(0));
  $("zoom-fit").addEventListener("click", fit);
  $("zoom-actual").addEventListener("click", actual);
  $("zoom-in").addEventListener("click", () => zoom(ZOOM_STEP));
  $("zoom-out").addEventListener("click", () => zoom(1 / ZOOM_STEP));
  $("help-button").addEventListener("click", openHelp);
  $("help-close").addEventListener("click", () => $("help").close());
  wireContrastDrag(viewer);
  viewer.addEventListener("wheel", () => { view.fitted = false; }, { passive: true });
  viewer.addEventListener("pointerdown", () => { view.fitted = false; });
  new ResizeObserver(() => { if (view.size && view.fitted) fit(); else onCamera(); })
    .observe(viewer);
  renderHelp();
  wireKeys(ACTIONS, () => !$("help").open);
}

// ------------------------------------------------------------------ selection
/** Highlight finding ``i`` (``null``: none) on the image and in the table; ``centre``:
 *  move the image so the box is in view when it is not. */
export function selectFinding(i, { centre = true } = {}) {
  const r = view.result;
  const f = i === null || !r ? null : (r.findings || [])[i];
  if (f && overlay.isHidden(f.label)) setLayer(f.label, false);
  overlay.select(f ? i : null);
  for (const row of $("findings-body").querySelectorAll("tr[data-index]")) {
    const on = f !== null && row.dataset.index === String(i);
    row.classList.toggle("hot", on);
    row.setAttribute("aria-selected", String(on));
  }
  if (f && centre && view.size) bringIntoView(f.box);
}

function bringIntoView(box) {
  const [x1, y1, x2, y2] = overlay.toScreen(box);
  const [vw, vh] = camera.view();
  if (x1 >= 0 && y1 >= 0 && x2 <= vw && y2 <= vh) return;
  const [kx, ky] = overlay.ratio;
  camera.centreAt(((box[0] + box[2]) / 2) * kx, ((box[1] + box[3]) / 2) * ky);
  view.fitted = false;
}

function step(delta) {
  const n = (view.result && view.result.findings || []).length;
  if (!n) return;
  const now = overlay.selected;
  selectFinding(now === null ? (delta > 0 ? 0 : n - 1) : (now + delta + n) % n);
}

// ------------------------------------------------------------------ camera
function onCamera() {
  if (!view.size) return;
  if (view.frame) return;
  view.frame = requestAnimationFrame(() => {
    view.frame = 0;
    overlay.layout();
    updateReadout();
  });
}

function fit() { if (view.size) { camera.fit(); view.fitted = true; } }
function actual() { if (view.size) { camera.actual(); view.fitted = false; } }
function zoom(f) { if (view.size) { camera.zoomBy(f); view.fitted = false; } }

// ------------------------------------------------------------------ contrast (window/level)
function wireContrastDrag(viewer) {
  viewer.addEventListener("contextmenu", (e) => e.preventDefault());
  viewer.addEventListener("pointerdown", (e) => {
    if (!view.size || !(e.button === 2 || (e.button === 0 && view.wlMode))) return;
    e.stopPropagation();                   // panzoom does not see it: no pan
    e.preventDefault();
    viewer.setPointerCapture(e.pointerId);
    view.drag = { id: e.pointerId, x: e.clientX, y: e.clientY, wl: { ...view.wl } };
  }, { capture: true });
  viewer.addEventListener("pointermove", (e) => {
    const d = view.drag;
    if (!d || e.pointerId !== d.id) return;
    // Right/left: window width (contrast); down/up: level (down = darker).
    setWindow({ width: d.wl.width + (e.clientX - d.x),
      center: d.wl.center + 0.5 * (e.clientY - d.y) });
    $("wl-preset").value = "custom";
  });
  const end = (e) => { if (view.drag && e.pointerId === view.drag.id) view.drag = null; };
  viewer.addEventListener("pointerup", end);
  viewer.addEventListener("pointercancel", end);
}

function setWindow(w) {
  view.wl = clampWindow(w);
  if (view.paint) return;
  view.paint = requestAnimationFrame(() => {
    view.paint = 0;
    painter.paint(view.wl, view.invert);
    updateReadout();
  });
}

function applyPreset(i) {
  view.preset = i;
  $("wl-preset").value = String(i);
  const p = PRESETS[i];
  setWindow({ center: p.center, width: p.width });
}

function toggleInvert() {
  view.invert = !view.invert;
  $("wl-invert").setAttribute("aria-pressed", String(view.invert));
  setWindow(view.wl);
}

function toggleWlMode() {
  view.wlMode = !view.wlMode;
  $("wl-mode").setAttribute("aria-pressed", String(view.wlMode));
  camera.pz.setOptions({ cursor: view.wlMode ? "crosshair" : "grab" });
  updateReadout();
}

function updateReadout() {
  const viewer = $("viewer");
  const scale = camera && view.size ? camera.scale : 0;
  const { center, width } = view.wl;
  Object.assign(viewer.dataset, { scale: scale.toFixed(4), window: String(Math.round(width)),
    level: String(Math.round(center)), invert: String(view.invert),
    mode: view.wlMode ? "contrast" : "pan" });
  $("readout").textContent = view.size ? `Zoom ${Math.round(100 * scale)}% \u00b7 window `
    + `${Math.round(width)} level ${Math.round(center)}${view.invert ? " \u00b7 inverted" : ""}`
    + ` \u00b7 drag: ${view.wlMode ? "contrast" : "pan"}` : "";
}

// ------------------------------------------------------------------ pictures
async function loadPicture(r) {
  const note = $("image-note");
  note.hidden = true;
  if (!r.id || !r.image_size) return null;
  // image.png is the plain picture; overlay.png (boxes burnt in) is the fallback.
  for (const name of ["image.png", "overlay.png"].filter((n) => !r.links || n in r.links)) {
    try {
      const bmp = await createImageBitmap(await getBlob(analysisUrl(r.id, name)));
      if (name !== "image.png") {
        note.textContent =
          "The plain image is not available: boxes are also drawn into this picture.";
        note.hidden = false;
      }
      return bmp;
    } catch { /* try the next picture */ }
  }
  note.textContent = "The image cannot be shown.";
  note.hidden = false;
  return null;
}

// ------------------------------------------------------------------ toggles
function renderToggles(r) {
  const box = $("class-toggles");
  box.replaceChildren(el("legend", { class: "visually-hidden", text: "Show on the image" }));
  const counts = new Map();
  for (const f of r.findings || []) counts.set(f.label, (counts.get(f.label) || 0) + 1);
  for (const [label, n] of counts) box.append(toggle(label, `${label} (${n})`, colorOf(label)));
  const graded = (r.grades || []).filter((g) => g.box).length;
  if (graded) {
    box.append(toggle(LAYERS.GRADES, r.modality === "mri" ? "Graded regions"
      : "Graded windows", null));
  }
  if ((r.vertebrae || []).length) {
    box.append(toggle(LAYERS.VERTEBRAE, "Vertebral levels", "#c8c8c8"));
  }
  if (counts.size || graded) box.append(toggle(LAYERS.LABELS, "Labels", null));
  if (!counts.size) box.append(el("span", { class: "muted", text: "No findings to show." }));
}

function toggle(key, text, color) {
  const input = el("input", { type: "checkbox", "data-testid": "class-toggle",
    "data-label": key });
  input.checked = !overlay.isHidden(key);
  input.addEventListener("change", () => setLayer(key, !input.checked));
  return el("label", { class: "toggle" }, input, ...(color ? [swatch(color)] : []),
    document.createTextNode(text));
}

function setLayer(key, hidden) {
  overlay.setHidden(key, hidden);
  const input = $("class-toggles").querySelector(`input[data-label="${CSS.escape(key)}"]`);
  if (input) input.checked = !hidden;
}

function toggleAllClasses() {
  const labels = [...new Set((view.result && view.result.findings || []).map((f) => f.label))];
  const allShown = labels.every((l) => !overlay.isHidden(l));
  for (const l of labels) setLayer(l, allShown);       // all on -> all off; else all on
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
  view.heatMethod = methods[0] || "";
  const canvas = $("heatmap-canvas");
  canvas.hidden = true;
  $("colorbar").hidden = true;
  delete canvas.dataset.src;
}

function setOpacity() {
  const opacity = Number($("heatmap-opacity").value);
  $("heatmap-opacity-value").textContent = `${opacity}%`;
  $("heatmap-canvas").style.opacity = String(opacity / 100);
}

async function updateHeatmap() {
  const r = view.result;
  const method = $("heatmap-method").value;
  const canvas = $("heatmap-canvas");
  setOpacity();
  if (method) view.heatMethod = method;
  if (!r || !r.id || !method || !view.size) {
    canvas.hidden = true;
    $("colorbar").hidden = true;
    return;
  }
  const key = `${r.id}/${method}`;
  if (canvas.dataset.src !== key) {
    const m = encodeURIComponent(method);
    // heat/<method>.png: the values, coloured here; older analyses: the blended picture.
    const values = !r.links || `heat/${method}.png` in r.links;
    try {
      const bmp = await createImageBitmap(await getBlob(
        analysisUrl(r.id, values ? `heat/${m}.png` : `heatmap/${m}.png`)));
      if (view.result !== r || $("heatmap-method").value !== method) return;
      paintHeat(canvas, bmp, !values);
      canvas.dataset.src = key;
    } catch (err) {
      canvas.hidden = true;
      $("image-note").textContent = `Heatmap ${method} cannot be shown: ${err.message || err}`;
      $("image-note").hidden = false;
      return;
    }
  }
  canvas.hidden = false;
  $("colorbar").hidden = false;
}

function toggleHeatmap() {
  const select = $("heatmap-method");
  if (select.disabled) return;
  select.value = select.value ? "" : view.heatMethod;
  updateHeatmap();
}

function nudgeOpacity(delta) {
  const input = $("heatmap-opacity");
  input.value = String(Math.min(100, Math.max(0, Number(input.value) + delta)));
  setOpacity();
}

// ------------------------------------------------------------------ help and keys
function openHelp() {
  if (!$("help").open) $("help").showModal();
}

const ACTIONS = {
  fit, actual, zoomIn: () => zoom(ZOOM_STEP), zoomOut: () => zoom(1 / ZOOM_STEP),
  pan: (e) => { if (view.size) { camera.panBy(...arrowDelta(e)); view.fitted = false; } },
  wlMode: toggleWlMode, invert: toggleInvert, resetWl: () => applyPreset(0),
  preset: () => applyPreset((view.preset + 1) % PRESETS.length),
  next: () => step(1), previous: () => step(-1),
  boxes: toggleAllClasses,
  labels: () => setLayer(LAYERS.LABELS, !overlay.isHidden(LAYERS.LABELS)),
  heatmap: toggleHeatmap, opacityDown: () => nudgeOpacity(-OPACITY_STEP),
  opacityUp: () => nudgeOpacity(OPACITY_STEP), escape: () => selectFinding(null),
  help: openHelp,
};
