// Zoom and pan of the image stage, by @panzoom/panzoom (vendored: panzoom.es.js, MIT; see
// VENDOR.md). Panzoom moves the stage with a CSS transform and handles drag, wheel and pinch;
// this module adds what a reading viewer needs on top: fit, 1:1, zoom steps, centring a box,
// and the mapping from image pixels to viewport pixels that the box overlay is drawn with.
//
// Geometry: the stage is the display image at its natural size (W x H CSS pixels) at the top
// left of its parent; panzoom transforms it as `scale(s) translate(x, y)` about its centre
// c = (W/2, H/2), so an image pixel p lands at  c + s * (p - c + t)  in the parent (t = pan).

import Panzoom from "./panzoom.es.js";

const WHEEL_STEP = 0.3;       // panzoom's step: one wheel notch zooms by exp(0.1), about 10%

export class Camera {
  /** ``viewport``: the element the user sees; ``stage``: the element moved (its parent fills
   *  the viewport); ``onChange()`` runs after every change, once the transform is applied. */
  constructor(viewport, stage, onChange) {
    this.viewport = viewport;
    this.stage = stage;
    this.size = [1, 1];
    this.pz = Panzoom(stage, { canvas: true, cursor: "grab", step: WHEEL_STEP, minScale: 0.01,
      maxScale: 64, animate: false });
    stage.addEventListener("panzoomchange", () => onChange());
    viewport.addEventListener("wheel", (e) => this.pz.zoomWithWheel(e), { passive: false });
  }

  get scale() { return this.pz.getScale(); }

  /** The viewport's size in CSS pixels. */
  view() {
    const r = this.viewport.getBoundingClientRect();
    return [Math.max(1, r.width), Math.max(1, r.height)];
  }

  /** Show an image of ``w`` x ``h`` pixels, fitted. */
  setImage(w, h) {
    this.size = [w, h];
    this.stage.style.width = `${w}px`;
    this.stage.style.height = `${h}px`;
    this.fit();
  }

  fitScale() {
    const [vw, vh] = this.view();
    return 0.98 * Math.min(vw / this.size[0], vh / this.size[1]);
  }

  /** The whole image in the viewport, centred. Zoom limits follow: 1/4 of fit to 32x. */
  fit() {
    const s = this.fitScale();
    this.pz.setOptions({ minScale: s / 4, maxScale: Math.max(32, 16 * s) });
    this.centreAt(this.size[0] / 2, this.size[1] / 2, s);
  }

  /** One display-image pixel per CSS pixel, keeping the point at the viewport's centre. */
  actual() {
    const [cx, cy] = this.toImage(...this.view().map((v) => v / 2));
    this.centreAt(cx, cy, 1);
  }

  /** Zoom by ``factor`` about the viewport's centre. */
  zoomBy(factor) {
    const r = this.viewport.getBoundingClientRect();
    this.pz.zoomToPoint(this.scale * factor, { clientX: r.left + r.width / 2,
      clientY: r.top + r.height / 2 });
  }

  /** Move the image by ``dx``, ``dy`` screen pixels. */
  panBy(dx, dy) {
    const s = this.scale;
    this.pz.pan(dx / s, dy / s, { relative: true, force: true });
  }

  /** Put image pixel (``x``, ``y``) at the viewport's centre, at ``scale`` (default: now). */
  centreAt(x, y, scale = this.scale) {
    const [vw, vh] = this.view();
    const [cx, cy] = [this.size[0] / 2, this.size[1] / 2];
    this.pz.zoom(scale, { force: true });
    this.pz.pan((vw / 2 - cx) / scale - x + cx, (vh / 2 - cy) / scale - y + cy,
      { force: true });
  }

  /** Image pixel -> viewport pixel (relative to the viewport's top left). */
  toScreen(x, y) {
    const s = this.scale;
    const { x: tx, y: ty } = this.pz.getPan();
    const [cx, cy] = [this.size[0] / 2, this.size[1] / 2];
    return [cx + s * (x - cx + tx), cy + s * (y - cy + ty)];
  }

  /** Viewport pixel -> image pixel. */
  toImage(u, v) {
    const s = this.scale;
    const { x: tx, y: ty } = this.pz.getPan();
    const [cx, cy] = [this.size[0] / 2, this.size[1] / 2];
    return [(u - cx) / s + cx - tx, (v - cy) / s + cy - ty];
  }
}
