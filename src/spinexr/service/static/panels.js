// The panels beside the image: triage, findings, grades, downloads, metadata and model card.

import { analysisUrl, apiKey, saveAs } from "./api.js";
import {
  $, colorOf, DASH, el, fillKv, humanize, levelsUnconfirmed, levelText, num, pct, showError,
  gradeColor, swatch, table,
} from "./dom.js";
import { highlightBox } from "./viewer.js";

const RENDITIONS = [
  ["report.html", "Report (HTML)"], ["result.json", "Result (JSON)"],
  ["overlay.png", "Overlay (PNG)"], ["image.png", "Image (PNG)"],
  ["sr.dcm", "DICOM SR"], ["gsps.dcm", "DICOM GSPS"], ["sc.dcm", "DICOM Secondary Capture"],
  ["boxes.xml", "Boxes (Pascal VOC)"],
];

export function renderPanels(r) {
  renderWarnings(r);
  renderTriage(r);
  renderFindings(r);
  renderGrades(r);
  renderDownloads(r);
  renderMetadata(r);
  $("disclaimer").textContent = r.disclaimer || "";
}

// ------------------------------------------------------------------ warnings
/** result.json's ``warnings`` (uncertain input, levels counted, unconfirmed) above the image. */
function renderWarnings(r) {
  const warnings = Array.isArray(r.warnings) ? r.warnings : [];
  $("warnings-list").replaceChildren(...warnings.map((w) => el("li", { text: w })));
  $("warnings").hidden = !warnings.length;
  $("warnings").dataset.outcome = (r.gate && r.gate.outcome) || "";
}

// ------------------------------------------------------------------ triage
function renderTriage(r) {
  const t = r.triage;
  if (!t) {
    const why = r.gate && !r.gate.accepted ? "Not run: the image was refused."
      : "No triage model in this pack.";
    $("triage-body").replaceChildren(
      el("p", { class: "muted", "data-testid": "triage-none", text: why }));
    return;
  }
  const decision = el("p", { class: `decision ${t.abnormal ? "abnormal" : "normal"}`,
    "data-testid": "triage-decision", text: t.abnormal ? "Abnormal" : "Normal" });
  const summary = el("p", { "data-testid": "triage-fused" },
    el("strong", { text: `Fused probability ${pct(t.probability)}` }),
    document.createTextNode(` \u2014 operating point \u201c${t.operating_point}\u201d, `
      + `threshold ${pct(t.threshold)}`));
  const perModel = table(["Model", "Probability"],
    Object.entries(t.per_model || {}).map(([m, p]) => [m, pct(p)]), "triage-per-model");
  $("triage-body").replaceChildren(decision, summary, probabilityBar(t), perModel,
    operatingPoints(t));
}

function probabilityBar(t) {
  const bar = el("div", { class: "pbar", role: "img",
    "aria-label": `fused probability ${pct(t.probability)}, threshold ${pct(t.threshold)}` });
  const fill = el("span", { class: "fill" });
  const mark = el("span", { class: "mark" });
  fill.style.width = `${100 * t.probability}%`;
  mark.style.left = `${100 * t.threshold}%`;
  bar.append(fill, mark);
  return bar;
}

function operatingPoints(t) {
  const thresholds = t.operating_points || {};
  const decisions = t.decisions || {};
  const names = [...new Set([...Object.keys(decisions), ...Object.keys(thresholds)])];
  return table(["Operating point", "Threshold", "Decision"], names.map((n) => [
    n === t.operating_point ? `${n} (used)` : n,
    n in thresholds ? pct(thresholds[n]) : DASH,
    n in decisions ? (decisions[n] ? "abnormal" : "normal") : DASH,
  ]), "triage-operating-points");
}

// ------------------------------------------------------------------ findings and grades
function renderFindings(r) {
  const rows = (r.findings || []).map((f, i) => {
    const size = f.size_mm ? `${num(f.size_mm[0], 1)} \u00d7 ${num(f.size_mm[1], 1)}` : DASH;
    const row = el("tr", { "data-testid": "finding-row", "data-index": i, "data-label": f.label },
      el("td", {}, swatch(colorOf(f.label)), document.createTextNode(f.label)),
      el("td", { text: num(f.score) }), el("td", { text: levelText(r, f.level) || DASH }),
      el("td", { text: size }));
    row.addEventListener("mouseenter", () => highlightBox(i, true));
    row.addEventListener("mouseleave", () => highlightBox(i, false));
    return row;
  });
  if (!rows.length) {
    rows.push(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "No findings." })));
  }
  $("findings-body").replaceChildren(...rows);
  renderLevelNote(r);
}

/** How the level names were found, under the findings table (when a finding has a level). */
function renderLevelNote(r) {
  const note = $("level-note");
  const named = (r.findings || []).some((f) => f.level);
  note.hidden = !(r.levels && r.levels.note && named);
  if (note.hidden) return;
  const unconfirmed = levelsUnconfirmed(r);
  note.textContent = unconfirmed ? `? = ${r.levels.note}`
    : `${r.levels.note.charAt(0).toUpperCase()}${r.levels.note.slice(1)}.`;
  note.classList.toggle("unconfirmed", unconfirmed);
}

function renderGrades(r) {
  const grades = r.grades || [];
  if (!grades.length) {
    $("grades-body").replaceChildren(el("p", { class: "muted", text: "No grades." }));
    return;
  }
  const probs = (g) => Object.entries(g.probabilities || {}).map(([k, p]) => `${k} ${pct(p)}`)
    .join(", ");
  if (grades.some((g) => g.region)) {   // MRI: one graded region per row, in its grade colour
    $("grades-body").replaceChildren(table(["Region", "Grade", "Probabilities"], grades.map(
      (g) => [g.region || g.task, el("span", {}, swatch(gradeColor(g.label)),
        document.createTextNode(g.label)), probs(g)]), "grades-table"));
    return;
  }
  $("grades-body").replaceChildren(table(["Task", "Grade", "Probabilities"], grades.map((g) => [
    g.task, g.label, probs(g),
  ]), "grades-table"));
}

// ------------------------------------------------------------------ downloads
/** The renditions this analysis has: the service's ``links`` when given, else guessed. */
function available(r) {
  const heatmaps = [...new Set((r.heatmaps || []).map((h) => `heatmap/${h.method}.png`))];
  if (r.links) return [...RENDITIONS.map(([n]) => n), ...heatmaps].filter((n) => n in r.links);
  const outputs = new Set(r.outputs || []);
  return [...RENDITIONS.map(([n]) => n), ...heatmaps]
    .filter((n) => !n.endsWith(".dcm") || !outputs.size || outputs.has(n));
}

function renderDownloads(r) {
  const names = r.id ? available(r) : [];
  const titles = Object.fromEntries(RENDITIONS);
  $("downloads").replaceChildren(...names.map((name) => {
    const text = titles[name] || `Heatmap ${name.slice(8, -4)} (PNG)`;
    const file = `spinexr-${r.id.slice(0, 8)}-${name.replace("/", "-")}`;
    const a = el("a", { href: analysisUrl(r.id, name), download: file, class: "button small",
      "data-testid": `download-${name.replace("/", "-")}`, text });
    a.addEventListener("click", (e) => {
      if (!apiKey()) return;             // dev mode: the browser follows the plain link
      e.preventDefault();                // a link cannot send the key: fetch, then save
      saveAs(a.getAttribute("href"), file)
        .catch((err) => showError(`Download of ${name} failed: ${err.message}`));
    });
    return el("li", {}, a);
  }));
  if (!names.length) {
    $("downloads").append(el("li", { class: "muted", text: "Nothing to download." }));
  }
  $("notes").replaceChildren(...(r.notes || []).map((n) => el("li", { text: n })));
}

// ------------------------------------------------------------------ metadata and model
function renderMetadata(r) {
  const rows = Object.entries(r.meta || {})
    .filter(([, v]) => v !== null && v !== undefined && v !== "" && typeof v !== "object")
    .map(([k, v]) => [humanize(k), String(v)]);
  if (r.image_size) rows.push(["Image size (px)", `${r.image_size[0]} \u00d7 ${r.image_size[1]}`]);
  if (r.spacing_mm) {
    const [dy, dx] = r.spacing_mm;
    rows.push(["Pixel spacing (mm)", `${num(dy, 3)} \u00d7 ${num(dx, 3)}`]);
  }
  if (r.created) rows.push(["Analysed", new Date(r.created).toLocaleString()]);
  if (r.pack) {
    const synthetic = r.pack.synthetic ? " (synthetic)" : "";
    rows.push(["Model pack", `${r.pack.name} ${r.pack.version}${synthetic}`]);
  }
  if (r.status) rows.push(["Status", r.status]);
  if (r.id) rows.push(["Analysis id", r.id]);
  fillKv($("metadata"), rows);
}

/** Show the model card of ``/v1/models`` (``{"pack": {...}}`` or the pack itself). */
export function renderModel(body) {
  const m = (body && body.pack) || body || {};
  $("model-info").textContent = `Model: ${m.name} ${m.version}${m.synthetic ? " (synthetic)" : ""}`;
  const card = m.card || {};
  $("intended-use").textContent = card.intended_use
    ? `Intended use: ${card.intended_use}` : "The model card states no intended use.";
  const rows = [["Pack", `${m.name} ${m.version}`]];
  for (const [k, v] of Object.entries(card)) {
    if (k !== "intended_use" && (typeof v === "string" || typeof v === "number")) {
      rows.push([humanize(k), String(v)]);
    }
  }
  fillKv($("model-card"), rows);
  if (m.synthetic) $("synthetic-banner").hidden = false;
  return body && body.explain_methods;
}
