// Keyboard shortcuts and mouse controls of the viewer: one table, used both to handle keys
// and to write the help dialog, so the help always says what the keys do.

import { $, el } from "./dom.js";

/** [keys shown, what it does, action name, the KeyboardEvent.key values]. */
export const SHORTCUTS = [
  ["F", "Fit the image to the viewer", "fit", ["f", "F"]],
  ["1", "One image pixel per screen pixel (1:1)", "actual", ["1"]],
  ["+ / \u2212", "Zoom in / out", "zoomIn|zoomOut", ["+", "=", "-", "_"]],
  ["Arrow keys", "Pan (Shift: faster)", "pan", ["ArrowLeft", "ArrowRight", "ArrowUp",
    "ArrowDown"]],
  ["W", "Left drag adjusts contrast instead of panning (on/off)", "wlMode", ["w", "W"]],
  ["P", "Next contrast preset", "preset", ["p", "P"]],
  ["I", "Invert grey values", "invert", ["i", "I"]],
  ["R", "Reset contrast", "resetWl", ["r", "R"]],
  ["N / Shift+N", "Next / previous finding (highlights its box)", "next|previous",
    ["n", "N"]],
  ["B", "Boxes of all classes on/off", "boxes", ["b", "B"]],
  ["L", "Labels on/off", "labels", ["l", "L"]],
  ["H", "Heatmap on/off", "heatmap", ["h", "H"]],
  ["[ / ]", "Heatmap opacity down / up", "opacityDown|opacityUp", ["[", "]"]],
  ["Esc", "Clear the highlight, close this help", "escape", ["Escape"]],
  ["?", "This help", "help", ["?"]],
];

export const MOUSE = [
  ["Wheel", "Zoom about the pointer"],
  ["Drag", "Pan (in contrast mode: adjust contrast)"],
  ["Right drag", "Contrast: left/right = window width (contrast), up/down = level (brightness)"],
  ["Click a box or a finding in the list", "Highlight it in both"],
];

const PAN_STEP = 60;

const CLICKABLE = new Set(["checkbox", "radio", "button", "submit", "reset", "file", "range"]);

/** Whether key ``e`` belongs to the form control it was typed into: text fields, lists,
 *  arrows on a slider, space and Enter on buttons and boxes. */
function ownKey(e) {
  const t = e.target;
  if (!t || !t.tagName) return false;
  if (t.isContentEditable || t.tagName === "TEXTAREA" || t.tagName === "SELECT") return true;
  if (t.tagName === "INPUT" && !CLICKABLE.has(t.type)) return true;
  if (t.type === "range" && e.key.startsWith("Arrow")) return true;
  return (e.key === " " || e.key === "Enter") && /^(INPUT|BUTTON|A|SUMMARY|TR)$/.test(t.tagName);
}

/** Route keys to ``actions`` (an object of functions named as in SHORTCUTS). Keys that belong
 *  to a form control, and keys with Ctrl/Alt/Meta, are left to the browser. */
export function wireKeys(actions, isActive) {
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.altKey || e.metaKey || !isActive()) return;
    if (ownKey(e) && e.key !== "Escape") return;
    const name = actionOf(e);
    if (!name || !actions[name]) return;
    e.preventDefault();
    actions[name](e);
  });
}

function actionOf(e) {
  const k = e.key;
  if (k === "+" || k === "=") return "zoomIn";
  if (k === "-" || k === "_") return "zoomOut";
  if (k === "[") return "opacityDown";
  if (k === "]") return "opacityUp";
  if (k === "n" || k === "N") return e.shiftKey ? "previous" : "next";
  const row = SHORTCUTS.find((s) => s[3].includes(k));
  return row ? row[2] : null;
}

/** The pan of an arrow key event, in screen pixels. */
export function arrowDelta(e) {
  const step = e.shiftKey ? 4 * PAN_STEP : PAN_STEP;
  return { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step],
    ArrowDown: [0, -step] }[e.key] || [0, 0];
}

/** Fill the help dialog from the tables above and the note on contrast. */
export function renderHelp() {
  const rows = (list) => list.map(([k, what]) => el("tr", {},
    el("th", { scope: "row" }, el("kbd", { text: k })), el("td", { text: what })));
  $("help-body").replaceChildren(
    el("h3", { text: "Mouse" }),
    el("table", { class: "grid keys", "data-testid": "help-mouse" },
      el("tbody", {}, ...rows(MOUSE))),
    el("h3", { text: "Keyboard" }),
    el("table", { class: "grid keys", "data-testid": "help-keys" },
      el("tbody", {}, ...rows(SHORTCUTS))),
    el("h3", { text: "About contrast (window/level)" }),
    el("p", { "data-testid": "help-wl", text: "The viewer shows image.png, an 8-bit picture "
      + "that already carries the analysis's window (the DICOM window, or the image's own "
      + "range). Contrast and presets here stretch or shift those 256 grey levels: they "
      + "cannot bring back detail the first window clipped. True window/level on the stored "
      + "values needs the DICOM in a PACS viewer." }),
    el("p", { class: "muted", text: "The display image is at most 2048 pixels on its long "
      + "side, so 1:1 means one pixel of that picture per screen pixel; boxes are drawn "
      + "from the source coordinates in result.json." }));
}
