// Window/level on the display image: a 256-entry lookup table applied to the 8-bit grey
// values of image.png and written to the canvas.
//
// image.png already carries the analysis's own window (the DICOM window, or the image's robust
// percentiles), so this adjusts contrast and brightness of that 8-bit picture: it cannot bring
// back detail the first window clipped. True window/level on the stored values needs the DICOM
// in a PACS viewer (the help says so). Window centre and width are in display units 0-255.

export const IDENTITY = { center: 127.5, width: 255 };

/** Named starting points; "as analysed" shows image.png unchanged. */
export const PRESETS = [
  { id: "display", name: "As analysed", center: 127.5, width: 255 },
  { id: "contrast", name: "More contrast", center: 127.5, width: 160 },
  { id: "bone", name: "Bright structures (bone)", center: 175, width: 140 },
  { id: "soft", name: "Dark structures (soft tissue)", center: 80, width: 140 },
];

const MIN_WIDTH = 2;
const MAX_WIDTH = 512;

/** Clamp a window to what the lookup table can use. */
export function clampWindow({ center, width }) {
  return { center: Math.min(255, Math.max(0, center)),
    width: Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, width)) };
}

/** The lookup table: grey value -> displayed value, linear inside the window, clipped
 *  outside it (DICOM PS3.3 C.11.2.1.2, in display units), inverted when asked. */
export function lookupTable({ center, width }, invert = false) {
  const lut = new Uint8ClampedArray(256);
  const lo = center - width / 2;
  for (let v = 0; v < 256; v += 1) {
    const y = Math.round(((v - lo) / width) * 255);
    lut[v] = invert ? 255 - y : y;
  }
  return lut;
}

/** The grey picture in a canvas, repainted through a lookup table on demand. */
export class GreyPainter {
  constructor(canvas) {
    this.canvas = canvas;
    this.grey = null;
    this.out = null;
  }

  /** Keep the grey values of ``bitmap`` (its red channel) and paint it unchanged. */
  load(bitmap) {
    const { canvas } = this;
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(bitmap, 0, 0);
    const rgba = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
    this.grey = new Uint8Array(bitmap.width * bitmap.height);
    for (let i = 0, j = 0; i < this.grey.length; i += 1, j += 4) this.grey[i] = rgba.data[j];
    this.out = rgba;
  }

  /** Repaint with window ``w`` (``{center, width}``), inverted or not. */
  paint(w, invert = false) {
    if (!this.grey) return;
    const lut = lookupTable(w, invert);
    const packed = new Uint32Array(256);          // one RGBA word per grey value
    const probe = new Uint8ClampedArray(packed.buffer);
    for (let v = 0; v < 256; v += 1) {
      probe[4 * v] = lut[v]; probe[4 * v + 1] = lut[v]; probe[4 * v + 2] = lut[v];
      probe[4 * v + 3] = 255;
    }
    const words = new Uint32Array(this.out.data.buffer);
    const { grey } = this;
    for (let i = 0; i < grey.length; i += 1) words[i] = packed[grey[i]];
    this.canvas.getContext("2d").putImageData(this.out, 0, 0);
  }
}
