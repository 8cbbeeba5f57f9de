// The runs the server holds, as a list that survives a reload (GET /api/runs): any finished run reopens in the
// unit view (GET /api/runs/{id}/view); pins live in the URL (#...&pins=id,sweep/id), so that a reload or a shared
// URL restores them; long downloads (exports) show their progress.

import { $, fmt, state } from "./state.js";
import { openStoredRun } from "./app.js";
import { pinRun } from "./compare.js";
import { curvesOf, unpackFrame } from "./unpack.js";

const viewUrl = (key) => {
  const [sweep, runId] = key.includes("/") ? key.split("/") : [null, key];
  return sweep ? `/api/sweeps/${encodeURIComponent(sweep)}/runs/${runId}` : `/api/runs/${runId}/view`;
};

export async function reopenRun(runId) {
  const answer = await fetch(viewUrl(runId));
  if (!answer.ok) return false;
  openStoredRun(await answer.json(), null);
  return true;
}

// the server's runs, newest first; a finished one is a button that reopens it
export async function refreshHistory() {
  const answer = await fetch("/api/runs");
  if (!answer.ok) return;
  const runs = (await answer.json()).sort((a, b) => (b.created ?? 0) - (a.created ?? 0));
  $("#history").replaceChildren(...runs.map((r) => {
    const li = document.createElement("li");
    const act = r.final ? `, activation ${fmt(r.final.activation[0])}` : "";
    const text = `${r.run_id}: unit ${Array.isArray(r.unit) ? r.unit.join(", ") : r.unit}, ${r.method}, ${r.step}/${r.steps} steps, ${r.status}${act}`;
    if (!r.final) return Object.assign(li, { textContent: text });
    const open = Object.assign(document.createElement("button"), { type: "button", className: "linklike", textContent: text,
      title: "open this run in the unit view" });
    open.dataset.run = r.run_id;
    open.addEventListener("click", () => reopenRun(r.run_id));
    li.append(open);
    return li;
  }));
  $("#history-empty").hidden = runs.length > 0;
}

// the pins as URL keys: a live run's id, or sweep/id for a stored sweep's run
export function pinKeys() {
  return state.pinned.map((p) => (p.stored ? `${p.stored.sweep}/${p.stored.runId}` : p.id)).filter(Boolean);
}

export async function restorePins(keys) {
  for (const key of keys) {
    const answer = await fetch(viewUrl(key));
    if (!answer.ok) continue;  // a run the server no longer holds
    const payload = await answer.json();
    const frame = unpackFrame(payload.frame), curves = curvesOf(payload.curves);
    const [sweep, runId] = key.includes("/") ? key.split("/") : [null, key];
    const record = payload.config.layer === state.layer ? state.units.find((u) => u.unit === payload.unit) ?? null : null;
    pinRun({ id: sweep ? null : runId, stored: sweep ? { sweep, runId } : null, config: payload.config, record,
      checks: payload.checks }, frame, curves);
  }
}

// fetch a zip with the seconds it takes shown in `status`, then save it
export async function downloadWithProgress(href, filename, what, status) {
  const started = performance.now();
  const tick = () => { status.textContent = `preparing ${what}… ${Math.round((performance.now() - started) / 1000)} s`; };
  tick();
  const timer = setInterval(tick, 500);
  try {
    const answer = await fetch(href);
    if (!answer.ok) {
      const body = await answer.json().catch(() => ({}));
      status.textContent = `export failed (${answer.status}): ${typeof body.detail === "string" ? body.detail : answer.statusText}`;
      return;
    }
    const url = URL.createObjectURL(await answer.blob());
    const link = Object.assign(document.createElement("a"), { href: url, download: filename });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    status.textContent = `${what}: ready in ${Math.round((performance.now() - started) / 1000)} s`;
  } finally {
    clearInterval(timer);
  }
}
