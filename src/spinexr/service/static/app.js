// spinexr browser UI: entry module. Plain ES modules, no build step, no third-party code.
// Runs under CSP "default-src 'self'": no inline script or style, no eval.
// Nothing that identifies a patient goes into the title, the URL (only the random analysis
// id does) or storage (only the API key, in sessionStorage). Patient identifiers are shown to
// the authenticated reader only, fetched from the service (identity.json) when it shows them.

import { analysisUrl, apiKey, ApiError, getJson, setApiKey, uploadFile } from "./api.js";
import { $, el, isoDateTime, pct, setStatus, showError } from "./dom.js";
import { renderModel, renderPanels, renderPatient, showsIdentifiers } from "./panels.js";
import { selectFinding, showImage, wireViewer } from "./viewer.js";

const PENDING = new Set(["queued", "pending", "running"]);
const HISTORY_PAGE = 20;
const EXPLAIN_NAMES = { gradcam: "Grad-CAM", ig: "Integrated gradients", saliency: "Saliency",
  lime: "LIME" };
const state = { current: null, cursor: null };

// ------------------------------------------------------------------ upload
async function handleFile(file) {
  if (!file) return;
  showError("");
  const explain = [...document.querySelectorAll("input[name=explain]:checked")].map((i) => i.value);
  const bar = $("upload-progress");
  bar.hidden = false;
  bar.value = 0;
  setStatus("Uploading\u2026");
  try {
    const result = await uploadFile(file, explain, (f) => {
      bar.value = Math.round(100 * f);
      setStatus(f < 1 ? `Uploading\u2026 ${Math.round(100 * f)}%` : "Analysing\u2026");
    });
    await showResult(await waitUntilDone(result));
  } catch (err) {
    setStatus("");
    showError(err.message || String(err));
  } finally {
    bar.hidden = true;
    $("file-input").value = "";
    refreshHistory();
  }
}

function ordinal(k) {
  const teen = k % 100 >= 11 && k % 100 <= 13;
  return `${k}${teen ? "th" : ({ 1: "st", 2: "nd", 3: "rd" })[k % 10] || "th"}`;
}

/** "Queued: 2nd in line, about 40 s" or "Analysing... about 5 s left", from the answer's
 *  queue_position (0 running, k-th in line) and estimated_wait_s (null: no estimate yet). */
function describeWait(r) {
  const k = r.queue_position;
  const s = typeof r.estimated_wait_s === "number"
    ? Math.max(1, Math.round(r.estimated_wait_s)) : null;
  if (typeof k === "number" && k >= 1) {
    return `Queued: ${k === 1 ? "next" : ordinal(k)} in line, `
      + (s === null ? "no estimate yet" : `about ${s} s`);
  }
  if (k === 0) return s === null ? "Analysing\u2026" : `Analysing\u2026 about ${s} s left`;
  return `Analysing\u2026 (${r.status})`;
}

/** Poll an analysis submitted with ?async=true until it has a result. */
async function waitUntilDone(result) {
  let r = result;
  for (let i = 0; r && PENDING.has(r.status) && !r.gate && i < 600; i += 1) {
    setStatus(describeWait(r));
    $("status").dataset.queuePosition = r.queue_position ?? "";
    await new Promise((ok) => { setTimeout(ok, 1000); });
    r = await getJson(analysisUrl(r.id));
  }
  if (r && !r.gate) {
    const e = r.error || {};
    const message = e.message || `The analysis ${r.status || "failed"}.`;
    throw new ApiError(500, e.code || "failed", message);
  }
  // The stored form adds what the POST answer lacks: the list of renditions and the time.
  return r && r.id && !r.links ? getJson(analysisUrl(r.id)) : r;
}

function wireUpload() {
  const zone = $("dropzone");
  $("file-input").addEventListener("change", (e) => handleFile(e.target.files[0]));
  for (const t of ["dragenter", "dragover"]) {
    zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  for (const t of ["dragleave", "drop"]) {
    zone.addEventListener(t, () => zone.classList.remove("over"));
  }
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    handleFile(e.dataTransfer && e.dataTransfer.files[0]);
  });
  // A file dropped anywhere else must not make the browser navigate away to it.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
}

function renderExplainChoices(methods) {
  if (!Array.isArray(methods) || !methods.length) return;
  const box = $("explain");
  const choice = (m) => el("label", {},
    el("input", { type: "checkbox", name: "explain", value: m, "data-testid": `explain-${m}` }),
    document.createTextNode(` ${EXPLAIN_NAMES[m] || m}`));
  box.replaceChildren(el("legend", { text: "Heatmaps (slower)" }), ...methods.map(choice));
}

// ------------------------------------------------------------------ showing a result
async function openAnalysis(id) {
  showError("");
  setStatus("Loading analysis\u2026");
  try {
    await showResult(await waitUntilDone(await getJson(analysisUrl(id))));
  } catch (err) {
    setStatus("");
    showError(err.message || String(err));
  }
}

async function showResult(r) {
  state.current = r;
  $("placeholder").hidden = true;
  $("result").hidden = false;
  const accepted = Boolean(r.gate && r.gate.accepted);
  $("result").dataset.accepted = String(accepted);
  $("refused").hidden = accepted;
  $("refused-reason").textContent = accepted ? "" : (r.gate && r.gate.reason) || "no reason given";
  $("toolbar").hidden = !accepted;
  if (r.pack && r.pack.synthetic) $("synthetic-banner").hidden = false;
  renderPanels(r);
  selectFinding(null);
  const identity = loadIdentity(r);
  markHistory(r.id);
  if (r.id) window.history.replaceState(null, "", `#analysis=${encodeURIComponent(r.id)}`);
  await Promise.all([showImage(r), identity]);
  const n = (r.findings || []).length;
  const regions = (r.grades || []).filter((g) => g.box).length;   // MRI: graded regions
  const decision = r.modality === "mri" ? `${regions} stenosis region(s) graded`
    : r.triage ? (r.triage.abnormal ? "abnormal" : "normal") : "no triage";
  const uncertain = accepted && r.gate.outcome === "uncertain" ? " (UNCERTAIN INPUT)" : "";
  setStatus(accepted ? `Analysis ready${uncertain}: ${decision}, ${n} finding${n === 1 ? "" : "s"}.`
    : `Image refused: ${$("refused-reason").textContent}`);
  $("result").dataset.ready = "true";
}

/** The patient bar: identity.json when the service shows identifiers and the input had them. */
async function loadIdentity(r) {
  if (!showsIdentifiers()) { renderPatient(null, "hidden"); return; }
  if (!r.id || !(r.links && "identity.json" in r.links)) { renderPatient(null, "none"); return; }
  renderPatient(null, "loading");
  try {
    const identity = await getJson(analysisUrl(r.id, "identity.json"));
    if (state.current === r) renderPatient(identity);
  } catch {
    if (state.current === r) renderPatient(null, "error");
  }
}

// ------------------------------------------------------------------ model and history
async function loadModel() {
  try {
    renderExplainChoices(renderModel(await getJson("/v1/models")));
    if (state.current) renderPanels(state.current);    // thresholds of the pack's points
  } catch (err) {
    $("model-info").textContent = "Model: unavailable";
    if (err.status === 401 || err.status === 403) showError(err.message);
  }
}

async function refreshHistory(more = false) {
  const cursor = more && state.cursor ? `&cursor=${encodeURIComponent(state.cursor)}` : "";
  const list = $("history-list");
  try {
    const page = await getJson(`/v1/analyses?limit=${HISTORY_PAGE}${cursor}`);
    const items = (page.items || []).map(historyItem);
    if (more) list.append(...items); else list.replaceChildren(...items);
    state.cursor = page.next_cursor || null;
    $("history-more").hidden = !state.cursor;
    $("history-empty").textContent = "No analyses yet.";
    $("history-empty").hidden = list.children.length > 0;
    if (state.current) markHistory(state.current.id);
  } catch (err) {
    if (!more) list.replaceChildren();
    $("history-empty").textContent = `History unavailable: ${err.message || err}`;
    $("history-empty").hidden = false;
  }
}

function historyItem(it) {
  let verdict = it.status || "unknown";
  if (it.status === "done" && typeof it.abnormal === "boolean") {
    verdict = it.abnormal ? "abnormal" : "normal";
  }
  const detail = [
    typeof it.probability === "number" ? pct(it.probability) : null,
    typeof it.n_findings === "number" && it.status === "done"
      ? `${it.n_findings} finding(s)` : null,
    // a done analysis shows its error code only when its results could not be delivered to
    // the PACS (the DICOM node dead-lettered them: error_code "delivery_failed")
    it.error_code && (it.status !== "done" || it.error_code === "delivery_failed")
      ? it.error_code.replace(/_/g, " ") : null,
    it.pack ? `${it.pack.name} ${it.pack.version}` : null,
  ].filter(Boolean).join(" \u00b7 ");
  const button = el("button", { type: "button", class: "history-item",
    "data-testid": "history-item", "data-id": it.id, "data-status": it.status },
  el("span", { class: `tag tag-${verdict}`, text: verdict }),
  el("span", { class: "when", text: isoDateTime(it.created) }),
  el("span", { class: "who", "data-testid": "history-who", text: who(it) }),
  el("span", { class: "detail", text: detail }));
  button.addEventListener("click", () => openAnalysis(it.id));
  return el("li", {}, button);
}

/** Who and which study a history entry is: patient, ID and study date (or the accession
 *  number); the analysis id's start when the service shows no identifiers. */
function who(it) {
  const p = it.identity;
  if (!p) return `Analysis ${String(it.id || "").slice(0, 8)}`;
  const name = [p.patient_name, p.patient_id].filter(Boolean).join(" \u00b7 ");
  const study = [p.study_date && p.study_date.slice(0, 10),
    p.accession_number && `acc. ${p.accession_number}`, p.view].filter(Boolean).join(" \u00b7 ");
  return [name, study].filter(Boolean).join(" \u2014 ") || `Analysis ${it.id.slice(0, 8)}`;
}

function markHistory(id) {
  for (const b of $("history-list").querySelectorAll("button")) {
    if (b.dataset.id === id) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  }
}

// ------------------------------------------------------------------ start
function wireKey() {
  $("api-key").value = apiKey();
  $("api-key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setApiKey($("api-key").value.trim());
    setStatus(apiKey() ? "API key saved for this browser tab." : "API key cleared.");
    showError("");
    loadModel();
    refreshHistory();
  });
  $("api-key-clear").addEventListener("click", () => {
    $("api-key").value = "";
    setApiKey("");
    setStatus("API key cleared.");
  });
}

async function start() {
  wireKey();
  wireUpload();
  wireViewer();
  $("history-refresh").addEventListener("click", () => refreshHistory());
  $("history-more").addEventListener("click", () => refreshHistory(true));
  refreshHistory();
  await loadModel();                 // whether identifiers are shown, the operating points
  const m = /^#analysis=([0-9A-Za-z_-]+)$/.exec(window.location.hash);
  if (m) openAnalysis(m[1]);
}

start();
