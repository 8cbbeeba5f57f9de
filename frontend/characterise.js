// "Characterise": the selected unit of the browsed layer measured as a physiologist would (GET
// /api/units/{unit}/characterisation?layer=..., seconds the first time): grating tuning, F1/F0, odd share, contrast
// response, each with a one-line reading, the figure (…/characterisation.png) and its files (…/characterisation.zip).
// A result belongs to one layer and unit: choosing another clears it, and a late answer for an old one is dropped.

import { $, state } from "./state.js";

const query = (layer) => `layer=${encodeURIComponent(layer)}`;

function table(readings) {
  const rows = readings.map(({ measure, value, reading }) => {
    const tr = document.createElement("tr");
    for (const [tag, text] of [["th", measure], ["td", value], ["td", reading]]) {
      tr.append(Object.assign(document.createElement(tag), { textContent: text }));
    }
    return tr;
  });
  const t = document.createElement("table");
  t.append(...rows);
  return t;
}

export async function characteriseUnit() {
  const unit = state.selected, layer = state.layer, started = performance.now();
  const section = $("#characterisation"), summary = $("#characterisation-summary");
  section.hidden = false;
  section.dataset.layer = layer;
  section.dataset.unit = unit;
  $("#characterisation-body").hidden = true;
  $("#characterise").disabled = true;
  $("#characterisation-progress").hidden = false;
  const current = () => state.selected === unit && state.layer === layer;
  const tick = () => {
    summary.textContent = `characterising ${layer} unit ${unit}: gratings over orientation, spatial frequency, phase ` +
      `and contrast… ${Math.round((performance.now() - started) / 1000)} s`;
  };
  tick();
  const timer = setInterval(tick, 500);
  try {
    const response = await fetch(`/api/units/${unit}/characterisation?${query(layer)}`);
    if (!current()) return;  // the user moved on; clearCharacterisation already hid it
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      const detail = Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : body.detail;
      summary.textContent = `characterisation failed (${response.status}): ${detail ?? response.statusText}`;
      return;
    }
    const result = await response.json();
    summary.textContent = result.summary;
    $("#characterisation-table").replaceChildren(table(result.readings));
    const base = `/api/units/${unit}/characterisation`;
    $("#characterisation-figure").src = `${base}.png?${query(layer)}`;
    $("#characterisation-figure").alt = `characterisation of ${layer} unit ${unit}: tuning curves, phase and contrast response`;
    $("#characterisation-download").href = `${base}.zip?${query(layer)}`;
    $("#characterisation-body").hidden = false;
  } finally {
    clearInterval(timer);
    if (current()) $("#characterisation-progress").hidden = true;
    $("#characterise").disabled = false;
  }
}

// another unit or layer: the old characterisation no longer applies
export function clearCharacterisation() {
  const section = $("#characterisation");
  section.hidden = true;
  $("#characterisation-body").hidden = true;
  $("#characterisation-progress").hidden = true;
  $("#characterisation-summary").textContent = "";
  $("#characterisation-figure").removeAttribute("src");
  delete section.dataset.layer;
  delete section.dataset.unit;
}
