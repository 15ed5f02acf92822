// The panels beside the image: patient, triage, findings, grades, input check, downloads,
// metadata and the model's clinical summary.

import { analysisUrl, apiKey, saveAs } from "./api.js";
import {
  $, checkTitle, checkValue, colorOf, DASH, el, fillKv, gradeColor, IDENTITY_TITLES,
  isoDateTime, levelsUnconfirmed, levelText, num, opTitle, pct, showError, swatch, table,
} from "./dom.js";
import { selectFinding } from "./viewer.js";

const RENDITIONS = [
  ["report.html", "Report (HTML)"], ["result.json", "Result (JSON)"],
  ["overlay.png", "Overlay (PNG)"], ["image.png", "Image (PNG)"],
  ["sr.dcm", "DICOM SR"], ["gsps.dcm", "DICOM GSPS"], ["sc.dcm", "DICOM Secondary Capture"],
  ["boxes.xml", "Boxes (Pascal VOC)"],
];
/** What /v1/models said: the pack in use and its clinical summary. */
const model = { pack: null, clinical: null, showIdentifiers: false };

export function renderPanels(r) {
  renderWarnings(r);
  renderTriage(r);
  renderFindings(r);
  renderGrades(r);
  renderGate(r);
  renderDownloads(r);
  renderMetadata(r);
  $("disclaimer").textContent = r.disclaimer || "";
}

// ------------------------------------------------------------------ patient
/** The patient bar above the image. ``identity``: identity.json, or ``null`` with a reason:
 *  "hidden" (the service shows no identifiers), "none" (not DICOM), "error". */
export function renderPatient(identity, reason = "") {
  const rows = identity ? IDENTITY_TITLES.filter(([k]) => identity[k])
    .map(([k, title]) => [title, identity[k]]) : [];
  $("patient-kv").replaceChildren(...rows.map(([k, v]) => el("div", {},
    el("dt", { text: k }), el("dd", { text: v }))));
  $("patient-kv").hidden = !rows.length;
  const note = $("patient-note");
  note.textContent = rows.length ? "" : {
    hidden: "Patient identifiers are hidden on this service (research use).",
    none: "No patient identifiers: the upload was not a DICOM file.",
    error: "Patient identifiers cannot be shown: check the study in your PACS.",
    loading: "Loading patient identifiers\u2026",
  }[reason] || "No patient identifiers.";
  note.hidden = Boolean(rows.length);
  $("patient").dataset.state = rows.length ? "shown" : reason || "none";
}

export const showsIdentifiers = () => model.showIdentifiers;

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
    document.createTextNode(` \u2014 ${opTitle(t.operating_point)} operating point, `
      + `threshold ${pct(t.threshold)}`));
  const perModel = table(["Model", "Probability"],
    Object.entries(t.per_model || {}).map(([m, p]) => [m, pct(p)]), "triage-per-model");
  $("triage-body").replaceChildren(decision, summary, probabilityBar(t), perModel,
    operatingPoints(r));
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

/** Every operating point with its threshold: the one used from the result, the others from
 *  the pack in use when it is the pack that made this result. */
function operatingPoints(r) {
  const t = r.triage;
  const samePack = model.pack && r.pack && model.pack.name === r.pack.name
    && model.pack.version === r.pack.version;
  const thresholds = { ...(samePack && model.clinical ? model.clinical.operating_points : {}),
    [t.operating_point]: t.threshold };
  const decisions = t.decisions || {};
  const names = [...new Set([t.operating_point, ...Object.keys(decisions)])];
  return table(["Operating point", "Threshold", "Decision"], names.map((n) => [
    n === t.operating_point ? `${opTitle(n)} (used)` : opTitle(n),
    n in thresholds ? pct(thresholds[n]) : DASH,
    n in decisions ? (decisions[n] ? "abnormal" : "normal") : DASH,
  ]), "triage-operating-points");
}

// ------------------------------------------------------------------ findings and grades
function renderFindings(r) {
  const rows = (r.findings || []).map((f, i) => {
    const size = f.size_mm ? `${num(f.size_mm[0], 1)} \u00d7 ${num(f.size_mm[1], 1)}` : DASH;
    const row = el("tr", { "data-testid": "finding-row", "data-index": i, "data-label": f.label,
      tabindex: 0, "aria-selected": "false" },
    el("td", {}, swatch(colorOf(f.label)), document.createTextNode(f.label)),
    el("td", { text: num(f.score) }), el("td", { text: levelText(r, f.level) || DASH }),
    el("td", { text: size }));
    row.addEventListener("click", () => selectFinding(i));
    row.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); selectFinding(i); }
    });
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

/** Where a grade applies: the MR region, the level of the window that drove it, or the
 *  whole image. */
function gradeWhere(g, r) {
  if (!g.box) return "whole image";
  if (r.modality === "mri" || !g.level) return g.region || "window";
  return levelText(r, g.level);
}

function renderGrades(r) {
  const grades = r.grades || [];
  if (!grades.length) {
    $("grades-body").replaceChildren(el("p", { class: "muted", text: "No grades." }));
    return;
  }
  const probs = (g) => Object.entries(g.probabilities || {}).map(([k, p]) => `${k} ${pct(p)}`)
    .join(", ");
  const grade = (g) => el("span", {}, swatch(gradeColor(g.label)),
    document.createTextNode(g.label));
  if (r.modality === "mri") {       // one graded region per row, in its grade colour
    $("grades-body").replaceChildren(table(["Region", "Grade", "Probabilities"], grades.map(
      (g) => [g.region || g.task, grade(g), probs(g)]), "grades-table"));
    return;
  }
  $("grades-body").replaceChildren(table(["Task", "Grade", "Where", "Probabilities"],
    grades.map((g) => [g.task, grade(g), gradeWhere(g, r), probs(g)]), "grades-table"));
}

// ------------------------------------------------------------------ input check
/** The gate's verdict in words; its measurements behind a details toggle, with plain names. */
function renderGate(r) {
  const g = r.gate;
  if (!g) { $("gate-body").replaceChildren(); return; }
  const p = typeof g.p_spine === "number" ? ` (P(spine radiograph) ${pct(g.p_spine)})` : "";
  const verdict = el("p", { "data-testid": "gate-verdict" },
    el("strong", { text: `Input ${g.outcome || (g.accepted ? "accepted" : "refused")}` }),
    document.createTextNode(`: ${g.reason || ""}${p}`));
  const checks = Object.entries(g.checks || {});
  if (!checks.length) { $("gate-body").replaceChildren(verdict); return; }
  const details = el("details", { "data-testid": "gate-details" },
    el("summary", { text: "Technical checks" }),
    table(["Check", "Value"], checks.map(([k, v]) => [checkTitle(k), checkValue(k, v)]),
      "gate-checks"));
  $("gate-body").replaceChildren(verdict, details);
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
  const rows = [];
  if (r.modality) rows.push(["Kind", r.modality === "mri" ? "MR slice" : "Radiograph"]);
  if (r.image_size) rows.push(["Image size (px)", `${r.image_size[0]} \u00d7 ${r.image_size[1]}`]);
  if (r.spacing_mm) {
    const [dy, dx] = r.spacing_mm;
    rows.push(["Pixel spacing (mm)", `${num(dy, 3)} \u00d7 ${num(dx, 3)}`]);
  }
  if (r.created) rows.push(["Analysed", isoDateTime(r.created)]);
  if (r.pack) {
    const synthetic = r.pack.synthetic ? " (synthetic)" : "";
    rows.push(["Model pack", `${r.pack.name} ${r.pack.version}${synthetic}`]);
  }
  if (r.status) rows.push(["Status", r.status]);
  if (r.id) rows.push(["Analysis id", r.id]);
  fillKv($("metadata"), rows);
}

/** Show the pack of ``/v1/models`` (``{"pack": {...}, "clinical": {...}}``, or the pack
 *  itself): name, version and the clinical summary; never the card's command lines. */
export function renderModel(body) {
  const m = (body && body.pack) || body || {};
  const clinical = (body && body.clinical) || {};
  Object.assign(model, { pack: m, clinical,
    showIdentifiers: Boolean(body && body.show_identifiers) });
  $("model-info").textContent = `Model: ${m.name} ${m.version}${m.synthetic ? " (synthetic)" : ""}`;
  const card = m.card || {};
  const intended = clinical.intended_use || card.intended_use;
  $("intended-use").textContent = intended
    ? `Intended use: ${intended}` : "The model card states no intended use.";
  fillKv($("model-card"), [["Pack", `${m.name} ${m.version}`]]);
  const section = (title, text) => (text ? [el("h4", { text: title }), el("p", { text })] : []);
  const perf = (clinical.performance || []).map((p) => el("li", {},
    el("strong", { text: `${p.title}: ` }), document.createTextNode(p.text)));
  $("model-summary").replaceChildren(
    ...section("Training data", clinical.training_data || card.training_data),
    ...(perf.length ? [el("h4", { text: "Measured performance (the pack's test images)" }),
      el("ul", { "data-testid": "model-performance" }, ...perf)] : []),
    ...section("Limitations", clinical.limitations || card.limitations),
    ...section("Licence and attribution", clinical.licence || card.licence));
  if (m.synthetic) $("synthetic-banner").hidden = false;
  return body && body.explain_methods;
}
