// The heatmap layer: the explanation's values (heat/<method>.png: 8-bit grey, the size of
// image.png) coloured with viridis and drawn transparent where the value is low, so the
// radiograph shows through; the opacity slider scales the whole layer. The colour bar is drawn
// from the same table, so colours and scale always agree.

// viridis at 11 evenly spaced stops: the same as spinexr.report.overlay._VIRIDIS.
export const VIRIDIS = [[68, 1, 84], [72, 36, 117], [65, 68, 135], [53, 95, 141],
  [42, 120, 142], [33, 145, 140], [34, 168, 132], [68, 191, 112], [122, 209, 81],
  [189, 223, 38], [253, 231, 37]];

/** viridis interpolated to 256 RGB entries (as spinexr.report.overlay.colormap). */
export function viridis256() {
  const out = [];
  const n = VIRIDIS.length - 1;
  for (let v = 0; v < 256; v += 1) {
    const pos = (v / 255) * n;
    const lo = Math.min(Math.floor(pos), n - 1);
    const t = pos - lo;
    out.push(VIRIDIS[lo].map((c, k) => Math.round(c * (1 - t) + VIRIDIS[lo + 1][k] * t)));
  }
  return out;
}

const TABLE = viridis256();

/** Paint ``bitmap`` (grey heat values) into ``canvas`` as coloured heat; ``blended``: the
 *  bitmap is already a picture (an older analysis's heatmap/<method>.png): draw it as it is. */
export function paintHeat(canvas, bitmap, blended = false) {
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  if (blended) return;
  const img = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  const d = img.data;
  for (let i = 0; i < d.length; i += 4) {
    const v = d[i];
    const [r, g, b] = TABLE[v];
    d[i] = r; d[i + 1] = g; d[i + 2] = b;
    d[i + 3] = v;                       // alpha follows the value: cold areas stay clear
  }
  ctx.putImageData(img, 0, 0);
}

/** The colour bar: low (left) to high (right). */
export function drawColorbar(canvas) {
  const ctx = canvas.getContext("2d");
  for (let x = 0; x < canvas.width; x += 1) {
    const [r, g, b] = TABLE[Math.round((x / Math.max(1, canvas.width - 1)) * 255)];
    ctx.fillStyle = `rgb(${r}, ${g}, ${b})`;
    ctx.fillRect(x, 0, 1, canvas.height);
  }
}
