// Talking to the spinexr service: the API key, JSON calls, blobs, and the upload with progress.
// Errors are always ApiError with the server's {"error": {"code", "message"}} when it sent one.

const KEY_STORE = "spinexr.apiKey";          // sessionStorage: gone when the tab closes

export function apiKey() { return sessionStorage.getItem(KEY_STORE) || ""; }

export function setApiKey(value) {
  if (value) sessionStorage.setItem(KEY_STORE, value); else sessionStorage.removeItem(KEY_STORE);
}

function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

export class ApiError extends Error {
  constructor(status, code, message, analysisId = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.analysisId = analysisId;
  }
}

function errorFrom(status, body) {
  const err = body && body.error;
  if (err && err.message) {
    return new ApiError(status, err.code || "error", err.message, err.analysis_id || null);
  }
  if (body && typeof body.detail === "string") return new ApiError(status, "error", body.detail);
  if (status === 401 || status === 403) {
    return new ApiError(status, "unauthorized", "Not authorised: enter a valid API key.");
  }
  return new ApiError(status, `http_${status}`, `The server answered HTTP ${status}.`);
}

async function jsonOrNull(res) {
  try { return await res.json(); } catch { return null; }
}

/** GET a JSON document. */
export async function getJson(path) {
  const res = await fetch(path, { headers: { Accept: "application/json", ...authHeaders() } });
  const body = await jsonOrNull(res);
  if (!res.ok) throw errorFrom(res.status, body);
  return body;
}

/** GET any file as a Blob (with the API key, which a plain <img> or <a> cannot send). */
export async function getBlob(path) {
  const res = await fetch(path, { headers: authHeaders() });
  if (!res.ok) throw errorFrom(res.status, await jsonOrNull(res));
  return res.blob();
}

export const analysisUrl = (id, name = "") =>
  `/v1/analyses/${encodeURIComponent(id)}${name ? `/${name}` : ""}`;

/** POST ``file`` with XMLHttpRequest, which (unlike fetch) reports upload progress.
 *  ``onProgress`` gets a fraction in [0, 1]; the promise resolves with the result JSON. */
export function uploadFile(file, explain, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    // Asynchronous: the answer (202) names the analysis and its place in the queue at once,
    // and the page polls it, showing the place and the estimated wait, until it is done.
    const query = explain.length ? `&explain=${explain.map(encodeURIComponent).join(",")}` : "";
    xhr.open("POST", `/v1/analyses?async=true${query}`);
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.upload.addEventListener("load", () => onProgress(1));
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response);
      else reject(errorFrom(xhr.status, xhr.response));
    });
    xhr.addEventListener("error", () => reject(
      new ApiError(0, "network", "Upload failed: the service cannot be reached.")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "aborted", "Upload cancelled.")));
    const form = new FormData();
    // The user's file name may hold a patient's name: send only its extension.
    form.append("file", file, `upload${extensionOf(file.name)}`);
    xhr.send(form);
  });
}

function extensionOf(name) {
  const m = /\.[A-Za-z0-9]{1,6}$/.exec(name || "");
  return m ? m[0].toLowerCase() : "";
}

/** Save a file the service serves as a download called ``filename``. */
export async function saveAs(path, filename) {
  const url = URL.createObjectURL(await getBlob(path));
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
