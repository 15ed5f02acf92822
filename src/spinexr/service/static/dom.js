// DOM helpers and formatting shared by the UI modules. No inline styles in markup (CSP):
// colours and sizes are set through the CSSOM (element.style), which the policy allows.

const SVG_NS = "http://www.w3.org/2000/svg";

// Same colours as spinexr.report.overlay.CLASS_COLORS (Okabe-Ito, colour-blind safe).
export const CLASS_COLORS = {
  "Osteophytes": "#e69f00",
  "Disc space narrowing": "#56b4e9",
  "Surgical implant": "#009e73",
  "Foraminal stenosis": "#f0e442",
  "Spondylolisthesis": "#0072b2",
  "Vertebral collapse": "#d55e00",
  "Other lesions": "#cc79a7",
};
export const colorOf = (label) => CLASS_COLORS[label] || "#ffffff";
// Same colours as spinexr.report.overlay.GRADE_COLORS: stenosis grades of MRI regions.
// Also the other grade names of spinexr.report.overlay.grade_tag_color (degeneration).
export const GRADE_COLORS = { normal: "#009e73", mild: "#f0e442", moderate: "#e69f00",
  severe: "#d55e00", healthy: "#009e73", doubtful: "#56b4e9", minimal: "#f0e442" };
export const gradeColor = (label) => GRADE_COLORS[label] || "#ffffff";

export const $ = (id) => document.getElementById(id);

/** ``el("td", {text: "x", "data-testid": "y"}, ...children)``; false/null attributes are
 *  left out. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  node.append(...children);
  return node;
}

export function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

export function swatch(color) {
  const s = el("span", { class: "swatch", "aria-hidden": "true" });
  s.style.background = color;
  return s;
}

export const DASH = "\u2013";
export const pct = (p) => (p === null || p === undefined ? DASH : `${(100 * p).toFixed(1)}%`);
export const num = (x, d = 2) => (x === null || x === undefined ? DASH : Number(x).toFixed(d));
export const humanize = (k) => k.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());

/** Whether the level names of result ``r`` were counted from an assumed end of the column. */
export const levelsUnconfirmed = (r) => Boolean(r && r.gate && r.gate.accepted && r.levels
  && r.levels.confirmed === false);
/** A level name as shown: ``"L4?"`` when counted, unconfirmed (as in overlay.png and GSPS). */
export const levelText = (r, level) => (level && levelsUnconfirmed(r) ? `${level}?` : level);

/** A table with a header row; ``rows`` are arrays of strings or nodes. */
export function table(headers, rows, testid) {
  const cell = (c) => (c instanceof Node ? el("td", {}, c) : el("td", { text: c }));
  return el("table", { class: "grid", "data-testid": testid },
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map(cell)))));
}

/** Fill a <dl> with [term, value] pairs. */
export function fillKv(dl, rows) {
  dl.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
}

export function setStatus(text) { $("status").textContent = text; }

export function showError(text) {
  $("error").textContent = text || "";
  $("error").hidden = !text;
}

// ------------------------------------------------------------------ plain clinical words
// Same words as spinexr.report.wording (tests/service/test_ui_viewer.py compares them).
export const OPERATING_POINT_TITLES = {
  youden: "balanced",
  balanced: "balanced",
  high_sensitivity: "high sensitivity",
  sensitive: "high sensitivity",
  high_specificity: "high specificity",
  specific: "high specificity",
};
export const opTitle = (name) => OPERATING_POINT_TITLES[name] || String(name).replace(/_/g, " ");

export const GATE_CHECK_TITLES = {
  width: "Image width (pixels)",
  height: "Image height (pixels)",
  std: "Contrast (spread of grey values, 0-0.5)",
  saturated: "Pixels pure black or white",
  gray_levels: "Distinct grey levels",
  header: "What the DICOM header says",
  classifier_logit: "Spine classifier score (log-odds)",
  level_region: "Spine region used to name levels",
  vertebrae_detected: "Vertebrae detected",
  vertebra_chain: "Vertebrae in the longest column",
  vertebra_chain_confident: "Confident vertebrae in that column",
  vertebra_top3_score: "Mean score of the 3 best vertebrae",
  adjacent_body_pairs: "Adjacent vertebral body pairs",
};
export const checkTitle = (key) => GATE_CHECK_TITLES[key] || humanize(String(key));

/** A gate check's value as shown (fractions of "saturated" as a percentage). */
export function checkValue(key, v) {
  if (v === null || v === undefined) return DASH;
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "number" && !Number.isInteger(v)) {
    return key === "saturated" ? `${(100 * v).toFixed(1)}%` : String(Number(v.toPrecision(3)));
  }
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

// ------------------------------------------------------------------ dates: ISO 8601 only
const pad = (n) => String(n).padStart(2, "0");
/** "2024-05-01 13:05" (local time) from an ISO timestamp; "" when there is none. */
export function isoDateTime(value) {
  if (!value) return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `
    + `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// ------------------------------------------------------------------ patient identifiers
// Titles of identity.json's fields, in the order shown (spinexr.report.identity.TITLES).
export const IDENTITY_TITLES = [
  ["patient_name", "Patient"], ["patient_id", "Patient ID"], ["birth_date", "Born"],
  ["sex", "Sex"], ["study_date", "Study date"], ["accession_number", "Accession"],
  ["study_description", "Study"], ["series_description", "Series"], ["view", "View"],
  ["body_part", "Body part"],
];
